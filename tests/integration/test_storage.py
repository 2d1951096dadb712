"""Storage stays bounded and steps that read several tables follow all of them (issue 10, items 9 and 6).

On the real session and Delta tables: re-runs of silver and features that change nothing write
no data files; a change to silver.races alone (what a silver run killed between its sessions and
races commits leaves behind) reaches the features; the maintenance step shrinks storage and
keeps the feature table version a prediction references readable by time travel.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.ddl import ensure_table
from athlete_platform.lakehouse.delta import current_version
from tests.conftest import generate_sample

pytestmark = pytest.mark.integration

LINEAGE = {"_run_id", "computed_at", "_ingested_at", "rejected_at"}
SILVER_AND_FEATURES = (
    tables.ATHLETES,
    tables.SESSIONS,
    tables.RACES,
    tables.QUARANTINE,
    tables.ATHLETE_ROLLING_FEATURES,
)
# operationMetrics that count written files or rows (MERGE, WRITE, DELETE, UPDATE name them differently)
WRITE_METRICS = (
    "numFiles",
    "numAddedFiles",
    "numRemovedFiles",
    "numTargetFilesAdded",
    "numTargetFilesRemoved",
    "numTargetRowsInserted",
    "numTargetRowsUpdated",
    "numTargetRowsDeleted",
    "numAddedChangeFiles",
)


def snapshot(spark, table: str, version: int | None = None) -> list[tuple]:
    reader = spark.read.format("delta")
    frame = (reader.option("versionAsOf", version) if version is not None else reader).table(table)
    return sorted(tuple(r) for r in frame.select(*[c for c in frame.columns if c not in LINEAGE]).collect())


def location(spark, table: str) -> Path:
    return Path(spark.sql(f"DESCRIBE DETAIL {table}").first()["location"].removeprefix("file:"))


def data_bytes(folder: Path) -> tuple[int, int]:
    """(files, bytes) of the table's data files: everything outside `_delta_log`."""
    files = size = 0
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "_delta_log"]
        for name in names:
            files += 1
            size += (Path(root) / name).stat().st_size
    return files, size


def writes_since(spark, table: str, version: int) -> list[tuple[int, str, dict]]:
    """Commits after `version` that wrote files or rows: (version, operation, the non-zero metrics)."""
    found = []
    for row in spark.sql(f"DESCRIBE HISTORY {table}").where(f"version > {version}").collect():
        metrics = {k: v for k, v in (row.operationMetrics or {}).items() if k in WRITE_METRICS and v not in ("0", None)}
        if metrics:
            found.append((row.version, row.operation, metrics))
    return found


@pytest.fixture(scope="module")
def lake(module_lake):
    return module_lake


@pytest.fixture(scope="module")
def batch(spark, lake):
    """Sample data through bronze -> silver -> features, once."""
    settings, names = lake.settings, lake.names
    for table in tables.ALL_TABLES:
        spark.sql(f"DROP TABLE IF EXISTS {names(table)}")
    import shutil

    shutil.rmtree(settings.landing_path, ignore_errors=True)
    generate_sample(settings)
    run_date = settings.sample_data.last_date
    lake.run("ingest", date(2030, 1, 1), "run-1", settings=settings)
    lake.run("silver", run_date, "run-1")
    lake.run("features", run_date, "run-1")
    return {"run_date": run_date}


def test_reruns_of_silver_and_features_write_nothing(spark, lake, batch):
    """Item 9: three re-runs that change nothing add no data file, no row and no byte."""
    names, run_date = lake.names, batch["run_date"]
    watched = {names(t): t for t in SILVER_AND_FEATURES}
    versions = {name: current_version(spark, name) for name in watched}
    before = {name: snapshot(spark, name) for name in watched}
    storage = {name: data_bytes(location(spark, name)) for name in watched}
    for attempt in range(3):
        lake.run("silver", run_date, f"rerun-{attempt}")
        counts = lake.run("features", run_date, f"rerun-{attempt}")
        assert counts.athletes == 0 and counts.rows_written == 0
    for name in watched:
        assert writes_since(spark, name, versions[name]) == [], name
        assert data_bytes(location(spark, name)) == storage[name], name
        assert snapshot(spark, name) == before[name], name


def test_a_race_change_alone_reaches_the_features(spark, lake, batch):
    """Item 6: silver.races changes while silver.sessions does not (a silver run killed between
    its two commits, then re-run): the next feature run picks the new VDOT up."""
    names, run_date = lake.names, batch["run_date"]
    races, features = names(tables.RACES), names(tables.ATHLETE_ROLLING_FEATURES)
    sessions_version = current_version(spark, names(tables.SESSIONS))
    race = (
        spark.table(races)
        .where(F.col("race_date") > F.lit(run_date - timedelta(days=60)))
        .orderBy(F.col("race_date").desc(), "session_id")
        .first()
    )
    assert race is not None, "the sample should hold a race in the last 60 days"
    spark.sql(f"UPDATE {races} SET vdot = 99.0 WHERE session_id = '{race.session_id}'")
    assert current_version(spark, names(tables.SESSIONS)) == sessions_version  # sessions untouched

    counts = lake.run("features", run_date, "race-fix")
    assert counts.athletes == 1 and counts.rows_written == (run_date - race.race_date).days + 1
    rows = {
        r.feature_date: r.vdot_best_90d
        for r in spark.table(features).where(f"athlete_id = '{race.athlete_id}'").collect()
    }
    assert all(rows[d] == 99.0 for d in rows if d >= race.race_date)
    assert all(rows[d] is None or rows[d] < 99.0 for d in rows if d < race.race_date)

    # The incremental result equals a full recompute, which therefore writes nothing.
    version = current_version(spark, features)
    incremental = snapshot(spark, features)
    lake.run("features", run_date, "race-fix-full", full_refresh=True)
    assert writes_since(spark, features, version) == []
    assert snapshot(spark, features) == incremental


def _bump_race(spark, lake, run_date, vdot: float, run_id: str) -> int:
    """Change one race's VDOT, recompute features; the feature table's new version."""
    races = lake.names(tables.RACES)
    race = spark.table(races).orderBy(F.col("race_date").desc(), "session_id").first()
    spark.sql(f"UPDATE {races} SET vdot = {vdot} WHERE session_id = '{race.session_id}'")
    lake.run("features", run_date, run_id)
    return current_version(spark, lake.names(tables.ATHLETE_ROLLING_FEATURES))


def _warehouse_bytes(spark, names, skip=()) -> int:
    return sum(
        data_bytes(location(spark, names(t)))[1]
        for t in tables.ALL_TABLES
        if t not in skip and spark.catalog.tableExists(names(t))
    )


def test_maintenance_shrinks_storage_and_keeps_the_version_a_prediction_scored(spark, lake, batch):
    """Item 9: OPTIMIZE + VACUUM (0-hour minimum) free replaced files, but the feature table
    version an old prediction recorded stays readable by time travel."""
    names, run_date = lake.names, batch["run_date"]
    features, races = names(tables.ATHLETE_ROLLING_FEATURES), names(tables.RACES)
    update = {"min_retention_hours": 0.0, "retention_margin_hours": 0.0}
    settings = lake.settings.model_copy(update={"maintenance": lake.settings.maintenance.model_copy(update=update)})
    races_before = current_version(spark, races)
    _bump_race(spark, lake, run_date, 70.0, "garbage")  # replaced files: garbage
    referenced = _bump_race(spark, lake, run_date, 71.0, "scored")  # the version a prediction scored
    expected = snapshot(spark, features, referenced)
    later = _bump_race(spark, lake, run_date, 72.0, "later")  # tombstones files the prediction still needs
    assert referenced < later and snapshot(spark, features) != expected

    # An old prediction that scored `referenced`.
    predictions = ensure_table(spark, names, tables.ATHLETE_PREDICTIONS)
    spark.sql(
        f"INSERT INTO {predictions} (athlete_id, as_of_date, race_distance_m, predicted_finish_time_s, "
        "predicted_pace_s_per_km, model_name, model_version, feature_table_version, run_id, scored_at) "
        f"VALUES ('ath_0001', DATE'{run_date}', 5000.0, 1500.0, 300.0, "
        f"'{names(tables.TIME_ESTIMATOR)}', '1', {referenced}, 'old-run', TIMESTAMP'2024-01-01 00:00:00')"
    )
    # The feature table keeps every file of the last hour here (the scored version is minutes old,
    # and VACUUM counts whole hours), so OPTIMIZE only adds to it: the other tables must shrink.
    protected = (tables.ATHLETE_ROLLING_FEATURES,)
    before, total_before = _warehouse_bytes(spark, names, protected), _warehouse_bytes(spark, names)
    result = lake.run("maintain", run_date, "maintain", settings=settings)
    after, total_after = _warehouse_bytes(spark, names, protected), _warehouse_bytes(spark, names)
    print(
        f"\nwarehouse data files: {total_before:,} -> {total_after:,} bytes; without the feature table "
        f"{before:,} -> {after:,} ({result})"
    )

    assert after < before
    # Unreferenced history is gone (silver.races before the UPDATEs) ...
    assert result.retention_hours[races] == 0
    with pytest.raises(Exception, match=r"(?i)file|path|exist"):
        spark.read.format("delta").option("versionAsOf", races_before).table(races).collect()
    # ... the scored feature version is not: VACUUM kept it (whole hours back to its commit).
    assert result.retention_hours[features] >= 1
    assert snapshot(spark, features, referenced) == expected

    # Maintenance twice in a row: the second finds nothing to compact.
    again = lake.run("maintain", run_date, "maintain-2", settings=settings)
    assert again.files_compacted == 0
