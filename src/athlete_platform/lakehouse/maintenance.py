"""Maintenance step: OPTIMIZE and VACUUM every platform table, keeping the versions still in use.

Re-runs write nothing (`lakehouse.writes`), but real changes still leave replaced files behind
and small files pile up; this step bounds storage (issue 10, item 9). Per existing table:

1. OPTIMIZE (bin-packing; commits nothing when there is nothing to compact, and its commit has
   `dataChange = false`, so Change Data Feed readers see no change).
2. VACUUM with a retention that keeps time travel for every *referenced* version:
   - the feature table versions `gold.athlete_predictions` records (`feature_table_version`):
     reading that version reproduces a prediction, so it must stay readable;
   - for bronze.sessions_raw, the version after the one silver last judged;
   - for silver.sessions / silver.races, the versions after the one the feature pipeline last
     computed from, and for silver.sessions the one after what the document pipeline last
     embedded (they read the Change Data Feed from there on).
   The horizon is the commit time of the oldest referenced version minus a margin, but never
   later than `maintenance.min_retention_hours` ago; VACUUM gets it as whole hours, rounded up
   (Delta rounds `RETAIN` to the nearest hour, which could otherwise move it past the version).
   A version's files were all added at or before its commit and are only tombstoned by later
   commits, so every tombstone they carry is younger than the horizon and VACUUM keeps them.
3. For a table with referenced versions older than Delta's own retentions, raise
   `delta.deletedFileRetentionDuration` (tombstones older than it leave the table state, and
   VACUUM would then take their files for untracked ones) and `delta.logRetentionDuration`
   (log entries needed to reconstruct the version), never lowering either.

The cost of this rule: the feature table keeps every file removed since the oldest referenced
version, not just the files of the referenced versions; re-scoring or pruning old predictions
moves the horizon forward. VACUUM's own retention check is off for its calls here: the retention
is computed, not typed by hand.

Work that cannot change anything is skipped (`nothing_to_compact`, `vacuum_candidates`), decided
from the table's Delta log read by delta-rs and its folder listed in Python (milliseconds, where
each Spark command costs one to three seconds of planning and jobs even when it finds nothing):
- VACUUM deletes only files the current version does not reference *and* last modified before
  its retention cutoff. When the folder holds no such file, it is skipped: a new lakehouse (all
  of `make run`'s tables) or a table only appended to. A crash's leftovers are such files, so
  they still trigger it once old enough.
- OPTIMIZE bin-packs the files of a partition (and purges deletion vectors); a table with at
  most one file per partition and no deletion vectors has nothing for it.
Skipping is never unsafe: it only keeps files a day longer. Tables not on the local file system,
or whose log delta-rs cannot read, always get both commands.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.delta import current_version, local_folder, table_properties
from athlete_platform.lakehouse.delta_rs import LiveFiles, live_files
from athlete_platform.lakehouse.step import Step, StepContext

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# Delta's defaults when a table does not set them.
DEFAULT_DELETED_FILE_RETENTION_DAYS = 7
DEFAULT_LOG_RETENTION_DAYS = 30
# Headroom added when a retention property is raised, so it is not raised again every day.
RETENTION_HEADROOM_DAYS = 7
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
# VACUUM lists the table folder in this many tasks (Spark's default, 10000, is meant for huge
# tables: on a small one it is most of VACUUM's time); set to the cluster's parallelism for it.
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


@dataclass(frozen=True)
class TableState:
    """What maintenance needs to know about one table (read by `extract`)."""

    name: str
    version: int
    # Versions other tables still reference -> their commit time (epoch ms).
    referenced: dict[int, int] = field(default_factory=dict)
    deleted_file_retention_days: float = DEFAULT_DELETED_FILE_RETENTION_DAYS
    log_retention_days: float = DEFAULT_LOG_RETENTION_DAYS
    folder: Path | None = None  # the table's folder when it is on the local file system


@dataclass(frozen=True)
class MaintenanceInputs:
    states: tuple[TableState, ...]
    now_ms: int
    min_retention_hours: float
    margin_hours: float


@dataclass(frozen=True)
class TablePlan:
    """What to do to one table: VACUUM keeping at least `min_hours` and every file tombstoned
    after `referenced_horizon_ms` (when a version is referenced); set `properties` first."""

    name: str
    min_hours: int
    referenced_horizon_ms: int | None
    oldest_referenced: int | None
    properties: dict[str, str]
    folder: Path | None = None


@dataclass(frozen=True)
class MaintenanceResult:
    tables: int
    files_compacted: int  # files OPTIMIZE replaced
    retention_hours: dict[str, int]  # per table, the retention VACUUM used (whole hours)
    optimize_skipped: int = 0  # tables with nothing to compact (`nothing_to_compact`)
    vacuum_skipped: int = 0  # tables with no file VACUUM could delete

    def __str__(self) -> str:
        longest = max(self.retention_hours.values(), default=0)
        return (
            f"maintained {self.tables} tables: OPTIMIZE compacted {self.files_compacted} files "
            f"({self.optimize_skipped} tables with nothing to compact skipped), "
            f"VACUUM retention {min(self.retention_hours.values(), default=0)}..{longest} h "
            f"({self.vacuum_skipped} tables with no file old enough to delete skipped)"
        )


def _interval_days(value: str | None, default: float) -> float:
    """Days of a Delta interval property like 'interval 30 days' (hours/weeks too); default if unset."""
    if not value:
        return default
    words = value.lower().replace("interval", "").split()
    if len(words) != 2:
        return default
    amount, unit = float(words[0]), words[1].rstrip("s")
    per_day = {"week": 7.0, "day": 1.0, "hour": 1 / 24, "minute": 1 / 1440, "second": 1 / 86400}
    return amount * per_day[unit] if unit in per_day else default


def plan_table(state: TableState, now_ms: int, min_retention_hours: float, margin_hours: float) -> TablePlan:
    """Pure: the VACUUM retention and the retention properties one table needs.

    The fixed minimum is kept apart from the referenced horizon: the clock moves on until VACUUM
    runs, and only the horizon must be counted back from that later moment."""
    min_hours = math.ceil(min_retention_hours)
    oldest = min(state.referenced, default=None)
    referenced_horizon = None if oldest is None else state.referenced[oldest] - int(margin_hours * HOUR_MS)
    properties: dict[str, str] = {}
    needed_days = max(min_hours * HOUR_MS, now_ms - (referenced_horizon or now_ms)) / DAY_MS
    if oldest is not None and needed_days > state.deleted_file_retention_days:
        properties["delta.deletedFileRetentionDuration"] = (
            f"interval {math.ceil(needed_days) + RETENTION_HEADROOM_DAYS} days"
        )
    if oldest is not None and needed_days > state.log_retention_days:
        properties["delta.logRetentionDuration"] = f"interval {math.ceil(needed_days) + RETENTION_HEADROOM_DAYS} days"
    return TablePlan(state.name, min_hours, referenced_horizon, oldest, properties, state.folder)


def maintenance_plan(inputs: MaintenanceInputs) -> list[TablePlan]:
    """Pure transform: a plan per table."""
    return [
        plan_table(state, inputs.now_ms, inputs.min_retention_hours, inputs.margin_hours) for state in inputs.states
    ]


def commit_times(spark: SparkSession, table: str, versions: set[int]) -> dict[int, int]:
    """Commit time (epoch ms, independent of any time zone) of each of `versions` still in the log."""
    if not versions:
        return {}
    listed = ", ".join(str(v) for v in sorted(versions))
    rows = spark.sql(f"DESCRIBE HISTORY {table}").where(f"version IN ({listed})")
    return {int(r.version): int(r.ms) for r in rows.selectExpr("version", "unix_millis(timestamp) AS ms").collect()}


def referenced_versions(spark: SparkSession, names: tables.TableNames) -> dict[str, set[int]]:
    """Per table name, the versions other tables still reference (see the module docstring)."""
    referenced: dict[str, set[int]] = {}
    predictions, features = names(tables.ATHLETE_PREDICTIONS), names(tables.ATHLETE_ROLLING_FEATURES)
    if spark.catalog.tableExists(predictions):
        column = tables.PREDICTION_FEATURE_VERSION_COLUMN
        rows = spark.table(predictions).where(f"{column} IS NOT NULL").select(column).distinct().collect()
        referenced[features] = {int(r[0]) for r in rows}
    consumers = (
        (names(tables.SESSIONS), tables.SILVER_SOURCE_VERSION_PROPERTIES),
        (features, tables.FEATURE_SOURCE_VERSION_PROPERTIES),
        (names(tables.DOCUMENT_CHUNKS), tables.DOCUMENT_SOURCE_VERSION_PROPERTIES),
    )
    for consumer, properties in consumers:
        if not spark.catalog.tableExists(consumer):
            continue
        recorded = table_properties(spark, consumer)
        for upstream, prop in properties.items():
            name = names(upstream)
            if prop in recorded and spark.catalog.tableExists(name):
                # The pipeline reads changes after the recorded version: the next one and later.
                consumed = int(recorded[prop])
                if consumed < current_version(spark, name):
                    referenced.setdefault(name, set()).add(consumed + 1)
    return referenced


def nothing_to_compact(live: LiveFiles | None) -> bool:
    """Pure: OPTIMIZE can do nothing (at most one file per partition, no deletion vectors)."""
    return live is not None and not live.deletion_vectors and max(live.files_per_partition, default=0) <= 1


def vacuum_candidates(folder: Path, live: LiveFiles, cutoff_ms: int) -> list[Path]:
    """Files under `folder` (its `_delta_log` aside) that VACUUM could delete at `cutoff_ms`:
    not referenced by the current version and last modified before the cutoff. A Hadoop checksum
    file (`.<name>.crc`) goes with the file it checks."""
    found = []
    for parent, dirs, files in os.walk(folder):
        if parent == str(folder):
            dirs[:] = [d for d in dirs if d != "_delta_log"]
        for name in files:
            path = os.path.normpath(os.path.join(parent, name))
            checked = os.path.join(parent, name[1:-4]) if name.startswith(".") and name.endswith(".crc") else path
            if checked in live.paths:
                continue
            try:
                modified_ms = os.stat(path, follow_symlinks=False).st_mtime * 1000
            except OSError:
                continue  # gone meanwhile
            if modified_ms < cutoff_ms:
                found.append(Path(path))
    return found


def _optimize(spark: SparkSession, table: str) -> int:
    row = spark.sql(f"OPTIMIZE {table}").first()
    metrics = row["metrics"] if row is not None else None
    return int(metrics["numFilesRemoved"]) if metrics is not None else 0


def retain_hours(now_ms: int, plan: TablePlan) -> int:
    """Whole hours VACUUM keeps: the minimum, or back from `now_ms` to the referenced horizon.
    Delta rounds a RETAIN to the nearest hour (0.4 h would become 0 and take the version's
    files), so the horizon is rounded up here."""
    if plan.referenced_horizon_ms is None:
        return plan.min_hours
    return max(plan.min_hours, math.ceil((now_ms - plan.referenced_horizon_ms) / HOUR_MS))


def _vacuum(spark: SparkSession, plan: TablePlan) -> tuple[int, bool]:
    """VACUUM with the plan's retention, computed at the last moment (VACUUM counts back from its
    own clock, a little later; the margin covers that). Skipped when no file could go: (hours, ran)."""
    now_ms = int(time.time() * 1000)
    hours = retain_hours(now_ms, plan)
    live = live_files(plan.folder) if plan.folder is not None else None
    if live is not None and not vacuum_candidates(plan.folder, live, now_ms - hours * HOUR_MS):
        return hours, False
    spark.sql(f"VACUUM {plan.name} RETAIN {hours} HOURS")
    return hours, True


class MaintenanceStep(Step[MaintenanceInputs, list[TablePlan], MaintenanceResult]):
    """OPTIMIZE + VACUUM of every platform table, keeping every referenced version readable."""

    def extract(self, ctx: StepContext, params: Mapping[str, Any]) -> MaintenanceInputs:
        spark, names = ctx.spark, ctx.names
        referenced = referenced_versions(spark, names)
        states = []
        for entry in tables.ALL_TABLES:
            name = names(entry)
            if not spark.catalog.tableExists(name):
                continue
            properties = table_properties(spark, name)
            times = commit_times(spark, name, referenced.get(name, set()))
            missing = referenced.get(name, set()) - set(times)
            if missing:  # no longer in the log: nothing left to protect for those
                log.warning("%s: referenced versions %s are no longer in the Delta log", name, sorted(missing))
            location = spark.sql(f"DESCRIBE DETAIL {name}").first()["location"]
            states.append(
                TableState(
                    name,
                    current_version(spark, name),
                    times,
                    _interval_days(
                        properties.get("delta.deletedFileRetentionDuration"), DEFAULT_DELETED_FILE_RETENTION_DAYS
                    ),
                    _interval_days(properties.get("delta.logRetentionDuration"), DEFAULT_LOG_RETENTION_DAYS),
                    local_folder(location),
                )
            )
        settings = ctx.settings.maintenance
        return MaintenanceInputs(
            tuple(states), int(time.time() * 1000), settings.min_retention_hours, settings.retention_margin_hours
        )

    def transform(self, inputs: MaintenanceInputs) -> list[TablePlan]:
        return maintenance_plan(inputs)

    def load(self, ctx: StepContext, outputs: list[TablePlan]) -> MaintenanceResult:
        spark = ctx.spark
        compacted, retention, optimize_skipped, vacuum_skipped = 0, {}, 0, 0
        saved = {key: spark.conf.get(key, None) for key in (RETENTION_CHECK, LISTING_PARALLELISM)}
        spark.conf.set(RETENTION_CHECK, "false")
        spark.conf.set(LISTING_PARALLELISM, str(max(1, spark.sparkContext.defaultParallelism)))
        try:
            for plan in outputs:
                if plan.properties:  # before VACUUM: the tombstones it must keep stay in the state
                    assignments = ", ".join(f"'{k}' = '{v}'" for k, v in plan.properties.items())
                    spark.sql(f"ALTER TABLE {plan.name} SET TBLPROPERTIES ({assignments})")
                if plan.folder is not None and nothing_to_compact(live_files(plan.folder)):
                    optimize_skipped += 1
                else:
                    compacted += _optimize(spark, plan.name)
                retention[plan.name], vacuumed = _vacuum(spark, plan)
                vacuum_skipped += not vacuumed
                log.info(
                    "%s: VACUUM retention %d h%s%s",
                    plan.name,
                    retention[plan.name],
                    f" (keeps v{plan.oldest_referenced} and later)" if plan.oldest_referenced is not None else "",
                    "" if vacuumed else ": skipped, no file old enough to delete",
                )
        finally:
            for key, value in saved.items():
                if value is None:
                    spark.conf.unset(key)
                else:
                    spark.conf.set(key, value)
        return MaintenanceResult(len(outputs), compacted, retention, optimize_skipped, vacuum_skipped)
