"""Silver: typed, validated, deduplicated athletes, sessions, races and race splits.

Each run rebuilds the silver view of the bronze records it must judge again
(`ingestion.silver_scope`: every record of the sessions with records added, removed or become
due since the last run, of athletes whose profile changed; every record on the first run or
with `--full-refresh`) and MERGEs it in, deleting only within what it judged; the loads of the
stored sessions after the earliest touched day are recomputed with them (`load_context`). The
result equals a full rebuild. Every record is
read field by field (`ingestion.fields`: nothing can fail a cast) and judged on its own; the
latest *valid* record per key wins, so a broken correction or profile update goes to
quarantine and the last valid version stays. Unchanged rows are not rewritten, late or
corrected records update their rows. Rejected records go to bronze.quarantine with the name
of every rule they break; Delta CHECK constraints on the silver tables back the rules up.
A race's per-km splits come from its winning record (`ingestion.race_splits`); broken splits
are quarantined on their own, the race stays.

The transforms (`parse_*`, `latest_per_key`, `session_rule_failures`, `races_from_sessions`)
are pure DataFrame -> DataFrame functions, composed by `silver_transform`; `SilverStep` does the I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from athlete_platform.domain import physiology
from athlete_platform.domain.limits import (
    CLOCK_SKEW_TOLERANCE_S,
    DEFAULT_MAX_SPEED_M_PER_S,
    HR_MAX_BPM,
    HR_MIN_BPM,
    MAX_ELEVATION_GAIN_M,
    MAX_HISTORY_DAYS,
    MAX_SESSION_DURATION_S,
    MAX_SPEED_M_PER_S,
    MAX_WEIGHT_KG,
    MIN_WEIGHT_KG,
    RPE_MAX,
    RPE_MIN,
    SPORTS,
)
from athlete_platform.errors import SetupError
from athlete_platform.ingestion.fields import ATHLETE_FIELDS, SESSION_FIELDS, Field, read_records, spark_schema
from athlete_platform.ingestion.quarantine import quarantine_rows
from athlete_platform.ingestion.race_splits import ABSENT, ACCEPTED, QUARANTINED, race_split_results
from athlete_platform.ingestion.silver_scope import (
    SILVER_TABLES,
    Recorded,
    Scope,
    full_rebuild_reason,
    incremental_scope,
    seed_rows,
    should_record,
    silver_layout,
)
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.ddl import ensure_table
from athlete_platform.lakehouse.delta import current_version, table_properties
from athlete_platform.lakehouse.step import Step, StepContext, wall_clock
from athlete_platform.lakehouse.writes import insert_missing, merge_upsert, utc_timestamp

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


log = logging.getLogger(__name__)

# Bronze columns carried through field reading (lineage and the payload quarantine keeps).
PASSTHROUGH = ("payload", "_source_file", "_line_number", "_ingested_at")
PASSTHROUGH_DDL = "payload string, _source_file string, _line_number bigint, _ingested_at timestamp"


@dataclass(frozen=True)
class SilverCounts:
    session_records: int
    superseded: int
    sessions_valid: int
    sessions_quarantined: int
    sessions_deferred: int
    athletes_valid: int
    athletes_quarantined: int
    races: int
    # Races (latest valid record, due by the run date) whose record carries splits, and what became of them.
    race_split_records: int = 0
    race_splits_accepted: int = 0
    race_splits_quarantined: int = 0
    race_split_rows: int = 0
    # How much this run judged: None for a full rebuild, else the sessions judged again and the
    # athletes with records among them.
    athletes_in_scope: int | None = None
    sessions_in_scope: int | None = None

    @property
    def reconciles(self) -> bool:
        accounted = self.superseded + self.sessions_valid + self.sessions_quarantined + self.sessions_deferred
        return self.session_records == accounted

    @property
    def splits_reconcile(self) -> bool:
        return self.race_split_records == self.race_splits_accepted + self.race_splits_quarantined


def parse_records(raw: DataFrame, record_type: str, fields: tuple[Field, ...]) -> DataFrame:
    """Bronze rows of one record type -> typed fields + `field_reason` (+ payload and lineage kept).

    Read field by field in Python (`ingestion.fields`), so no value can fail a cast here.
    """
    from pyspark.sql import functions as F

    rows = raw.where(F.col("record_type") == record_type).select(*PASSTHROUGH)
    return rows.mapInPandas(
        partial(read_records, fields=fields, passthrough=PASSTHROUGH), spark_schema(fields, PASSTHROUGH_DDL)
    )


def typed_sessions(parsed: DataFrame) -> DataFrame:
    """Epoch microseconds to UTC timestamps (offsets were honoured when read), lower-case sport, defaults."""
    from pyspark.sql import functions as F

    start = F.timestamp_micros("start_time")
    return parsed.withColumns(
        {
            "start_time": start,
            "session_date": F.to_date(start),
            "updated_at": F.timestamp_micros("updated_at"),
            "sport": F.lower(F.trim("sport")),
            "is_race": F.coalesce("is_race", F.lit(False)),
            "source": F.coalesce("source", F.lit("app")),
        }
    )


def typed_athletes(parsed: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return parsed.withColumns(
        {
            "birth_date": F.date_from_unix_date("birth_date"),
            "updated_at": F.timestamp_micros("updated_at"),
            "sex": F.upper(F.trim("sex")),
        }
    )


def latest_per_key(frame: DataFrame, key: str) -> tuple[DataFrame, DataFrame]:
    """(latest record per key, the superseded rest). Ties break on landing order."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy(key).orderBy(
        F.col("updated_at").desc_nulls_last(),
        F.col("_ingested_at").desc(),
        F.col("_source_file").desc(),
        F.col("_line_number").desc(),
    )
    ranked = frame.withColumn("_rank", F.row_number().over(order))
    return ranked.where("_rank = 1").drop("_rank"), ranked.where("_rank > 1").drop("_rank")


def profile_history(valid: DataFrame) -> DataFrame:
    """Pure transform: an athlete's valid profile records -> SCD type 2 versions.

    Records with the same `updated_at` are one version (the latest landed wins, as in
    `latest_per_key`). Version k is valid from its `updated_at` to version k+1's; version 1 from
    the beginning of time (`valid_from` null: nothing earlier is known, and a race before the
    first record still gets a profile). The last version is current: it equals silver.athletes.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    same_time = Window.partitionBy("athlete_id", "updated_at").orderBy(
        F.col("_ingested_at").desc(), F.col("_source_file").desc(), F.col("_line_number").desc()
    )
    versions = valid.withColumn("_rank", F.row_number().over(same_time)).where("_rank = 1").drop("_rank")
    order = Window.partitionBy("athlete_id").orderBy(F.col("updated_at").asc_nulls_first())
    numbered = versions.withColumns(
        {"profile_version": F.row_number().over(order).cast("int"), "_next": F.lead("updated_at").over(order)}
    )
    return numbered.select(
        "athlete_id",
        "profile_version",
        F.when(F.col("profile_version") > 1, F.col("updated_at")).cast("timestamp").alias("valid_from"),
        F.col("_next").alias("valid_to"),
        F.col("_next").isNull().alias("is_current"),
        *[c for c in tables.ATHLETE_PROFILE_HISTORY.column_names if c not in _HISTORY_OWN],
    )


_HISTORY_OWN = ("athlete_id", "profile_version", "valid_from", "valid_to", "is_current", "_run_id")


def _failures(frame: DataFrame, rules: dict[str, Column]) -> Column:
    """Comma-separated names of the rules a row breaks (null when it breaks none): the field
    rules `parse_records` found broken first, then `rules`.

    As in a Delta CHECK constraint, a rule that is null (a value it compares is absent)
    passes: absence is `required_fields`' business, so a missing start is named once.
    """
    from pyspark.sql import functions as F

    names = [F.when(~ok, F.lit(name)) for name, ok in rules.items()]
    if "field_reason" in frame.columns:
        names.insert(0, F.col("field_reason"))
    joined = F.concat_ws(",", *names)
    return F.when(joined != "", joined)


def session_rule_failures(sessions: DataFrame, athletes: DataFrame) -> DataFrame:
    """Adds `reason`: every validation rule the session breaks (null when valid).

    Time rules are judged against when the record landed in bronze (`_ingested_at`), so a
    re-run or a backfill years later decides the same: a session cannot start after it
    landed (plus a day of clock slack, `start_not_in_future`) nor more than
    `MAX_HISTORY_DAYS` before (`start_plausible`); a version stamp after landing
    (`updated_at_not_in_future`) would hide every later correction. A session after the
    *run date* is not invalid, only not due yet (see `silver_transform`).
    """
    from pyspark.sql import functions as F

    max_speed = F.create_map(*[x for sport, v in MAX_SPEED_M_PER_S.items() for x in (F.lit(sport), F.lit(v))])
    hr_ok = lambda c: F.col(c).isNull() | F.col(c).between(HR_MIN_BPM, HR_MAX_BPM)  # noqa: E731
    known = athletes.select(F.col("athlete_id").alias("_known_athlete"))
    joined = sessions.join(known, sessions.athlete_id == known._known_athlete, "left")
    rules = {
        "required_fields": F.col("session_id").isNotNull()
        & F.col("athlete_id").isNotNull()
        & F.col("start_time").isNotNull()
        & F.col("duration_s").isNotNull()
        & F.col("distance_m").isNotNull(),
        "sport_known": F.coalesce(F.col("sport").isin(*SPORTS), F.lit(False)),
        "duration_positive": F.col("duration_s") > 0,
        "duration_plausible": F.col("duration_s") <= MAX_SESSION_DURATION_S,
        "distance_non_negative": F.col("distance_m") >= 0,
        "elevation_plausible": F.col("elevation_gain_m").between(0, MAX_ELEVATION_GAIN_M),
        "hr_range": hr_ok("avg_hr") & hr_ok("max_hr"),
        "hr_order": F.col("avg_hr") <= F.col("max_hr"),
        "rpe_range": F.col("rpe").between(RPE_MIN, RPE_MAX),
        "speed_plausible": (F.col("duration_s") <= 0)
        | (
            F.col("distance_m") / F.col("duration_s")
            <= F.coalesce(max_speed[F.col("sport")], F.lit(DEFAULT_MAX_SPEED_M_PER_S))
        ),
        "start_not_in_future": F.col("start_time") <= _landed_plus_slack(),
        "start_plausible": F.col("start_time") >= F.col("_ingested_at") - F.expr(f"INTERVAL {MAX_HISTORY_DAYS} DAYS"),
        "updated_at_not_in_future": F.col("updated_at") <= _landed_plus_slack(),
        "athlete_known": F.col("_known_athlete").isNotNull(),
    }
    return joined.withColumn("reason", _failures(sessions, rules)).drop("_known_athlete")


def _landed_plus_slack() -> Column:
    """The latest start a session record can have: when it landed in bronze, plus clock slack."""
    from pyspark.sql import functions as F

    return F.col("_ingested_at") + F.expr(f"INTERVAL {CLOCK_SKEW_TOLERANCE_S} SECONDS")


def athlete_rule_failures(athletes: DataFrame) -> DataFrame:
    """Adds `reason`: every rule the profile record breaks (null when valid)."""
    from pyspark.sql import functions as F

    rules = {
        "required_fields": F.col("athlete_id").isNotNull() & F.col("hr_rest").isNotNull() & F.col("hr_max").isNotNull(),
        "sex_valid": F.coalesce(F.col("sex").isin("F", "M"), F.lit(False)),
        "hr_order": (F.col("hr_rest") > 0) & (F.col("hr_max") > F.col("hr_rest")),
        "hr_range": F.col("hr_rest").between(HR_MIN_BPM, HR_MAX_BPM) & F.col("hr_max").between(HR_MIN_BPM, HR_MAX_BPM),
        "lthr_range": F.col("lthr").between(F.col("hr_rest"), F.col("hr_max")),
        "weight_plausible": F.col("weight_kg").between(MIN_WEIGHT_KG, MAX_WEIGHT_KG),
        "birth_date_plausible": F.col("birth_date") <= F.to_date("_ingested_at"),
        "updated_at_not_in_future": F.col("updated_at") <= _landed_plus_slack(),
    }
    return athletes.withColumn("reason", _failures(athletes, rules))


LOAD_SCHEMA = "session_id string, session_load double, load_imputed boolean"


def athlete_session_loads(frame: pd.DataFrame) -> pd.DataFrame:
    """One athlete's sessions -> TRIMP per session, imputed (28-day median) where no HR."""
    order = frame.sort_values(["start_time", "session_id"], kind="stable")
    load = physiology.trimp(
        order["duration_s"].to_numpy(float),
        order["avg_hr"].to_numpy(float),
        order["hr_rest"].to_numpy(float),
        order["hr_max"].to_numpy(float),
        order["sex"].to_numpy(object),
    )
    days = pd.to_datetime(order["session_date"]).to_numpy("datetime64[D]")
    final, imputed = physiology.impute_missing_loads(days, order["duration_s"].to_numpy(float), np.asarray(load, float))
    return pd.DataFrame(
        {"session_id": order["session_id"].to_numpy(), "session_load": final, "load_imputed": imputed.astype(bool)}
    )


def with_session_loads(sessions: DataFrame, athletes: DataFrame) -> DataFrame:
    """Adds session_load and load_imputed (DESIGN.md section 4), computed per athlete."""
    inputs = sessions.join(athletes.select("athlete_id", "sex", "hr_rest", "hr_max"), "athlete_id").select(
        "athlete_id", "session_id", "start_time", "session_date", "duration_s", "avg_hr", "sex", "hr_rest", "hr_max"
    )
    loads = inputs.groupBy("athlete_id").applyInPandas(athlete_session_loads, LOAD_SCHEMA)
    return sessions.join(loads, "session_id")


def is_race_result() -> Column:
    """What makes a session a race result: a run flagged as a race, with a distance."""
    from pyspark.sql import functions as F

    return F.col("is_race") & (F.col("sport") == "run") & (F.col("distance_m") > 0)


def races_from_sessions(sessions: DataFrame) -> DataFrame:
    """Race results with their Daniels VDOT (labels for the time estimator)."""
    from pyspark.sql import functions as F

    races = sessions.where(is_race_result())
    return races.select(
        "session_id",
        "athlete_id",
        F.col("session_date").alias("race_date"),
        "distance_m",
        F.col("duration_s").alias("finish_time_s"),
        physiology.daniels_vdot(F.col("distance_m"), F.col("duration_s"), exp=F.exp).alias("vdot"),
    )


@dataclass(frozen=True)
class SilverInputs:
    raw: DataFrame  # the bronze.sessions_raw rows to judge (the scope's)
    due_before: datetime  # the run's logical time: sessions from then on belong to later runs
    run_id: str
    scope: Scope | None = None  # None: every record (unit tests of the transform)
    context: LoadContext | None = None  # None: every session is judged
    recorded: Recorded | None = None  # what this run records when it is done
    previously: Recorded | None = None


@dataclass(frozen=True)
class SilverOutputs:
    winners: DataFrame  # the latest valid record of each judged session
    athletes_checked: DataFrame  # every athlete record + reason (cached)
    athletes_valid: DataFrame  # rows for silver.athletes
    profile_history: DataFrame  # rows for silver.athlete_profile_history (SCD type 2)
    sessions_all: DataFrame  # every typed session record (cached)
    superseded: DataFrame
    checked: DataFrame  # every session record + reason + _deferred (cached)
    sessions_valid: DataFrame  # rows for silver.sessions (cached)
    rejected: DataFrame  # invalid sessions and athletes, races' broken splits, shaped for quarantine_rows
    split_results: DataFrame  # per race: its accepted splits, or why they were quarantined, or absent (cached)
    race_splits: DataFrame  # rows for silver.race_splits
    inputs: SilverInputs | None = None


@dataclass(frozen=True)
class LoadContext:
    """For an incremental run: the stored sessions whose loads a touched session can change."""

    stored: DataFrame  # silver.sessions rows of the athletes with judged sessions (not judged whole)
    sessions: DataFrame  # session_id of every touched session (their stored rows are replaced)


def load_context(sessions_all: DataFrame, context: LoadContext) -> DataFrame:
    """Pure transform: stored sessions (not touched) from `IMPUTATION_LOOKBACK_DAYS` before each
    athlete's earliest touched day on, with `_from` = that day; `_from` and later get new loads.

    The earliest touched day counts every judged record's day and every touched session's stored
    day (a session moved or dropped changes the pools after its old day); a load on an earlier
    day has a pool of earlier days only, so it cannot change.
    """
    from pyspark.sql import functions as F

    old_days = context.stored.join(context.sessions, "session_id", "left_semi")
    touched = (
        sessions_all.select("athlete_id", "session_date")
        .unionByName(old_days.select("athlete_id", "session_date"))
        .where(F.col("athlete_id").isNotNull() & F.col("session_date").isNotNull())
        .groupBy("athlete_id")
        .agg(F.min("session_date").alias("_from"))
    )
    untouched = context.stored.join(context.sessions, "session_id", "left_anti")
    return (
        untouched.join(touched, "athlete_id")
        .where(F.col("session_date") >= F.date_sub("_from", physiology.IMPUTATION_LOOKBACK_DAYS))
        .drop("session_load", "load_imputed", "_run_id")
    )


def silver_transform(
    raw: DataFrame, due_before: datetime, run_id: str, context: LoadContext | None = None
) -> SilverOutputs:
    """Pure transform: bronze records -> typed, validated, latest-per-key athletes and sessions.

    A run for day D takes the sessions that started before its logical time (the end of D,
    UTC). A later one that has already landed (a backfill, or an export written past
    midnight) is deferred to the run for its own day: neither accepted nor quarantined now,
    so a backfill of days D1..D3 leaves the same rows as three daily runs.
    """
    from pyspark.sql import functions as F

    stamp = F.lit(run_id).alias("_run_id")
    # Every record is judged on its own; the latest *valid* one per key wins, so a broken
    # correction or profile update is quarantined and the last good version stays.
    athletes_checked = athlete_rule_failures(typed_athletes(parse_records(raw, "athlete", ATHLETE_FIELDS))).cache()
    athletes_latest, _ = latest_per_key(athletes_checked.where("reason IS NULL"), "athlete_id")
    athletes_valid = athletes_latest.select(*tables.ATHLETES.column_names[:-1], stamp)
    history = profile_history(athletes_checked.where("reason IS NULL")).select("*", stamp)

    sessions_all = typed_sessions(parse_records(raw, "session", SESSION_FIELDS)).cache()
    checked = session_rule_failures(sessions_all, athletes_valid)
    not_due = (F.col("start_time") >= utc_timestamp(due_before)) & (F.col("start_time") <= _landed_plus_slack())
    checked = checked.withColumn("_deferred", F.coalesce(not_due, F.lit(False))).cache()
    sessions_latest, superseded = latest_per_key(checked.where("NOT _deferred AND reason IS NULL"), "session_id")
    columns = [c for c in tables.SESSIONS.column_names if c != "_run_id"]
    if context is None:
        valid = with_session_loads(sessions_latest, athletes_valid).cache()
    else:
        # Loads over the judged sessions and the stored ones around them; a stored session is
        # written back only from its athlete's earliest touched day on (its pool is complete there).
        base = [c for c in columns if c not in ("session_load", "load_imputed")]
        around = load_context(sessions_all, context)
        pooled = sessions_latest.select(*base, F.lit(None).cast("date").alias("_from")).unionByName(
            around.select(*base, "_from")
        )
        loaded = with_session_loads(pooled, athletes_valid)
        valid = loaded.where(F.col("_from").isNull() | (F.col("session_date") >= F.col("_from"))).cache()

    # Splits of the races among them: judged on the winning record; broken ones quarantined, the race kept.
    race_records = sessions_latest.where(is_race_result()).select(
        "session_id",
        "athlete_id",
        F.col("session_date").alias("race_date"),
        "distance_m",
        F.col("duration_s").alias("finish_time_s"),
        "payload",
        F.col("_source_file").alias("source_file"),
    )
    split_results = race_split_results(race_records).cache()
    race_splits = split_results.where(F.col("status") == ACCEPTED).select(*tables.RACE_SPLITS.column_names[:-1], stamp)

    # Quarantine: invalid sessions and athletes (superseded duplicates are not errors), broken splits.
    rejected = (
        _rejected(checked.where("NOT _deferred AND reason IS NOT NULL"), "session_id")
        .unionByName(_rejected(athletes_checked.where("reason IS NOT NULL"), "athlete_id"))
        .unionByName(
            split_results.where(F.col("status") == QUARANTINED).select(
                "source_file", F.col("session_id").alias("record_key"), "payload", "reason"
            )
        )
    )
    return SilverOutputs(
        winners=sessions_latest,
        athletes_checked=athletes_checked,
        athletes_valid=athletes_valid,
        profile_history=history,
        sessions_all=sessions_all,
        superseded=superseded,
        checked=checked,
        sessions_valid=valid.select(*columns, stamp),
        rejected=rejected,
        split_results=split_results,
        race_splits=race_splits,
    )


def _rejected(records: DataFrame, key: str) -> DataFrame:
    """Invalid records shaped for `quarantine_rows`; a record without a usable key is named by its line."""
    from pyspark.sql import functions as F

    line = F.concat(F.lit("line "), F.col("_line_number").cast("string"))
    return records.select(
        F.col("_source_file").alias("source_file"), F.coalesce(key, line).alias("record_key"), "payload", "reason"
    ).dropDuplicates(["source_file", "record_key", "payload", "reason"])  # exact copies in one file: one row


class SilverStep(Step[SilverInputs, SilverOutputs, SilverCounts]):
    """bronze.sessions_raw -> silver.athletes, silver.sessions, silver.races, silver.race_splits (+ quarantine)."""

    def extract(self, ctx: StepContext, params: Mapping[str, Any]) -> SilverInputs:
        spark = ctx.spark
        raw_table = ctx.names(tables.SESSIONS_RAW)
        if not spark.catalog.tableExists(raw_table):
            raise SetupError(f"{raw_table} does not exist yet: run bronze ingestion first (`athlete-platform ingest`).")
        ensure_table(spark, ctx.names, tables.SESSIONS_RAW)  # a bronze table from before its key columns
        version = current_version(spark, raw_table)
        raw = spark.read.format("delta").option("versionAsOf", version).table(raw_table)
        sessions_table = ctx.names(tables.SESSIONS)
        missing = [ctx.names(t) for t in SILVER_TABLES if not spark.catalog.tableExists(ctx.names(t))]
        previously = Recorded.from_properties(
            table_properties(spark, sessions_table) if sessions_table not in missing else {}
        )
        change_feed = table_properties(spark, raw_table).get(tables.CDF_PROPERTY) == "true"
        table_id = spark.sql(f"DESCRIBE DETAIL {raw_table}").first()["id"]
        now = Recorded(version, ctx.logical_time, table_id, silver_layout())
        reason = full_rebuild_reason(previously, now, bool(params.get("full_refresh")), change_feed, missing)
        scope, context = Scope(raw, reason), None
        if reason is None:
            seeds = seed_rows(spark, raw_table, raw, previously, version, ctx.logical_time)
            if isinstance(seeds, str):
                log.warning("silver: %s; judging every bronze record", seeds)
                scope = Scope(raw, seeds)
            else:
                scope = incremental_scope(raw, seeds)
            if not scope.nothing_to_judge and scope.full_reason is None:
                by_session = scope.athletes.join(scope.whole, "athlete_id", "left_anti")
                stored = spark.table(sessions_table).join(by_session, "athlete_id", "left_semi")
                context = LoadContext(stored, scope.sessions)
        if scope.full_reason is not None:
            log.info("silver: judging every bronze record (%s)", scope.full_reason)
        else:
            log.info(
                "silver: incremental: %d sessions to judge again, of %d athletes",
                scope.session_count,
                scope.athlete_count,
            )
        recorded = now if change_feed else None
        return SilverInputs(scope.raw, ctx.logical_time, ctx.run_id, scope, context, recorded, previously)

    def run(self, ctx: StepContext, params: Mapping[str, Any] | None = None) -> SilverCounts:
        inputs = self.extract(ctx, params or {})
        if inputs.scope is not None and inputs.scope.nothing_to_judge:
            return self._nothing_to_judge(ctx, inputs)
        return self.load(ctx, self.transform(inputs))

    @staticmethod
    def _nothing_to_judge(ctx: StepContext, inputs: SilverInputs) -> SilverCounts:
        """No record landed, left or became due since the last run: no row can change, so no
        Spark work beyond the two table counts (a re-run, or a day without data)."""
        spark = ctx.spark
        athletes_table, races_table = ctx.names(tables.ATHLETES), ctx.names(tables.RACES)
        counts = SilverCounts(
            session_records=0,
            superseded=0,
            sessions_valid=0,
            sessions_quarantined=0,
            sessions_deferred=0,
            athletes_valid=spark.table(athletes_table).count(),
            athletes_quarantined=0,
            races=spark.table(races_table).count(),
            athletes_in_scope=0,
            sessions_in_scope=0,
        )
        record_run(spark, ctx.names(tables.SESSIONS), inputs.previously, inputs.recorded)
        log.info("silver: nothing landed, left or became due since the last run: no row to judge")
        return counts

    def transform(self, inputs: SilverInputs) -> SilverOutputs:
        out = silver_transform(inputs.raw, inputs.due_before, inputs.run_id, inputs.context)
        return replace(out, inputs=inputs)

    def load(self, ctx: StepContext, out: SilverOutputs) -> SilverCounts:
        from pyspark.sql import functions as F

        spark, names = ctx.spark, ctx.names
        run_scope = out.inputs.scope if out.inputs is not None else None
        incremental = run_scope is not None and run_scope.full_reason is None
        # What this run may delete: rows of the athletes and sessions it judged (else: any row).
        athletes_judged = run_scope.athletes if incremental else None
        sessions_judged = run_scope.sessions if incremental else None
        athletes_table, history_table, sessions_table, races_table, splits_table, quarantine_table = (
            ensure_table(spark, names, t) for t in SILVER_TABLES
        )
        for table, rows, spec in (
            (athletes_table, out.athletes_valid, tables.ATHLETES),
            (history_table, out.profile_history, tables.ATHLETE_PROFILE_HISTORY),
        ):
            merge_upsert(spark, table, rows, spec.keys, delete_missing=True, delete_within=athletes_judged)
        # Sessions after the run date are not in this run's source: they must not be deleted by it.
        merge_upsert(
            spark,
            sessions_table,
            out.sessions_valid,
            tables.SESSIONS.keys,
            delete_missing=True,
            delete_only_where=f"t.session_date <= DATE'{ctx.run_date}'",
            delete_within=sessions_judged,
        )
        # Like sessions: splits of races after the run date are not this run's to delete.
        merge_upsert(
            spark,
            splits_table,
            out.race_splits,
            tables.RACE_SPLITS.keys,
            delete_missing=True,
            delete_only_where=f"t.race_date <= DATE'{ctx.run_date}'",
            delete_within=sessions_judged,
        )
        insert_missing(
            spark,
            quarantine_table,
            quarantine_rows(out.rejected, "silver", ctx.run_id, wall_clock()),
            tables.QUARANTINE.keys,
        )
        # Races come from the merged table: it also holds later sessions earlier runs accepted.
        merged = spark.table(sessions_table)
        if sessions_judged is not None:
            merged = merged.join(sessions_judged, "session_id", "left_semi")
        races = races_from_sessions(merged)
        merge_upsert(
            spark,
            races_table,
            races.select("*", F.lit(ctx.run_id).alias("_run_id")),
            tables.RACES.keys,
            delete_missing=True,
            delete_within=sessions_judged,
        )
        counts = SilverCounts(
            session_records=out.sessions_all.count(),
            superseded=out.superseded.count(),
            sessions_valid=out.winners.count(),
            sessions_quarantined=out.checked.where("NOT _deferred AND reason IS NOT NULL").count(),
            sessions_deferred=out.checked.where("_deferred").count(),
            athletes_valid=spark.table(athletes_table).count(),
            athletes_quarantined=out.athletes_checked.where("reason IS NOT NULL").count(),
            races=spark.table(races_table).count(),
            **split_counts(out.split_results),
            athletes_in_scope=run_scope.athlete_count if incremental else None,
            sessions_in_scope=run_scope.session_count if incremental else None,
        )
        for frame in (out.athletes_checked, out.sessions_all, out.checked, out.split_results):
            frame.unpersist()
        if run_scope is not None:
            run_scope.release()
        if out.inputs is not None:
            record_run(spark, sessions_table, out.inputs.previously, out.inputs.recorded)
        log.info(
            "silver sessions: %d records = %d superseded + %d valid + %d quarantined + %d after the run date%s; "
            "athletes %d valid, %d quarantined; races %d; race splits: %d races = %d accepted (%d rows) + %d "
            "quarantined%s",
            counts.session_records,
            counts.superseded,
            counts.sessions_valid,
            counts.sessions_quarantined,
            counts.sessions_deferred,
            "" if counts.reconciles else " (DOES NOT RECONCILE)",
            counts.athletes_valid,
            counts.athletes_quarantined,
            counts.races,
            counts.race_split_records,
            counts.race_splits_accepted,
            counts.race_split_rows,
            counts.race_splits_quarantined,
            "" if counts.splits_reconcile else " (DOES NOT RECONCILE)",
        )
        return counts


def record_run(spark: SparkSession, sessions_table: str, previously: Recorded | None, now: Recorded | None) -> None:
    """Record the bronze version judged and the logical time on silver.sessions, last (a run
    killed before this is redone in full by the next); no commit when nothing moved."""
    if now is None or not should_record(previously or Recorded(None, None), now):
        return
    assignments = ", ".join(f"'{k}' = '{v}'" for k, v in now.properties().items())
    spark.sql(f"ALTER TABLE {sessions_table} SET TBLPROPERTIES ({assignments})")


def split_counts(split_results: DataFrame) -> dict[str, int]:
    """SilverCounts' split fields from `split_results` (one pass)."""
    from pyspark.sql import functions as F

    row = split_results.agg(
        F.countDistinct(F.when(F.col("status") != ABSENT, F.col("session_id"))).alias("records"),
        F.countDistinct(F.when(F.col("status") == ACCEPTED, F.col("session_id"))).alias("accepted"),
        F.count(F.when(F.col("status") == QUARANTINED, 1)).alias("quarantined"),
        F.count(F.when(F.col("status") == ACCEPTED, 1)).alias("rows"),
    ).first()
    return {
        "race_split_records": row["records"],
        "race_splits_accepted": row["accepted"],
        "race_splits_quarantined": row["quarantined"],
        "race_split_rows": row["rows"],
    }
