"""Athlete Platform lakehouse: feature, training and inference pipelines on Spark + Delta."""

__version__ = "0.1.0"
