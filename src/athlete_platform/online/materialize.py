"""Materialization: the offline feature table's latest row per athlete -> the online store (SCD type 4).

An online row is what a serving request needs to build the same model inputs as batch
inference (`features.model_inputs.REQUIRED_COLUMNS` minus the request's own `distance_m` and
`event_date`): the athlete's latest `feature_store.athlete_rolling_features` row, the profile
columns of `silver.athletes`, and the athlete's last race on or before that row's
`feature_date` (as batch scoring takes it), plus `source_version` (the feature table's Delta
version) and `materialized_at`.

Incremental. The store records, with the rows it holds, the Delta version of each table it
was computed from: the feature table as its `source_version`, `silver.athletes` and
`silver.races` in its metadata (as the feature pipeline tracks its silver inputs in its
table properties). A run reads the Change Data Feed of every table that moved since, takes
the athletes it names, and recomputes just those athletes' rows from the tables at their
current versions; an athlete left without feature rows is deleted from the store. The first
run (nothing recorded), `--full-refresh`, or a Change Data Feed that can no longer be read
(vacuumed) recompute every athlete and delete what the offline side no longer has.
Rows equal to the stored ones are not rewritten. Everything lands in one atomic `apply`
together with the versions, so a crash leaves the old state and the next run converges.

The online store always holds the latest row, whatever the run date: a backfill run for an
earlier day does not roll it back.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from athlete_platform.errors import SetupError
from athlete_platform.features.model_inputs import PROFILE_COLUMNS
from athlete_platform.features.rolling import FEATURE_COLUMNS
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.delta import changes_between, current_version
from athlete_platform.lakehouse.step import Step, StepContext
from athlete_platform.online.backends import open_store
from athlete_platform.online.sqlite_store import utc_now_iso
from athlete_platform.online.store import KEY, MATERIALIZED_AT, SOURCE_VERSION

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from athlete_platform.online.store import OnlineStore

log = logging.getLogger("athlete_platform")

#: Profile columns an online row carries (silver.athletes).
PROFILE_FIELDS: tuple[str, ...] = tuple(c for c in PROFILE_COLUMNS if c != KEY)
#: The athlete's last race on or before the row's feature_date (silver.races).
LAST_RACE_FIELDS: tuple[str, ...] = ("prev_race_date", "prev_distance_m", "prev_finish_time_s")
#: Every column materialization owns, in order (streaming may add intraday fields of its own).
ONLINE_COLUMNS: tuple[str, ...] = (KEY, *FEATURE_COLUMNS, *PROFILE_FIELDS, *LAST_RACE_FIELDS, SOURCE_VERSION)
#: Store metadata names of the silver versions the rows were computed from.
ATHLETES_VERSION = "silver_athletes_version"
RACES_VERSION = "silver_races_version"


def latest_race_on_or_before(days: DataFrame, races: DataFrame) -> DataFrame:
    """Pure transform: per (athlete_id, feature_date) of `days`, the latest race with
    `race_date <= feature_date` (ties on the day: the greatest session_id), as batch scoring
    takes it (`features.scoring_frame.scoring_rows`; a unit test holds both to the same answer)."""
    from pyspark.sql import functions as F

    return (
        days.select(KEY, "feature_date")
        .join(races.select(KEY, "race_date", "session_id", "distance_m", "finish_time_s"), KEY)
        .where(F.col("race_date") <= F.col("feature_date"))
        .groupBy(KEY, "feature_date")
        .agg(F.max(F.struct("race_date", "session_id", "distance_m", "finish_time_s")).alias("prev"))
        .select(
            KEY,
            "feature_date",
            F.col("prev.race_date").alias("prev_race_date"),
            F.col("prev.distance_m").alias("prev_distance_m"),
            F.col("prev.finish_time_s").alias("prev_finish_time_s"),
        )
    )


def online_rows(
    features: DataFrame, athletes: DataFrame, races: DataFrame, source_version: int, touched: DataFrame | None = None
) -> DataFrame:
    """Pure transform: one row per athlete (of `touched`, else all) with ONLINE_COLUMNS: the latest
    feature row, the profile (null when silver has none), the last race on or before it."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if touched is not None:
        features = features.join(touched.select(KEY).distinct(), KEY, "left_semi")
    newest_first = Window.partitionBy(KEY).orderBy(F.col("feature_date").desc())
    latest = (
        features.select(KEY, *FEATURE_COLUMNS)
        .withColumn("_rank", F.row_number().over(newest_first))
        .where(F.col("_rank") == 1)
        .drop("_rank")
    )
    return (
        latest.join(athletes.select(KEY, *PROFILE_FIELDS), KEY, "left")
        .join(latest_race_on_or_before(latest, races), [KEY, "feature_date"], "left")
        .withColumn(SOURCE_VERSION, F.lit(int(source_version)).cast("bigint"))
        .select(*ONLINE_COLUMNS)
    )


def to_online_value(value: Any) -> Any:
    """A Spark value as the store keeps it: dates as ISO strings, NaN as null, the rest as is."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def to_online_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: to_online_value(value) for name, value in row.items()}


def same_fields(stored: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """True when the store already holds `new`'s values (the lineage fields aside)."""
    if stored is None:
        return False
    return all(
        values_equal(stored.get(name), value) for name, value in new.items() if name not in (SOURCE_VERSION,)
    ) and all(name in stored for name in new)


def values_equal(left: Any, right: Any) -> bool:
    if isinstance(left, float) or isinstance(right, float):
        if left is None or right is None or isinstance(left, bool) or isinstance(right, bool):
            return left == right
        try:
            return math.isclose(float(left), float(right), rel_tol=1e-12, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return left == right


@dataclass(frozen=True)
class MaterializeInputs:
    features: DataFrame  # the feature table at `versions["features"]`
    athletes: DataFrame
    races: DataFrame
    versions: dict[str, int]  # "features" | "athletes" | "races" -> Delta version read
    recorded: dict[str, int | None]  # the same, as the store recorded them
    touched: DataFrame | None  # athlete_ids to recompute; None: every athlete (full)
    touched_ids: list[str] | None  # the same ids, on the driver
    reason: str  # why full, or "incremental"


@dataclass(frozen=True)
class MaterializeOutputs:
    rows: DataFrame
    inputs: MaterializeInputs


@dataclass(frozen=True)
class MaterializeResult:
    mode: str  # "full (<why>)" | "incremental" | "up to date"
    athletes_checked: int
    upserted: int
    deleted: int
    unchanged: int
    source_version: int
    store_rows: int
    store: str  # backend + location

    def __str__(self) -> str:
        return (
            f"online store {self.store}: {self.mode}, {self.athletes_checked} athletes checked, "
            f"{self.upserted} upserted, {self.deleted} deleted, {self.unchanged} unchanged; "
            f"{self.store_rows} rows at feature table v{self.source_version}"
        )


def _version_of(text: str | int | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def changed_athletes(spark: SparkSession, table: str, since_version: int, to_version: int) -> DataFrame:
    """athlete_ids named by `table`'s Change Data Feed in (since_version, to_version]."""
    return changes_between(spark, table, since_version, to_version).select(KEY).distinct()


class MaterializeStep(Step[MaterializeInputs, MaterializeOutputs, MaterializeResult]):
    """feature_store.athlete_rolling_features (+ silver.athletes, silver.races) -> the online store."""

    def extract(self, ctx: StepContext, params: Mapping[str, Any]) -> MaterializeInputs:
        spark, names = ctx.spark, ctx.names
        sources = {
            "features": names(tables.ATHLETE_ROLLING_FEATURES),
            "athletes": names(tables.ATHLETES),
            "races": names(tables.RACES),
        }
        for table in sources.values():
            if not spark.catalog.tableExists(table):
                raise SetupError(
                    f"{table} does not exist yet: run the batch pipeline up to the features first "
                    "(`athlete-platform run`, or `athlete-platform silver` then `athlete-platform features`)."
                )
        with open_store(ctx.settings) as store:  # unavailable: stop before any Spark work
            meta = store.metadata()
        versions = {source: current_version(spark, table) for source, table in sources.items()}
        recorded = {
            "features": meta.source_version,
            "athletes": _version_of(meta.extra.get(ATHLETES_VERSION)),
            "races": _version_of(meta.extra.get(RACES_VERSION)),
        }
        frames = {
            source: spark.read.format("delta").option("versionAsOf", versions[source]).table(table)
            for source, table in sources.items()
        }
        reason = self._full_reason(params, versions, recorded)
        touched, ids = None, None
        if reason is None:
            moved = [s for s in sources if recorded[s] < versions[s]]
            try:
                changes = [changed_athletes(spark, sources[s], recorded[s], versions[s]) for s in moved]
                union = changes[0] if changes else None
                for part in changes[1:]:
                    union = union.union(part)
                # One Spark job for all the change feeds (the set is small: the athletes that moved).
                ids = sorted({r[KEY] for r in union.distinct().collect() if r[KEY] is not None}) if union else []
            except Exception as exc:  # noqa: BLE001 - any unreadable change feed: recompute all
                first = str(exc).strip().splitlines()[0][:200]
                reason = f"change data feed unreadable since the recorded versions ({first})"
                log.warning("materialize: %s; recomputing every athlete", reason)
            else:
                touched = spark.createDataFrame([(i,) for i in ids], f"{KEY} string")
        return MaterializeInputs(
            frames["features"],
            frames["athletes"],
            frames["races"],
            versions,
            recorded,
            touched,
            ids,
            reason or "incremental",
        )

    @staticmethod
    def _full_reason(
        params: Mapping[str, Any], versions: dict[str, int], recorded: dict[str, int | None]
    ) -> str | None:
        if params.get("full_refresh"):
            return "--full-refresh"
        missing = [s for s, v in recorded.items() if v is None]
        if missing:
            return "first run" if len(missing) == len(recorded) else f"no recorded version of {', '.join(missing)}"
        ahead = [s for s, v in recorded.items() if v > versions[s]]
        if ahead:  # the table was re-created: its versions restarted
            return f"recorded version of {', '.join(ahead)} is newer than the table's"
        return None

    def transform(self, inputs: MaterializeInputs) -> MaterializeOutputs:
        rows = online_rows(inputs.features, inputs.athletes, inputs.races, inputs.versions["features"], inputs.touched)
        return MaterializeOutputs(rows, inputs)

    def load(self, ctx: StepContext, out: MaterializeOutputs) -> MaterializeResult:
        inputs = out.inputs
        version = inputs.versions["features"]
        full = inputs.touched is None
        with open_store(ctx.settings) as store:
            if not full and not inputs.touched_ids and inputs.recorded == inputs.versions:
                meta = store.metadata()
                return MaterializeResult("up to date", 0, 0, 0, 0, version, meta.rows, _where(store))
            # No athlete moved (e.g. a metadata-only commit): only the versions are recorded.
            collected = out.rows.collect() if full or inputs.touched_ids else []
            fresh = {row[KEY]: to_online_row(row.asDict()) for row in collected}
            candidates = set(store.keys()) if full else set(inputs.touched_ids)
            stored = store.get(sorted(candidates | set(fresh)))
            now = utc_now_iso()
            changed = [row for key, row in sorted(fresh.items()) if not same_fields(stored.get(key), row)]
            upserts = [row | {MATERIALIZED_AT: now} for row in changed]
            deletes = sorted(key for key in candidates if key not in fresh and key in stored)
            store.apply(
                upserts,
                deletes,
                source_version=version,
                metadata={
                    ATHLETES_VERSION: str(inputs.versions["athletes"]),
                    RACES_VERSION: str(inputs.versions["races"]),
                },
            )
            meta = store.metadata()
        result = MaterializeResult(
            "full" + f" ({inputs.reason})" if full else "incremental",
            len(candidates | set(fresh)),
            len(upserts),
            len(deletes),
            len(fresh) - len(upserts),
            version,
            meta.rows,
            _where(store),
        )
        log.info("materialize: %s", result)
        return result


def _where(store: OnlineStore) -> str:
    return f"{store.backend} {getattr(store, 'location', '')}".strip()
