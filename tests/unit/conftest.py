"""Unit-test fixtures: one small plain Spark session for the pure DataFrame transforms.

No Delta, no catalog server, no Hive: the transforms take DataFrames and return DataFrames,
so tiny in-memory frames are all they need.
"""

from __future__ import annotations

import os
import sys

import pytest


@pytest.fixture(scope="session")
def local_spark(request):
    """In a run with integration tests, the shared catalog-backed session (one JVM per run, see
    the root conftest's `pytest_collection_finish`); else (`make unit`) the active session or a
    plain local one. Never stopped here."""
    from athlete_platform.config import load_settings
    from tests.conftest import HOME, NEEDS_CATALOG

    if request.config.stash.get(NEEDS_CATALOG, False):
        return request.getfixturevalue("spark")
    # Python workers (applyInPandas) must run this venv's interpreter.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    java_options = load_settings(HOME / "conf" / "test.yaml", environ={}).spark.java_options
    return (
        SparkSession.builder.master("local[1]")
        .appName("unit")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        # A short-lived JVM spends most of its CPU in the optimising JIT compiler: the quick one
        # halves this file's CPU time (about 45 -> 24 CPU seconds) and loses nothing on tiny data.
        # The same options as the suite's other short JVMs (conf/test.yaml's spark.java_options).
        .config("spark.driver.extraJavaOptions", java_options)
        .getOrCreate()
    )
