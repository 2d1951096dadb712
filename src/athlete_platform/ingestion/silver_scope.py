"""What a silver run must judge again: the incremental scope.

A run judges again every bronze record of the sessions touched since the last run, and leaves
every other row alone. A session is touched when, since the last run:

- a record of it was added to bronze, removed, or rewritten (bronze's Change Data Feed from the
  version silver last judged, recorded on silver.sessions); or
- it became due: it starts in [last run's logical time, this run's), so the last run deferred
  it. Only records that landed from a day before the last run's logical time can be such a
  session (a record is deferred only when it starts no later than its landing plus the clock
  slack), so only the start of those is parsed.

Beside them: an athlete whose *profile* record changed is judged whole (every session's load
depends on the profile, and its validity on the athlete being known); every athlete with a
record of a touched session has their profile records judged (a correction can move a session
to another athlete, and it is valid only with its athlete known). A session's load also
depends on the athlete's sessions of the 28 days before (imputation), so silver recomputes the
loads of the stored sessions from the earliest touched day on (`silver.load_context`).
The run then equals a full rebuild (tested: `tests/integration/test_incremental_silver.py`),
and a day's cost follows the day's records, not the history.

A full rebuild happens instead, with its reason logged, when: nothing is recorded yet, the run
is for an earlier logical time than the last (a backfill of a past day), `--full-refresh` is
given, or the change feed cannot be read (vacuumed, or the table predates it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from athlete_platform.domain.limits import CLOCK_SKEW_TOLERANCE_S
from athlete_platform.ingestion.fields import Field, read_records, spark_schema
from athlete_platform.ingestion.record_keys import keys_of
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.delta import changes_between
from athlete_platform.lakehouse.writes import utc_timestamp

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

VERSION_PROPERTY = tables.SILVER_SOURCE_VERSION_PROPERTIES[tables.SESSIONS_RAW]
DUE_BEFORE_PROPERTY = tables.SILVER_DUE_BEFORE_PROPERTY
BRONZE_ID_PROPERTY = "athlete_platform.source.sessions_raw_table_id"
LAYOUT_PROPERTY = "athlete_platform.silver.layout"
SILVER_TABLES = (
    tables.ATHLETES,
    tables.ATHLETE_PROFILE_HISTORY,
    tables.SESSIONS,
    tables.RACES,
    tables.RACE_SPLITS,
    tables.QUARANTINE,
)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
ROW_ID = ("_source_file", "_line_number")  # a bronze row's identity
START_FIELD = (Field("start_time", "timestamp"),)


@dataclass(frozen=True)
class Recorded:
    """What the last silver run recorded on silver.sessions (None: nothing usable)."""

    bronze_version: int | None
    due_before: datetime | None
    bronze_table_id: str | None = None  # Delta's table id: a bronze table dropped and re-made is another
    layout: str | None = None  # fingerprint of the silver tables' columns (`silver_layout`)

    @classmethod
    def from_properties(cls, properties: dict[str, str]) -> Recorded:
        version, due = properties.get(VERSION_PROPERTY), properties.get(DUE_BEFORE_PROPERTY)
        try:
            return cls(
                int(version) if version is not None else None,
                _parse_time(due),
                properties.get(BRONZE_ID_PROPERTY),
                properties.get(LAYOUT_PROPERTY),
            )
        except ValueError:
            return cls(None, None)

    def properties(self) -> dict[str, str]:
        assert self.due_before is not None
        return {
            VERSION_PROPERTY: str(self.bronze_version),
            DUE_BEFORE_PROPERTY: self.due_before.strftime(TIME_FORMAT),
            BRONZE_ID_PROPERTY: str(self.bronze_table_id),
            LAYOUT_PROPERTY: str(self.layout),
        }


def _parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.strptime(text, TIME_FORMAT)


def silver_layout() -> str:
    """A fingerprint of the silver tables' registry columns: a run after they change rebuilds in
    full (rows not judged again would lack a new column). A change of a *rule* is not seen
    here: run `athlete-platform silver --full-refresh` after one."""
    import hashlib

    described = "|".join(
        f"{t.schema}.{t.name}:" + ",".join(f"{c.name} {c.type}" for c in t.columns) for t in SILVER_TABLES
    )
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def full_rebuild_reason(
    recorded: Recorded,
    now: Recorded,
    full_refresh: bool,
    change_feed: bool,
    missing_tables: tuple[str, ...] | list[str] = (),
) -> str | None:
    """Why this run cannot be incremental (None: it can). `now` is what this run would record."""
    assert now.bronze_version is not None and now.due_before is not None
    if full_refresh:
        return "--full-refresh"
    if missing_tables:
        return f"{', '.join(missing_tables)} not written yet"
    if recorded.bronze_version is None or recorded.due_before is None:
        return "no silver run recorded yet"
    if not change_feed:
        return "bronze.sessions_raw has no Change Data Feed"
    if recorded.bronze_table_id != now.bronze_table_id:
        return "bronze.sessions_raw is not the table silver last read (dropped and made again?)"
    if recorded.layout != now.layout:
        return "the silver tables' columns changed since the last run"
    if recorded.bronze_version > now.bronze_version:
        return f"bronze is at version {now.bronze_version}, before the recorded {recorded.bronze_version} (restored?)"
    if now.due_before < recorded.due_before:
        return f"the run's logical time {now.due_before} is before the last run's {recorded.due_before} (a backfill)"
    return None


def should_record(recorded: Recorded, now: Recorded) -> bool:
    """Whether a finished run records its state. A run for an earlier logical time than the one
    recorded does not: it leaves sessions after its day alone (it may not delete them), so the
    next run must still see every bronze change since the state recorded before it."""
    if now == recorded:
        return False
    return recorded.due_before is None or now.due_before is None or now.due_before >= recorded.due_before


def bronze_keys(raw: DataFrame) -> DataFrame:
    """Pure transform: bronze rows -> (row identity, record_type, athlete_id, session_id)."""
    return raw.select(*ROW_ID, "record_type", *keys_of(raw.columns))


def changed_rows(spark: SparkSession, raw_table: str, since_version: int, to_version: int) -> DataFrame:
    """Keys of bronze rows added, removed or rewritten in (since_version, to_version]."""
    return bronze_keys(changes_between(spark, raw_table, since_version, to_version))


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


def profile_athletes(seeds: DataFrame) -> DataFrame:
    """Pure transform: athletes whose profile records changed: judged whole."""
    from pyspark.sql import functions as F

    athlete_rows = seeds.where((F.col("record_type") == "athlete") & F.col("athlete_id").isNotNull())
    return athlete_rows.select("athlete_id").distinct()


def touched_sessions(keys: DataFrame, seeds: DataFrame, whole: DataFrame) -> DataFrame:
    """Pure transform: session ids judged again: the seed rows' and every session of the athletes
    judged whole."""
    from pyspark.sql import functions as F

    of_whole = keys.join(whole, "athlete_id", "left_semi").select("session_id")
    return seeds.select("session_id").unionByName(of_whole).where(F.col("session_id").isNotNull()).distinct()


def judged_athletes(keys: DataFrame, seeds: DataFrame, sessions: DataFrame, whole: DataFrame) -> DataFrame:
    """Pure transform: every athlete with a record of a touched session, of a seed row, or judged whole."""
    from pyspark.sql import functions as F

    by_session = keys.join(sessions, "session_id", "left_semi").select("athlete_id")
    named = by_session.unionByName(seeds.select("athlete_id")).unionByName(whole)
    return named.where(F.col("athlete_id").isNotNull()).distinct()


def scope_rows(
    raw: DataFrame, whole: DataFrame, sessions: DataFrame, athletes: DataFrame, seeds: DataFrame
) -> DataFrame:
    """Pure transform: the bronze rows to judge: every record of the athletes judged whole and of
    the touched sessions, the profile records of every judged athlete, and the seed rows
    themselves (a record without a usable key is still judged, and quarantined)."""
    from pyspark.sql import functions as F

    athlete_key, session_key = keys_of(raw.columns)
    keyed = raw.select("*", athlete_key.alias("_scope_athlete"), session_key.alias("_scope_session"))

    def having(frame: DataFrame, column: str, key: str) -> DataFrame:
        return keyed.join(frame.select(F.col(column).alias(key)), key, "left_semi")

    profiles = keyed.where(F.col("record_type") == "athlete")
    parts = [
        having(whole, "athlete_id", "_scope_athlete"),
        having(sessions, "session_id", "_scope_session"),
        profiles.join(athletes.select(F.col("athlete_id").alias("_scope_athlete")), "_scope_athlete", "left_semi"),
        keyed.join(seeds.select(*ROW_ID), list(ROW_ID), "left_semi"),
    ]
    rows = parts[0]
    for part in parts[1:]:
        rows = rows.unionByName(part)
    return rows.dropDuplicates(list(ROW_ID)).drop("_scope_athlete", "_scope_session")


@dataclass(frozen=True)
class Scope:
    """What a silver run judges (a full rebuild: every row, the other fields None)."""

    raw: DataFrame  # the bronze rows to judge
    full_reason: str | None = None
    whole: DataFrame | None = None  # athlete_id: judged whole (their profile changed)
    sessions: DataFrame | None = None  # session_id: every record judged again
    athletes: DataFrame | None = None  # athlete_id: every athlete with a judged record
    seeds: DataFrame | None = None
    athlete_count: int | None = None
    session_count: int | None = None

    @property
    def nothing_to_judge(self) -> bool:
        return self.full_reason is None and self.session_count == 0 and self.athlete_count == 0 and self.seeds is None

    def release(self) -> None:
        if self.full_reason is None:
            for frame in (self.raw, self.whole, self.sessions, self.athletes, self.seeds):
                if frame is not None:
                    frame.unpersist()


def seed_rows(
    spark: SparkSession, raw_table: str, raw: DataFrame, recorded: Recorded, bronze_version: int, due_before: datetime
) -> DataFrame | str:
    """The rows that start the scope (cached), or why the change feed cannot be read."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    assert recorded.bronze_version is not None and recorded.due_before is not None
    seeds = due_rows(raw, recorded.due_before, due_before)
    if recorded.bronze_version < bronze_version:
        changes = changed_rows(spark, raw_table, recorded.bronze_version, bronze_version).cache()
        try:
            changes.count()
        except (PySparkException, Py4JJavaError) as exc:  # vacuumed, or from before the change feed
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            return f"bronze's change feed is unreadable since the version recorded ({lines[0][:200]})"
        seeds = seeds.unionByName(changes)
    return seeds.dropDuplicates([*ROW_ID, "athlete_id", "session_id"]).cache()


def incremental_scope(raw: DataFrame, seeds: DataFrame) -> Scope:
    """The scope grown from the seed rows (see the module docstring)."""
    if seeds.isEmpty():  # nothing landed, removed or became due: nothing to judge
        seeds.unpersist()
        return Scope(raw.limit(0), None, athlete_count=0, session_count=0)
    keys = bronze_keys(raw).cache()
    try:
        # Materialized without their lineage: the transform and the merges read them many times,
        # and each is then one leaf to the optimizer instead of this whole plan in every branch
        # (left as plans, they made the optimizer run out of heap).
        whole = profile_athletes(seeds).localCheckpoint()
        sessions = touched_sessions(keys, seeds, whole).localCheckpoint()
        athletes = judged_athletes(keys, seeds, sessions, whole).localCheckpoint()
    finally:
        keys.unpersist()
    rows = scope_rows(raw, whole, sessions, athletes, seeds).localCheckpoint()
    return Scope(rows, None, whole, sessions, athletes, seeds, athletes.count(), sessions.count())
