"""Streaming features: bronze.session_events -> validate -> intraday features -> online store.

    app --POST--> API --append (delta-rs)--> bronze.session_events --readStream (Delta source,
    processing-time trigger ~1 s, checkpoint under data/checkpoints/)--> foreachBatch:
        validate each event with silver's field and row rules  -> bronze.quarantine (reason)
        TRIMP + ATL/CTL/TSB/ACWR with the batch's functions      -> online store (intraday_* fields)

Each micro-batch is one Spark job that reads the events field by field
(`ingestion.fields.read_records`, as silver does) and judges them with silver's own rules
(`ingestion.silver.session_rule_failures`: bad JSON, unknown athlete, negative duration, ...),
then plain Python on the collected rows (`online.intraday`): no Spark per event. Rejected
events go to bronze.quarantine (source `stream`, keyed by a hash of the event, so a replay adds
nothing); valid ones update each touched athlete's intraday fields in ONE atomic store apply.

Exactly once, per session_id: the offsets of a micro-batch are in the checkpoint before it
runs, and its effects are idempotent (the online row keeps the counted sessions keyed by
session_id, so a replayed batch rewrites the same row). A crash anywhere (kill -9 included)
followed by a restart from the checkpoint neither loses nor double-counts an event.

One query per checkpoint: the job holds an exclusive lock next to it while it runs.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from athlete_platform.errors import ConcurrencyError, PlatformError, SetupError
from athlete_platform.ingestion.fields import SESSION_FIELDS, read_records, spark_schema
from athlete_platform.ingestion.quarantine import quarantine_rows
from athlete_platform.ingestion.silver import session_rule_failures, typed_sessions
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.ddl import ensure_table, register_external
from athlete_platform.lakehouse.delta_rs import table_location
from athlete_platform.lakehouse.step import wall_clock
from athlete_platform.lakehouse.writes import insert_missing
from athlete_platform.online import intraday
from athlete_platform.online.sqlite_store import utc_now_iso
from athlete_platform.online.store import KEY

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from athlete_platform.config import Settings
    from athlete_platform.lakehouse.tables import TableNames
    from athlete_platform.online.store import OnlineStore

log = logging.getLogger("athlete_platform")

QUARANTINE_SOURCE = "stream"
#: Event columns carried through field reading (`source` is a session field too, hence the alias).
PASSTHROUGH = ("payload", "event_id", "payload_truncated", "event_source", "_received_at")
PASSTHROUGH_DDL = (
    "payload string, event_id string, payload_truncated boolean, event_source string, _received_at timestamp"
)
_ISO_UTC = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"
#: How often the job re-reads silver.athletes (known athletes and their TRIMP profile).
ATHLETES_REFRESH_S = 60.0
#: How often the running job re-projects rows a newer batch row made stale (the reset rule).
SWEEP_EVERY_S = 60.0


class StreamFailed(PlatformError):
    """The streaming query stopped on an error (a store down, a table dropped); restart resumes."""


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "desc", None) or str(exc)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:400]


def checkpoint_path(settings: Settings) -> Path:
    """The query's checkpoint: one per lakehouse and schema prefix."""
    return settings.data_path / "checkpoints" / f"{settings.catalog.schema_prefix}streaming_features"


# --------------------------------------------------------------------------------------------
# Transform (pure DataFrame -> DataFrame)
# --------------------------------------------------------------------------------------------


def checked_events(events: DataFrame, athletes: DataFrame) -> DataFrame:
    """Pure transform: bronze.session_events rows -> one row per event with the typed session
    fields and `reason` (every silver rule it breaks, null when valid; `payload_too_large` for a
    cut payload). `athletes` holds the known `athlete_id`s. Times leave as ISO-8601 UTC text."""
    from pyspark.sql import functions as F

    rows = events.select(
        "payload", "event_id", "payload_truncated", F.col("source").alias("event_source"), "_received_at"
    )
    parsed = rows.mapInPandas(
        partial(read_records, fields=SESSION_FIELDS, passthrough=PASSTHROUGH),
        spark_schema(SESSION_FIELDS, PASSTHROUGH_DDL),
    )
    # Time rules are judged against arrival, as silver judges against landing.
    typed = typed_sessions(parsed).withColumn("_ingested_at", F.col("_received_at"))
    judged = session_rule_failures(typed, athletes.select(KEY))
    too_large = F.when(F.col("payload_truncated"), F.lit("payload_too_large"))
    reason = F.concat_ws(",", too_large, F.col("reason"))
    return judged.withColumn("reason", F.when(reason != "", reason)).select(
        "event_id",
        "event_source",
        "payload",
        "reason",
        "session_id",
        KEY,
        F.col("session_date").cast("string").alias("session_date"),
        F.date_format("start_time", _ISO_UTC).alias("start_time"),
        "duration_s",
        "distance_m",
        "avg_hr",
        F.date_format("updated_at", _ISO_UTC).alias("updated_at"),
        F.date_format("_received_at", _ISO_UTC).alias("received_at"),
    )


# --------------------------------------------------------------------------------------------
# The micro-batch
# --------------------------------------------------------------------------------------------


@dataclass
class BatchCounts:
    batches: int = 0
    events: int = 0
    quarantined: int = 0
    athletes_updated: int = 0
    last: dict[str, int] = field(default_factory=dict)


class IntradayWriter:
    """The `foreachBatch` function: validate, quarantine, update the online store."""

    def __init__(self, spark: SparkSession, names: TableNames, store: OnlineStore, query_name: str) -> None:
        self.spark, self.names, self.store, self.query_name = spark, names, store, query_name
        self.counts = BatchCounts()
        self.failure: Exception | None = None
        self._athletes: tuple[DataFrame, dict[str, dict[str, Any]]] | None = None
        self._athletes_read_at = 0.0
        # The sweep (main thread) and the batches (Spark's callback thread) both read-modify-write rows.
        self.lock = threading.Lock()

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        try:
            self.process(batch, batch_id)
        except Exception as exc:  # kept for the job's one-paragraph message; Spark stops the query
            self.failure = exc
            raise

    def process(self, batch: DataFrame, batch_id: int) -> None:
        started = time.perf_counter()
        known, profiles = self.athletes()
        rows = [row.asDict() for row in checked_events(batch, known).collect()]
        validated = time.perf_counter()
        rejected = [r for r in rows if r["reason"] is not None]
        valid = [r for r in rows if r["reason"] is None]
        if rejected:
            self.quarantine(rejected, batch_id)
        quarantined = time.perf_counter()
        with self.lock:
            updated = self.update_store(valid, profiles) if valid else 0
        stored = time.perf_counter()
        self.counts.batches += 1
        self.counts.events += len(rows)
        self.counts.quarantined += len(rejected)
        self.counts.athletes_updated += updated
        seconds = {
            "validate_s": validated - started,
            "quarantine_s": quarantined - validated,
            "store_s": stored - quarantined,
        }
        self.counts.last = {"batch_id": batch_id, "events": len(rows), "quarantined": len(rejected), **seconds}
        log.info(
            "stream batch %d: %d events, %d quarantined, %d athletes (validate %.2f, quarantine %.2f, store %.2f s)",
            batch_id,
            len(rows),
            len(rejected),
            updated,
            *seconds.values(),
        )

    def athletes(self) -> tuple[DataFrame, dict[str, dict[str, Any]]]:
        """The known athlete_ids (a small in-memory frame for the rules) and their TRIMP profiles,
        from silver.athletes, re-read every `ATHLETES_REFRESH_S`: no catalog lookup or table scan
        per micro-batch. (Profiles change with the nightly batch; an athlete silver does not know
        yet is quarantined as unknown.)"""
        now = time.monotonic()
        if self._athletes is None or now - self._athletes_read_at > ATHLETES_REFRESH_S:
            columns = [KEY, *intraday.PROFILE_FIELDS]
            rows = self.spark.table(self.names(tables.ATHLETES)).select(*columns).collect()
            known = self.spark.createDataFrame([(r[KEY],) for r in rows], "athlete_id string")
            self._athletes = (known, {r[KEY]: r.asDict() for r in rows})
            self._athletes_read_at = now
        return self._athletes

    def quarantine(self, rejected: list[dict[str, Any]], batch_id: int) -> None:
        frame = self.spark.createDataFrame(
            [(r["event_source"], r["event_id"], r["payload"], r["reason"]) for r in rejected],
            "source_file string, record_key string, payload string, reason string",
        )
        run_id = f"{self.query_name}:batch-{batch_id}"
        insert_missing(
            self.spark,
            self.names(tables.QUARANTINE),
            quarantine_rows(frame, QUARANTINE_SOURCE, run_id, wall_clock()),
            tables.QUARANTINE.keys,
        )

    def update_store(self, valid: list[dict[str, Any]], profiles: Mapping[str, Mapping[str, Any]]) -> int:
        by_athlete: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in valid:
            by_athlete[event[KEY]].append(event)
        stored = self.store.get(sorted(by_athlete))
        bases = self.batch_bases(by_athlete, stored)
        pools = self.load_pools(by_athlete, stored, bases)
        now = utc_now_iso()
        upserts = []
        for athlete, events in sorted(by_athlete.items()):
            loads = intraday.session_loads(events, profiles[athlete], pools.get(athlete, ()))
            new = [streamed_session(event, load, imputed) for event, (load, imputed) in zip(events, loads, strict=True)]
            fields = intraday.update_row(stored.get(athlete), bases[athlete], new, now)
            upserts.append({KEY: athlete, **fields})
        return self.store.apply(upserts=upserts)

    def batch_bases(
        self, by_athlete: Mapping[str, list[dict[str, Any]]], stored: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, intraday.BatchBase]:
        """Each athlete's latest batch feature row: the online row (materialized), else the
        feature table, else all-zero states before the first streamed session."""
        bases = {a: base for a in by_athlete if (base := intraday.BatchBase.from_row(stored.get(a))) is not None}
        missing = [a for a in by_athlete if a not in bases]
        if missing:
            bases.update(self.latest_feature_rows(missing))
        for athlete in by_athlete:
            if athlete not in bases:
                streamed = [s.session_date for s in intraday.read_state(stored.get(athlete)).values()]
                first = date.fromisoformat(min([e["session_date"] for e in by_athlete[athlete]] + streamed))
                bases[athlete] = intraday.BatchBase.before_first_session(first)
        return bases

    def latest_feature_rows(self, athletes: list[str]) -> dict[str, intraday.BatchBase]:
        from pyspark.sql import functions as F

        name = self.names(tables.ATHLETE_ROLLING_FEATURES)
        if not self.spark.catalog.tableExists(name):
            return {}
        latest = (
            self.spark.table(name)
            .where(F.col(KEY).isin(athletes))
            .groupBy(KEY)
            .agg(F.max_by(F.struct(*intraday.BASE_FIELDS), "feature_date").alias("row"))
            .collect()
        )
        return {row[KEY]: intraday.BatchBase.from_row(row["row"].asDict()) for row in latest}

    def load_pools(
        self,
        by_athlete: Mapping[str, list[dict[str, Any]]],
        stored: Mapping[str, Mapping[str, Any]],
        bases: Mapping[str, intraday.BatchBase],
    ) -> dict[str, list[intraday.LoadPoolSession]]:
        """For athletes with a session without heart rate: their sessions with heart rate of the
        28 days before it (silver.sessions, then the streamed ones), for TRIMP imputation."""
        from pyspark.sql import functions as F

        need = {
            a: min(e["session_date"] for e in events if e["avg_hr"] is None)
            for a, events in by_athlete.items()
            if any(e["avg_hr"] is None for e in events)
        }
        if not need:
            return {}
        pools: dict[str, list[intraday.LoadPoolSession]] = defaultdict(list)
        earliest = min(date.fromisoformat(d) for d in need.values()) - timedelta(days=28)
        sessions = self.names(tables.SESSIONS)
        if self.spark.catalog.tableExists(sessions):
            for row in (
                self.spark.table(sessions)
                .where(F.col(KEY).isin(list(need)) & ~F.col("load_imputed") & (F.col("session_date") >= earliest))
                .select(KEY, "session_id", "session_date", "duration_s", "session_load")
                .collect()
            ):
                pools[row[KEY]].append(
                    intraday.LoadPoolSession(row["session_date"], row["duration_s"], row["session_load"])
                )
        for athlete in need:  # streamed sessions with heart rate the batch has not seen
            for session in intraday.prune(intraday.read_state(stored.get(athlete)), bases[athlete]).values():
                if session.avg_hr is not None:
                    pools[athlete].append(
                        intraday.LoadPoolSession(
                            date.fromisoformat(session.session_date), session.duration_s, session.load
                        )
                    )
        return pools

    def sweep(self) -> int:
        """Re-project (or clear) intraday fields a newer batch row made stale: the reset rule."""
        with self.lock:
            rows = self.store.get(self.store.keys())
            updates = intraday.reproject_updates(rows, utc_now_iso())
            return self.store.apply(upserts=updates) if updates else 0


def streamed_session(event: Mapping[str, Any], load: float, imputed: bool) -> intraday.StreamedSession:
    return intraday.StreamedSession(
        session_id=event["session_id"],
        session_date=event["session_date"],
        start_time=event["start_time"],
        duration_s=float(event["duration_s"]),
        distance_m=float(event["distance_m"]),
        avg_hr=None if event["avg_hr"] is None else float(event["avg_hr"]),
        load=load,
        load_imputed=imputed,
        updated_at=event["updated_at"],
        event_id=event["event_id"],
        received_at=event["received_at"],
    )


# --------------------------------------------------------------------------------------------
# The query
# --------------------------------------------------------------------------------------------


def prepare_tables(spark: SparkSession, names: TableNames, settings: Settings) -> str:
    """Register bronze.session_events (created by the writer or here), make sure quarantine
    exists, and require silver.athletes (the rules need the known athletes); returns the source name."""
    source = register_external(spark, names, tables.SESSION_EVENTS, table_location(settings, tables.SESSION_EVENTS))
    ensure_table(spark, names, tables.QUARANTINE)
    athletes = names(tables.ATHLETES)
    if not spark.catalog.tableExists(athletes):
        raise SetupError(
            f"{athletes} does not exist yet, so no event can be judged (unknown athlete). Run the batch first "
            "(`athlete-platform run`, or ingest + silver), then start the stream."
        )
    return source


def tune_for_micro_batches(spark: SparkSession) -> None:
    """Micro-batches are a few rows: adaptive execution and whole-stage code generation cost more
    (re-planning, compiling each new plan) than they save. For the stream job's own session."""
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    spark.conf.set("spark.sql.codegen.wholeStage", "false")


def start_query(
    spark: SparkSession,
    source: str,
    writer: IntradayWriter,
    checkpoint: Path,
    trigger_s: float = 1.0,
    available_now: bool = False,
) -> StreamingQuery:
    """readStream on the Delta table, foreachBatch `writer`, checkpoint on disk."""
    stream = spark.readStream.option("maxFilesPerTrigger", 10_000).table(source)
    trigger = {"availableNow": True} if available_now else {"processingTime": f"{trigger_s} seconds"}
    return (
        stream.writeStream.queryName(writer.query_name)
        .foreachBatch(writer)
        .option("checkpointLocation", str(checkpoint))
        .trigger(**trigger)
        .start()
    )


class _CheckpointLock:
    """One running query per checkpoint (an flock the kernel drops when the process dies)."""

    def __init__(self, checkpoint: Path) -> None:
        self.path = checkpoint.with_name(checkpoint.name + ".lock")

    def __enter__(self) -> _CheckpointLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise ConcurrencyError(
                f"Another streaming job runs on checkpoint {self.path.with_suffix('')} (pid {holder}). Stop it first; "
                "two queries on one checkpoint would corrupt it."
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def run_stream(
    settings: Settings,
    master: str | None = None,
    trigger_s: float = 1.0,
    available_now: bool = False,
    say=print,
) -> BatchCounts:
    """The streaming job: runs until stopped (Ctrl-C, SIGTERM), or, with `available_now`, until
    every event posted so far is processed."""
    from athlete_platform.lakehouse.spark import build_spark
    from athlete_platform.lakehouse.tables import TableNames
    from athlete_platform.online.backends import open_store

    checkpoint = checkpoint_path(settings)
    with _CheckpointLock(checkpoint):
        spark = build_spark(settings, master=master)
        tune_for_micro_batches(spark)
        names = TableNames.from_settings(settings.catalog)
        source = prepare_tables(spark, names, settings)
        store = open_store(settings)
        writer = IntradayWriter(spark, names, store, f"streaming_features_{settings.catalog.schema_prefix}".rstrip("_"))
        try:
            swept = writer.sweep()
            mode = "available events, then stop" if available_now else f"trigger every {trigger_s:g} s"
            say(
                f"streaming {source} -> online store {store.metadata().location} ({mode}); checkpoint {checkpoint}"
                + (f"; {swept} stale intraday rows re-projected" if swept else ""),
            )
            query = start_query(spark, source, writer, checkpoint, trigger_s, available_now)
            try:
                while not query.awaitTermination(SWEEP_EVERY_S):
                    writer.sweep()
            except KeyboardInterrupt:
                say("stopping ...")
                query.stop()
            failure = query.exception()
            if failure is not None:
                cause = _first_line(writer.failure or failure)
                raise StreamFailed(
                    f"The streaming query stopped: {cause}. Nothing counted is lost or doubled: fix "
                    f"the cause (e.g. start the online store) and start the job again; it resumes from {checkpoint}."
                ) from None
        finally:
            store.close()
    counts = writer.counts
    say(
        f"stream stopped: {counts.batches} micro-batches, {counts.events} events, {counts.quarantined} quarantined, "
        f"{counts.athletes_updated} athlete rows updated"
    )
    return counts
