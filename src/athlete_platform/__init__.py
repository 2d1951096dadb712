"""Athlete Platform lakehouse: feature, training and inference pipelines on Spark + Delta.

`athlete_platform.read_table("gold.athlete_predictions")` reads a table by its catalog name
without Spark (Arrow; see `lakehouse.reads`).
"""

__version__ = "0.1.0"
__all__ = ["read_table"]


def __getattr__(name: str):
    # Imported on first use: `import athlete_platform` stays free of pyarrow and delta-rs.
    if name == "read_table":
        from athlete_platform.lakehouse.reads import read_table

        return read_table
    raise AttributeError(f"module 'athlete_platform' has no attribute {name!r}")
