"""For integration modules that own their tables (`module_lake`): import `own_settings` and
`own_names` so the module's `settings` and `names` fixtures are its own, and shared checks of what its tables hold."""

from __future__ import annotations

import math

import pytest

from athlete_platform.lakehouse import tables


@pytest.fixture(name="settings", scope="module")
def own_settings(module_lake):
    return module_lake.settings


@pytest.fixture(name="names", scope="module")
def own_names(module_lake):
    return module_lake.names


def non_finite_values(spark, names) -> list[tuple]:
    """(table, row) of every NaN or infinite DOUBLE in silver and the feature table (none expected)."""
    found = []
    for table in (tables.SESSIONS, tables.ATHLETES, tables.RACES, tables.ATHLETE_ROLLING_FEATURES):
        frame = spark.table(names(table))
        doubles = [c for c, kind in frame.dtypes if kind == "double"]
        for row in frame.select(*doubles).collect():
            if any(v is not None and not math.isfinite(v) for v in row):
                found.append((table.name, tuple(row)))
    return found
