"""Which athletes a silver run must judge again: the incremental scope.

Silver's unit of work is the athlete. A session's load depends on the athlete's profile and on
their other sessions (imputation), and its validity on the athlete being known, so a run judges
*every* record of an athlete it touches, and leaves every other athlete's rows alone. An
athlete is touched when, since the last run:

- a record of theirs was added to bronze, or removed, or rewritten (bronze's Change Data Feed
  from the version silver last judged, recorded on silver.sessions); or
- one of their sessions became due: it starts in [last run's logical time, this run's), so the
  last run deferred it. Only records that landed from a day before the last run's logical time
  can be such a session (a record is deferred only when it starts no later than its landing
  plus the clock slack), so only those are parsed.

The set is then closed: every athlete with a record of a session a touched athlete has (a
correction can move a session to another athlete) is touched too, until nothing is added. The
run then equals a full rebuild for every athlete (tested: `tests/integration/test_incremental_silver.py`).

A full rebuild happens instead, with its reason logged, when: nothing is recorded yet, the run
is for an earlier logical time than the last (a backfill of a past day), `--full-refresh` is
given, or the change feed cannot be read (vacuumed, or the table predates it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from athlete_platform.domain.limits import CLOCK_SKEW_TOLERANCE_S
from athlete_platform.ingestion.fields import Field, read_records, spark_schema
from athlete_platform.ingestion.record_keys import keys_of
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.writes import utc_timestamp

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

VERSION_PROPERTY = tables.SILVER_SOURCE_VERSION_PROPERTIES[tables.SESSIONS_RAW]
DUE_BEFORE_PROPERTY = tables.SILVER_DUE_BEFORE_PROPERTY
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
ROW_ID = ("_source_file", "_line_number")  # a bronze row's identity
START_FIELD = (Field("start_time", "timestamp"),)
MAX_CLOSURE_ROUNDS = 20  # each round adds athletes sharing a session id with the set; real data needs one


@dataclass(frozen=True)
class Recorded:
    """What the last silver run recorded on silver.sessions (None: nothing usable)."""

    bronze_version: int | None
    due_before: datetime | None

    @classmethod
    def from_properties(cls, properties: dict[str, str]) -> Recorded:
        version, due = properties.get(VERSION_PROPERTY), properties.get(DUE_BEFORE_PROPERTY)
        try:
            return cls(int(version) if version is not None else None, _parse_time(due))
        except ValueError:
            return cls(None, None)

    def properties(self) -> dict[str, str]:
        return {VERSION_PROPERTY: str(self.bronze_version), DUE_BEFORE_PROPERTY: self.due_before.strftime(TIME_FORMAT)}


def _parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.strptime(text, TIME_FORMAT)


def full_rebuild_reason(
    recorded: Recorded, bronze_version: int, due_before: datetime, full_refresh: bool, change_feed: bool
) -> str | None:
    """Why this run cannot be incremental (None: it can)."""
    if full_refresh:
        return "--full-refresh"
    if recorded.bronze_version is None or recorded.due_before is None:
        return "no silver run recorded yet"
    if not change_feed:
        return "bronze.sessions_raw has no Change Data Feed"
    if recorded.bronze_version > bronze_version:
        return f"bronze is at version {bronze_version}, before the recorded {recorded.bronze_version} (restored?)"
    if due_before < recorded.due_before:
        return f"the run's logical time {due_before} is before the last run's {recorded.due_before} (a backfill)"
    return None


def bronze_keys(raw: DataFrame) -> DataFrame:
    """Pure transform: bronze rows -> (row identity, record_type, athlete_id, session_id)."""
    return raw.select(*ROW_ID, "record_type", *keys_of(raw.columns))


def changed_rows(spark: SparkSession, raw_table: str, since_version: int, to_version: int) -> DataFrame:
    """Keys of bronze rows added, removed or rewritten in (since_version, to_version]."""
    changes = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", since_version + 1)
        .option("endingVersion", to_version)
        .table(raw_table)
    )
    return bronze_keys(changes)


def due_rows(raw: DataFrame, last_due_before: datetime, due_before: datetime) -> DataFrame:
    """Keys of session records starting in [last_due_before, due_before): deferred by the last run.

    Only the start is read (by silver's own field reader), and only of records that landed late
    enough to have been deferred."""
    from pyspark.sql import functions as F

    landed_since = utc_timestamp(last_due_before - timedelta(seconds=CLOCK_SKEW_TOLERANCE_S))
    recent = raw.where((F.col("_ingested_at") >= landed_since) & (F.col("record_type") == "session"))
    starts = recent.select("payload", *ROW_ID).mapInPandas(
        partial(read_records, fields=START_FIELD, passthrough=ROW_ID),
        spark_schema(START_FIELD, "_source_file string, _line_number bigint"),
    )
    start = F.timestamp_micros("start_time")
    due = starts.where((start >= utc_timestamp(last_due_before)) & (start < utc_timestamp(due_before)))
    return bronze_keys(recent).join(due.select(*ROW_ID), list(ROW_ID), "left_semi")


def seed_athletes(keys: DataFrame, seeds: DataFrame) -> DataFrame:
    """Pure transform: athletes named by the seed rows, and by any record of a session they name."""
    from pyspark.sql import functions as F

    sessions = seeds.where(F.col("session_id").isNotNull()).select("session_id").distinct()
    by_session = keys.join(sessions, "session_id", "left_semi").select("athlete_id")
    return seeds.select("athlete_id").unionByName(by_session).where(F.col("athlete_id").isNotNull()).distinct()


def more_athletes(keys: DataFrame, athletes: DataFrame) -> DataFrame:
    """Pure transform: athletes outside `athletes` with a record of a session one of `athletes` has."""
    from pyspark.sql import functions as F

    their_sessions = (
        keys.join(athletes, "athlete_id", "left_semi")
        .where(F.col("session_id").isNotNull())
        .select("session_id")
        .distinct()
    )
    sharing = keys.join(their_sessions, "session_id", "left_semi").select("athlete_id")
    return sharing.where(F.col("athlete_id").isNotNull()).distinct().join(athletes, "athlete_id", "left_anti")


def close_over_sessions(keys: DataFrame, athletes: DataFrame) -> DataFrame | None:
    """Add athletes sharing a session id with the set until none is added (None: did not settle)."""
    athletes = athletes.cache()
    for _ in range(MAX_CLOSURE_ROUNDS):
        more = more_athletes(keys, athletes)
        if more.isEmpty():
            return athletes
        grown = athletes.unionByName(more).distinct().cache()
        athletes.unpersist()
        athletes = grown
    athletes.unpersist()
    return None


def scope_rows(raw: DataFrame, athletes: DataFrame, seeds: DataFrame) -> DataFrame:
    """Pure transform: the bronze rows to judge: every record of the athletes, plus the seed rows
    themselves (a record without a usable athlete key is still judged, and quarantined)."""
    from pyspark.sql import functions as F

    owners = athletes.select(F.col("athlete_id").alias("_scope_athlete"))
    of_athletes = raw.join(owners, keys_of(raw.columns)[0] == F.col("_scope_athlete"), "left_semi")
    seeded = raw.join(seeds.select(*ROW_ID), list(ROW_ID), "left_semi")
    return of_athletes.unionByName(seeded).dropDuplicates(list(ROW_ID))


@dataclass(frozen=True)
class Scope:
    """The rows a silver run judges and the athletes whose silver rows it owns (None: all)."""

    raw: DataFrame
    athletes: DataFrame | None  # cached; None for a full rebuild
    athlete_count: int | None
    full_reason: str | None
    seeds: DataFrame | None = None  # cached; the rows that started the scope

    def release(self) -> None:
        for frame in (self.athletes, self.seeds) + ((self.raw,) if self.athletes is not None else ()):
            if frame is not None:
                frame.unpersist()


def seed_rows(
    spark: SparkSession, raw_table: str, raw: DataFrame, recorded: Recorded, bronze_version: int, due_before: datetime
) -> DataFrame:
    """The rows that start the scope (cached and counted: a change feed that cannot be read fails here)."""
    assert recorded.bronze_version is not None and recorded.due_before is not None
    seeds = due_rows(raw, recorded.due_before, due_before)
    if recorded.bronze_version < bronze_version:
        seeds = seeds.unionByName(changed_rows(spark, raw_table, recorded.bronze_version, bronze_version))
    seeds = seeds.dropDuplicates([*ROW_ID, "athlete_id", "session_id"]).cache()
    seeds.count()
    return seeds


def incremental_scope(raw: DataFrame, seeds: DataFrame) -> Scope:
    """The scope grown from the seed rows (see the module docstring)."""
    keys = bronze_keys(raw).cache()
    try:
        athletes = close_over_sessions(keys, seed_athletes(keys, seeds))
    finally:
        keys.unpersist()
    if athletes is None:
        seeds.unpersist()
        return Scope(raw, None, None, f"the athletes sharing sessions did not settle in {MAX_CLOSURE_ROUNDS} rounds")
    # Materialized without their lineage: the transform and the merges read them many times, and
    # each is then one leaf to the optimizer instead of the scope's whole plan in every branch.
    athletes = athletes.localCheckpoint()
    rows = scope_rows(raw, athletes, seeds).localCheckpoint()
    return Scope(rows, athletes, athletes.count(), None, seeds)
