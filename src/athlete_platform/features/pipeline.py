"""Feature pipeline: silver.sessions + silver.races -> feature_store.athlete_rolling_features.

Incremental by design. For each athlete the run computes only days `start..run_date`:
  start = the day after the athlete's last feature row, or earlier when silver changed
          (late or corrected sessions or races found through the Change Data Feed of
          silver.sessions and silver.races since the versions this table was last computed
          from), or the first session day when the athlete is new or its history changed
          before the first session.
Both upstream tables are tracked, each by its own Delta version in this table's properties
(`athlete_platform.source.<table>_version`): a silver run killed between its sessions and
races commits, or a race corrected on its own, still reaches the features (issue 10, item 6).
A table with either version missing is not trusted and is recomputed in full once; so is a
table computed by an older definition of the features (`rolling.DEFINITION_VERSION`, recorded
in `athlete_platform.feature_definition`): a feature added later is computed for every stored
day instead of being null before the upgrade.
The carried state (ATL, CTL, the two ACWR EWMAs, the last 27 daily loads) is read back
from the feature rows of the 27 days before `start`, so no history is rescanned; the result
equals a full recompute (tested). `--full-refresh` recomputes every athlete from scratch.

The per-athlete computation is `rolling.daily_feature_arrays` (pure numpy), run by
`athlete_batches.feature_batches` in a `mapInArrow` over one tagged frame, partitioned and sorted
by athlete, holding each athlete's plan, its sessions and races of the window, and its prior
feature rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from athlete_platform.errors import SetupError
from athlete_platform.features import athlete_batches, rolling
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.ddl import ensure_table
from athlete_platform.lakehouse.delta import changes_between, current_version, table_properties
from athlete_platform.lakehouse.step import Step, StepContext, wall_clock
from athlete_platform.lakehouse.writes import merge_upsert, utc_timestamp

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


log = logging.getLogger(__name__)

DEFINITION_PROPERTY = "athlete_platform.feature_definition"
SOURCE_VERSION_PROPERTY = tables.FEATURE_SOURCE_VERSION_PROPERTIES[tables.SESSIONS]
RACES_VERSION_PROPERTY = tables.FEATURE_SOURCE_VERSION_PROPERTIES[tables.RACES]
LOOKBACK_DAYS = 89  # vdot_best_90d looks back d-89..d; the 28-day windows fit inside
STATE_DAYS = 27  # prior feature rows needed to resume (the 28-day windows)

SESSION_COLUMNS = rolling.SESSION_COLUMNS[1:]  # what the computation reads of a session, but its date


@dataclass(frozen=True)
class FeatureCounts:
    athletes: int  # recomputed
    rows_written: int  # new or changed rows (a recomputed day equal to the stored one is not written)
    full_refresh: bool
    sessions_version: int
    races_version: int


def _ddl(columns: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name} {type_}" for name, type_ in columns)


def _output_columns() -> list[tuple[str, str]]:
    by_name = {c.name: c.type for c in tables.ATHLETE_ROLLING_FEATURES.columns}
    return [("athlete_id", "STRING")] + [(c, by_name[c]) for c in rolling.FEATURE_COLUMNS]


def _tagged_columns() -> list[tuple[str, str]]:
    """Schema of the one tagged frame (`athlete_batches.TAGGED_COLUMNS`, table types)."""
    types = {
        **{c.name: c.type for c in tables.ATHLETE_ROLLING_FEATURES.columns},
        **{c.name: c.type for c in tables.SESSIONS.columns},
        "kind": "STRING",
        "day": "DATE",
        "first_session_date": "DATE",
        "end_date": "DATE",
        "vdot": "DOUBLE",
    }
    return [(name, types[name]) for name in athlete_batches.TAGGED_COLUMNS]


def plan_athletes(
    sessions: DataFrame, features: DataFrame | None, dirty_from: DataFrame | None, run_date: date
) -> DataFrame:
    """Pure transform: per athlete (athlete_id, first_session_date, start_date, end_date)."""
    from pyspark.sql import functions as F

    first = sessions.groupBy("athlete_id").agg(F.min("session_date").alias("first_session_date"))
    plan = first
    start = F.col("first_session_date")
    if features is not None:
        last = features.groupBy("athlete_id").agg(
            F.max("feature_date").alias("last_feature_date"), F.min("feature_date").alias("first_feature_date")
        )
        plan = plan.join(last, "athlete_id", "left")
        resume = F.date_add("last_feature_date", 1)
        if dirty_from is not None:
            plan = plan.join(dirty_from, "athlete_id", "left")
            resume = F.least(resume, F.coalesce("dirty_from", resume))
        # Resume only when the stored history still starts at the first session day.
        can_resume = F.col("last_feature_date").isNotNull() & (F.col("first_feature_date") == start)
        start = F.when(can_resume, F.greatest(resume, start)).otherwise(start)
    return plan.select(
        "athlete_id",
        "first_session_date",
        start.alias("start_date"),
        F.lit(run_date).cast("date").alias("end_date"),
    ).where(F.col("start_date") <= F.col("end_date"))


def tagged_inputs(plan: DataFrame, sessions: DataFrame, races: DataFrame, features: DataFrame | None) -> DataFrame:
    """Pure transform: one frame with the plan, window sessions/races and prior rows per athlete."""
    from pyspark.sql import functions as F

    window = plan.select("athlete_id", "first_session_date", "start_date", "end_date")
    in_window = lambda day: (  # noqa: E731
        (F.col(day) >= F.date_sub("start_date", LOOKBACK_DAYS)) & (F.col(day) <= F.col("end_date"))
    )
    parts = [
        plan.select(
            F.lit("plan").alias("kind"),
            "athlete_id",
            F.col("start_date").alias("day"),
            "first_session_date",
            "end_date",
        ),
        sessions.join(window, "athlete_id")
        .where(in_window("session_date"))
        .select(F.lit("session").alias("kind"), "athlete_id", F.col("session_date").alias("day"), *SESSION_COLUMNS),
        races.join(window.drop("first_session_date"), "athlete_id")
        .where(in_window("race_date"))
        .select(F.lit("race").alias("kind"), "athlete_id", F.col("race_date").alias("day"), "vdot"),
    ]
    if features is not None:
        prior_columns = athlete_batches.PRIOR_VALUE_COLUMNS
        parts.append(
            features.join(window, "athlete_id")
            .where(
                (F.col("feature_date") >= F.date_sub("start_date", STATE_DAYS))
                & (F.col("feature_date") >= F.col("first_session_date"))
                & (F.col("feature_date") < F.col("start_date"))
            )
            .select(F.lit("prior").alias("kind"), "athlete_id", F.col("feature_date").alias("day"), *prior_columns)
        )
    tagged = parts[0]
    for part in parts[1:]:
        tagged = tagged.unionByName(part, allowMissingColumns=True)
    return tagged.select(
        *[
            (F.col(name) if name in tagged.columns else F.lit(None)).cast(type_).alias(name)
            for name, type_ in _tagged_columns()
        ]
    )


def compute_features(tagged: DataFrame) -> DataFrame:
    """Run the per-athlete computation on the cluster: each athlete's rows in one partition,
    consecutive, for `athlete_batches.feature_batches`."""
    # A fixed count (spark.shuffle_partitions): AQE would size the partitions by the tagged
    # rows, which are small, and make so few that cores idle (3 tasks on 2 cores: one core idle
    # for a third of the step), while the Python code and the write are the heavy part.
    partitions = int(tagged.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    grouped = tagged.repartition(partitions, "athlete_id").sortWithinPartitions("athlete_id")
    return grouped.mapInArrow(athlete_batches.feature_batches, _ddl(_output_columns()))


def changed_athletes_since(
    spark: SparkSession, table: str, since_version: int, to_version: int, day_column: str = "session_date"
) -> DataFrame:
    """Per athlete, the earliest `day_column` touched by changes of `table` in (since, to]."""
    from pyspark.sql import functions as F

    changes = changes_between(spark, table, since_version, to_version)
    return changes.groupBy("athlete_id").agg(F.min(day_column).alias("dirty_from"))


def earliest_dirty_day(parts: list[DataFrame]) -> DataFrame | None:
    """Pure transform: per athlete the earliest `dirty_from` over several upstream change sets."""
    from pyspark.sql import functions as F

    if not parts:
        return None
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    return union.groupBy("athlete_id").agg(F.min("dirty_from").alias("dirty_from"))


def stale_rows(features: DataFrame, sessions: DataFrame, run_date: date) -> DataFrame:
    """Pure transform: keys of feature rows up to `run_date` that silver no longer supports: rows
    of an athlete with no session left, and rows before an athlete's (now later) first session day."""
    from pyspark.sql import functions as F

    first = sessions.groupBy("athlete_id").agg(F.min("session_date").alias("first_session_date"))
    return (
        features.where(F.col("feature_date") <= F.lit(run_date))
        .join(first, "athlete_id", "left")
        .where(F.col("first_session_date").isNull() | (F.col("feature_date") < F.col("first_session_date")))
        .select("athlete_id", "feature_date")
    )


def drop_stale_rows(spark: SparkSession, features_table: str, sessions: DataFrame, run_date: date) -> int:
    """Delete the `stale_rows`; returns how many. Only their files are rewritten, and with none
    nothing is committed (a `WHEN NOT MATCHED BY SOURCE` MERGE would rewrite every file)."""
    stale = stale_rows(spark.table(features_table), sessions, run_date).cache()
    try:
        count = stale.count()
        if count:
            stale.createOrReplaceTempView("_ap_stale_feature_rows")
            spark.sql(
                f"MERGE INTO {features_table} t USING _ap_stale_feature_rows s "
                "ON t.athlete_id = s.athlete_id AND t.feature_date = s.feature_date WHEN MATCHED THEN DELETE"
            )
            spark.catalog.dropTempView("_ap_stale_feature_rows")
    finally:
        stale.unpersist()
    return count


@dataclass(frozen=True)
class FeatureInputs:
    sessions: DataFrame  # silver.sessions at `sessions_version`, up to the run date
    races: DataFrame  # silver.races at `races_version`, up to the run date
    features: DataFrame | None  # stored rows up to the run date (None: full refresh)
    dirty_from: DataFrame | None  # per athlete, the earliest day silver changed since last time
    run_date: date
    sessions_version: int
    races_version: int
    recorded_versions: dict[str, str | None]  # property -> version recorded by the last run
    full_refresh: bool
    covers_all: bool  # no stored row after the run date (not a backfill of an earlier day)


@dataclass(frozen=True)
class FeatureOutputs:
    plan: DataFrame  # cached; per athlete the days to compute
    features: DataFrame  # the recomputed rows
    inputs: FeatureInputs


def feature_transform(
    sessions: DataFrame, races: DataFrame, features: DataFrame | None, dirty_from: DataFrame | None, run_date: date
) -> tuple[DataFrame, DataFrame]:
    """Pure transform: (per-athlete plan, the feature rows of the planned days)."""
    plan = plan_athletes(sessions, features, dirty_from, run_date)
    return plan, compute_features(tagged_inputs(plan, sessions, races, features))


class FeatureStep(Step[FeatureInputs, FeatureOutputs, FeatureCounts]):
    """silver.sessions + silver.races -> feature_store.athlete_rolling_features (incremental)."""

    def extract(self, ctx: StepContext, params: Mapping[str, Any]) -> FeatureInputs:
        from pyspark.sql import functions as F

        spark, run_date = ctx.spark, ctx.run_date
        sessions_table = ctx.names(tables.SESSIONS)
        if not spark.catalog.tableExists(sessions_table):
            raise SetupError(
                f"{sessions_table} does not exist yet: run the silver job first (`athlete-platform silver`)."
            )
        features_table = ensure_table(spark, ctx.names, tables.ATHLETE_ROLLING_FEATURES)
        races_table = ctx.names(tables.RACES)
        if not spark.catalog.tableExists(races_table):
            raise SetupError(f"{races_table} does not exist yet: run the silver job first (`athlete-platform silver`).")
        # Every upstream table is read at a pinned version and tracked by its own property.
        upstream = {  # property -> (table, day column, version read now)
            SOURCE_VERSION_PROPERTY: (sessions_table, "session_date", current_version(spark, sessions_table)),
            RACES_VERSION_PROPERTY: (races_table, "race_date", current_version(spark, races_table)),
        }
        properties = table_properties(spark, features_table)
        recorded = {prop: properties.get(prop) for prop in upstream}
        # Without a recorded version of every source, or computed by an older definition, the
        # stored rows cannot be trusted to be current.
        outdated = properties.get(DEFINITION_PROPERTY) != rolling.DEFINITION_VERSION
        if outdated and None not in recorded.values():
            log.info("%s was computed by an older feature definition: recomputing every day", features_table)
        full_refresh = bool(params.get("full_refresh")) or None in recorded.values() or outdated
        recorded[DEFINITION_PROPERTY] = properties.get(DEFINITION_PROPERTY)

        def pinned(prop: str) -> DataFrame:
            table, day_column, version = upstream[prop]
            frame = spark.read.format("delta").option("versionAsOf", version).table(table)
            return frame.where(F.col(day_column) <= F.lit(run_date))

        sessions, races = pinned(SOURCE_VERSION_PROPERTY), pinned(RACES_VERSION_PROPERTY)
        features = None if full_refresh else spark.table(features_table).where(F.col("feature_date") <= F.lit(run_date))
        dirty = None
        if not full_refresh:
            dirty = earliest_dirty_day(
                [
                    changed_athletes_since(spark, table, int(recorded[prop]), version, day_column)
                    for prop, (table, day_column, version) in upstream.items()
                    if int(recorded[prop]) < version
                ]
            )
        # Rows after run_date (a backfill for an earlier day) are not recomputed by this run, so
        # the source version must then stay where it was: the next later run still sees the changes.
        stored_until = spark.table(features_table).agg(F.max("feature_date")).first()[0]
        covers_all = stored_until is None or stored_until <= run_date
        return FeatureInputs(
            sessions,
            races,
            features,
            dirty,
            run_date,
            upstream[SOURCE_VERSION_PROPERTY][2],
            upstream[RACES_VERSION_PROPERTY][2],
            recorded,
            full_refresh,
            covers_all,
        )

    def transform(self, inputs: FeatureInputs) -> FeatureOutputs:
        plan, features = feature_transform(
            inputs.sessions, inputs.races, inputs.features, inputs.dirty_from, inputs.run_date
        )
        return FeatureOutputs(plan.cache(), features, inputs)

    def load(self, ctx: StepContext, out: FeatureOutputs) -> FeatureCounts:
        from pyspark.sql import functions as F

        spark, inputs = ctx.spark, out.inputs
        features_table = ctx.names(tables.ATHLETE_ROLLING_FEATURES)
        athletes = out.plan.count()
        rows = 0
        if athletes:  # an empty MERGE would still commit a version
            # Not cached: the merge reads the computed rows once (into an empty table the MERGE
            # itself, else the cached change set), so the features are computed once.
            stamped = out.features.select(
                "*", utc_timestamp(wall_clock()).alias("computed_at"), F.lit(ctx.run_id).alias("_run_id")
            )
            rows = merge_upsert(spark, features_table, stamped, tables.ATHLETE_ROLLING_FEATURES.keys).upserts
        out.plan.unpersist()
        if inputs.full_refresh or inputs.dirty_from is not None:
            # Silver changed (or no trusted state): an athlete may have lost its first sessions, or all.
            drop_stale_rows(spark, features_table, inputs.sessions, inputs.run_date)
        read = {
            SOURCE_VERSION_PROPERTY: str(inputs.sessions_version),
            RACES_VERSION_PROPERTY: str(inputs.races_version),
            DEFINITION_PROPERTY: rolling.DEFINITION_VERSION,
        }
        moved = {prop: version for prop, version in read.items() if inputs.recorded_versions.get(prop) != version}
        if moved and inputs.covers_all:  # one metadata-only commit, and none when no source moved
            assignments = ", ".join(f"'{prop}' = '{version}'" for prop, version in moved.items())
            spark.sql(f"ALTER TABLE {features_table} SET TBLPROPERTIES ({assignments})")
        log.info(
            "features up to %s: %d athletes recomputed, %d rows new or changed "
            "(%s, silver.sessions v%d, silver.races v%d)",
            inputs.run_date,
            athletes,
            rows,
            "full refresh" if inputs.full_refresh else "incremental",
            inputs.sessions_version,
            inputs.races_version,
        )
        return FeatureCounts(athletes, rows, inputs.full_refresh, inputs.sessions_version, inputs.races_version)
