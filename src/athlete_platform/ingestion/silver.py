"""Silver: typed, validated, deduplicated athletes, sessions and races.

Each run rebuilds the silver view of *all* bronze records (latest record per key wins) and
MERGEs it in: unchanged rows are not rewritten, late or corrected records update their
rows, and a key whose latest record is now invalid leaves silver and goes to quarantine.
Rejected records go to bronze.quarantine with the name of every rule they break; Delta
CHECK constraints on the silver tables back the rules up.

The transforms (`parse_*`, `latest_per_key`, `session_rule_failures`, `races_from_sessions`)
are pure DataFrame -> DataFrame functions; `run_silver` does the I/O.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from athlete_platform.features import metrics
from athlete_platform.ingestion.bronze import quarantine_rows
from athlete_platform.lakehouse import schemas
from athlete_platform.lakehouse.writes import insert_missing, merge_upsert, utc_timestamp

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from athlete_platform.lakehouse.tables import TableNames

log = logging.getLogger(__name__)

SESSION_FIELDS = (
    "session_id STRING, athlete_id STRING, sport STRING, start_time STRING, duration_s DOUBLE, distance_m DOUBLE, "
    "elevation_gain_m DOUBLE, avg_hr DOUBLE, max_hr DOUBLE, rpe INT, notes STRING, is_race BOOLEAN, source STRING, "
    "updated_at STRING"
)
ATHLETE_FIELDS = (
    "athlete_id STRING, sex STRING, birth_date STRING, weight_kg DOUBLE, hr_rest DOUBLE, hr_max DOUBLE, "
    "lthr DOUBLE, timezone STRING, updated_at STRING"
)
SPORTS = ("run", "ride", "swim", "other")
# Fastest plausible average speed per sport, m/s (world-class efforts sit well below).
MAX_SPEED_M_PER_S = {"run": 12.0, "ride": 30.0, "swim": 3.0, "other": 50.0}
HR_MIN_BPM, HR_MAX_BPM = 25, 250


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

    @property
    def reconciles(self) -> bool:
        accounted = self.superseded + self.sessions_valid + self.sessions_quarantined + self.sessions_deferred
        return self.session_records == accounted


def parse_records(raw: DataFrame, record_type: str, fields: str) -> DataFrame:
    """Bronze rows of one record type -> typed columns (+ payload and lineage kept)."""
    from pyspark.sql import functions as F

    parsed = F.from_json("payload", fields)
    columns = [c.split()[0] for c in fields.split(", ")]
    return raw.where(F.col("record_type") == record_type).select(
        *[parsed[c].alias(c) for c in columns], "payload", "_source_file", "_line_number", "_ingested_at"
    )


def typed_sessions(parsed: DataFrame) -> DataFrame:
    """Timestamps to UTC (offsets in the payload are honoured), lower-case sport, defaults."""
    from pyspark.sql import functions as F

    start = F.to_timestamp("start_time")
    return parsed.withColumns(
        {
            "start_time": start,
            "session_date": F.to_date(start),
            "updated_at": F.to_timestamp("updated_at"),
            "sport": F.lower(F.trim("sport")),
            "is_race": F.coalesce("is_race", F.lit(False)),
            "source": F.coalesce("source", F.lit("app")),
        }
    )


def typed_athletes(parsed: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return parsed.withColumns(
        {
            "birth_date": F.to_date("birth_date"),
            "updated_at": F.to_timestamp("updated_at"),
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


def _failures(rules: dict[str, Column]) -> Column:
    """Comma-separated names of the rules a row breaks (null when it breaks none)."""
    from pyspark.sql import functions as F

    names = [F.when(~F.coalesce(ok, F.lit(False)), F.lit(name)) for name, ok in rules.items()]
    joined = F.concat_ws(",", *names)
    return F.when(joined != "", joined)


def session_rule_failures(sessions: DataFrame, athletes: DataFrame, now: datetime) -> DataFrame:
    """Adds `reason`: every validation rule the session breaks (null when valid).

    `now` is the job's wall-clock time (naive UTC): a session that starts after it cannot
    have happened. A session after the *run date* but before now is not invalid, only not
    due yet (see `run_silver`).
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
        "sport_known": F.col("sport").isin(*SPORTS),
        "duration_positive": F.col("duration_s") > 0,
        "distance_non_negative": F.col("distance_m") >= 0,
        "hr_range": hr_ok("avg_hr") & hr_ok("max_hr"),
        "speed_plausible": (F.col("duration_s") <= 0)
        | (F.col("distance_m") / F.col("duration_s") <= F.coalesce(max_speed[F.col("sport")], F.lit(50.0))),
        "start_not_in_future": F.col("start_time") < utc_timestamp(now),
        "athlete_known": F.col("_known_athlete").isNotNull(),
    }
    return joined.withColumn("reason", _failures(rules)).drop("_known_athlete")


def athlete_rule_failures(athletes: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    rules = {
        "required_fields": F.col("athlete_id").isNotNull() & F.col("hr_rest").isNotNull() & F.col("hr_max").isNotNull(),
        "sex_valid": F.col("sex").isin("F", "M"),
        "hr_order": (F.col("hr_rest") > 0) & (F.col("hr_max") > F.col("hr_rest")),
    }
    return athletes.withColumn("reason", _failures(rules))


LOAD_SCHEMA = "session_id string, session_load double, load_imputed boolean"


def athlete_session_loads(frame: pd.DataFrame) -> pd.DataFrame:
    """One athlete's sessions -> TRIMP per session, imputed (28-day median) where no HR."""
    order = frame.sort_values(["start_time", "session_id"], kind="stable")
    load = metrics.trimp(
        order["duration_s"].to_numpy(float),
        order["avg_hr"].to_numpy(float),
        order["hr_rest"].to_numpy(float),
        order["hr_max"].to_numpy(float),
        order["sex"].to_numpy(object),
    )
    days = pd.to_datetime(order["session_date"]).to_numpy("datetime64[D]")
    final, imputed = metrics.impute_missing_loads(days, order["duration_s"].to_numpy(float), np.asarray(load, float))
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


def races_from_sessions(sessions: DataFrame) -> DataFrame:
    """Race results with their Daniels VDOT (labels for the time estimator)."""
    from pyspark.sql import functions as F

    races = sessions.where(F.col("is_race") & (F.col("sport") == "run") & (F.col("distance_m") > 0))
    v = F.col("distance_m") / (F.col("duration_s") / 60.0)
    t = F.col("duration_s") / 60.0
    vo2 = F.lit(-4.60) + 0.182258 * v + 0.000104 * v * v
    pct = F.lit(0.8) + 0.1894393 * F.exp(-0.012778 * t) + 0.2989558 * F.exp(-0.1932605 * t)
    return races.select(
        "session_id",
        "athlete_id",
        F.col("session_date").alias("race_date"),
        "distance_m",
        F.col("duration_s").alias("finish_time_s"),
        (vo2 / pct).alias("vdot"),
    )


def run_silver(spark: SparkSession, names: TableNames, run_date: date, run_id: str, now: datetime) -> SilverCounts:
    """Rebuild silver from bronze for `run_date` (sessions must start before the end of that day)."""
    from pyspark.sql import functions as F

    raw_table = names(schemas.SESSIONS_RAW.id)
    if not spark.catalog.tableExists(raw_table):
        from athlete_platform.errors import SetupError

        raise SetupError(f"{raw_table} does not exist yet: run bronze ingestion first (`athlete-platform ingest`).")
    raw = spark.table(raw_table)
    athletes_table = schemas.ensure_table(spark, names, schemas.ATHLETES)
    sessions_table = schemas.ensure_table(spark, names, schemas.SESSIONS)
    races_table = schemas.ensure_table(spark, names, schemas.RACES)
    quarantine_table = schemas.ensure_table(spark, names, schemas.QUARANTINE)
    stamp = F.lit(run_id).alias("_run_id")

    # Athletes
    athletes_all = typed_athletes(parse_records(raw, "athlete", ATHLETE_FIELDS))
    athletes_latest, _ = latest_per_key(athletes_all.where(F.col("athlete_id").isNotNull()), "athlete_id")
    athletes_checked = athlete_rule_failures(athletes_latest).cache()
    athletes_valid = athletes_checked.where("reason IS NULL").select(*schemas.ATHLETES.column_names[:-1], stamp)
    merge_upsert(spark, athletes_table, athletes_valid, ["athlete_id"], delete_missing=True)

    # Sessions
    sessions_all = typed_sessions(parse_records(raw, "session", SESSION_FIELDS)).cache()
    sessions_latest, superseded = latest_per_key(sessions_all, "session_id")
    # A run for day D takes the sessions that started before the end of D (UTC). A later one
    # that has already landed (a backfill, or an export written past midnight) is deferred to
    # the run for its own day: neither accepted nor quarantined now, so a backfill of days
    # D1..D3 leaves the same rows as three daily runs. Only a start after the job's wall-clock
    # `now` is an error (start_not_in_future).
    due_before = datetime.combine(run_date + timedelta(days=1), datetime.min.time())
    not_due = (F.col("start_time") >= utc_timestamp(due_before)) & (F.col("start_time") < utc_timestamp(now))
    checked = (
        session_rule_failures(sessions_latest, athletes_valid, now)
        .withColumn("_deferred", F.coalesce(not_due, F.lit(False)))
        .cache()
    )
    valid = with_session_loads(checked.where("NOT _deferred AND reason IS NULL"), athletes_valid).cache()
    columns = [c for c in schemas.SESSIONS.column_names if c != "_run_id"]
    # Sessions after D are not in this run's source: they must not be deleted by it.
    merge_upsert(
        spark,
        sessions_table,
        valid.select(*columns, stamp),
        ["session_id"],
        delete_missing=True,
        delete_only_where=f"t.session_date <= DATE'{run_date}'",
    )

    # Quarantine: invalid sessions and athletes (superseded duplicates are not errors).
    rejected = (
        checked.where("NOT _deferred AND reason IS NOT NULL")
        .select(
            F.col("_source_file").alias("source_file"), F.col("session_id").alias("record_key"), "payload", "reason"
        )
        .unionByName(
            athletes_checked.where("reason IS NOT NULL").select(
                F.col("_source_file").alias("source_file"), F.col("athlete_id").alias("record_key"), "payload", "reason"
            )
        )
    )
    insert_missing(spark, quarantine_table, quarantine_rows(rejected, "silver", run_id, now), ["quarantine_id"])

    # Races
    races = races_from_sessions(spark.table(sessions_table))
    merge_upsert(spark, races_table, races.select("*", stamp), ["session_id"], delete_missing=True)

    counts = SilverCounts(
        session_records=sessions_all.count(),
        superseded=superseded.count(),
        sessions_valid=valid.count(),
        sessions_quarantined=checked.where("NOT _deferred AND reason IS NOT NULL").count(),
        sessions_deferred=checked.where("_deferred").count(),
        athletes_valid=spark.table(athletes_table).count(),
        athletes_quarantined=athletes_checked.where("reason IS NOT NULL").count(),
        races=spark.table(races_table).count(),
    )
    for frame in (athletes_checked, sessions_all, checked, valid):
        frame.unpersist()
    log.info(
        "silver sessions: %d records = %d superseded + %d valid + %d quarantined + %d after the run date%s; "
        "athletes %d valid, %d quarantined; races %d",
        counts.session_records,
        counts.superseded,
        counts.sessions_valid,
        counts.sessions_quarantined,
        counts.sessions_deferred,
        "" if counts.reconciles else " (DOES NOT RECONCILE)",
        counts.athletes_valid,
        counts.athletes_quarantined,
        counts.races,
    )
    return counts
