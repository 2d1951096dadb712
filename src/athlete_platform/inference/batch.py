"""Batch inference: feature view -> champion time estimator -> gold.athlete_predictions.

Two modes, as in a feature store: a time range (`get_batch_data`: every athlete-day in it)
or entity-latest (`get_latest`: the latest row per athlete as of a day). Each row is scored
for every standard race distance.

Scoring runs on the executors with `mapInPandas`. The champion's XGBoost file is shipped with
`SparkContext.addFile` (so it reaches executors on a cluster, not just local mode) and each
Python worker loads it once into a module-level cache, then scores every batch with
`inplace_predict`: no per-batch or per-row model loads.
"""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from athlete_platform.errors import PlatformError
from athlete_platform.lakehouse import schemas
from athlete_platform.lakehouse import tables as t
from athlete_platform.training import model_inputs as mi

if TYPE_CHECKING:
    import xgboost as xgb
    from pyspark.sql import DataFrame, SparkSession

    from athlete_platform.config import Settings
    from athlete_platform.lakehouse.tables import TableNames

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREDICTION_KEYS = ["athlete_id", "as_of_date", "race_distance_m"]
SCORED_SCHEMA = "athlete_id string, as_of_date date, race_distance_m double, predicted_finish_time_s double"

# Per Python worker: model file name -> loaded booster. Lives as long as the worker.
_BOOSTERS: dict[str, xgb.Booster] = {}


@dataclass(frozen=True)
class ChampionModel:
    name: str
    version: str
    local_file: Path
    input_names: tuple[str, ...]

    @property
    def shipped_name(self) -> str:
        """Unique per version, so a session can ship several versions side by side."""
        return f"time_estimator-v{self.version}.ubj"


@dataclass(frozen=True)
class InferenceResult:
    rows: int
    athletes: int
    model_version: str
    feature_table_version: int


def fetch_champion(settings: Settings, model_name: str) -> ChampionModel:
    """Download the champion's model file and read its signature (clear error if none)."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from athlete_platform.training.pipeline import configure_mlflow

    configure_mlflow(settings)
    try:
        version = MlflowClient().get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        raise PlatformError(
            f"Model {model_name} has no '{CHAMPION}' version yet, so there is nothing to score with. "
            "Run the training pipeline first (`athlete-platform train --run-date D`)."
        ) from None
    folder = Path(tempfile.mkdtemp(prefix="athlete-platform-model-"))
    mlflow.artifacts.download_artifacts(f"models:/{model_name}@{CHAMPION}", dst_path=str(folder))
    model_file = next(folder.rglob("model.ubj"), None) or next(folder.rglob("model.*"), None)
    if model_file is None:
        raise PlatformError(f"The champion v{version.version} of {model_name} has no XGBoost model file.")
    signature = mlflow.models.get_model_info(f"models:/{model_name}@{CHAMPION}").signature
    inputs = tuple(signature.inputs.input_names()) if signature else ()
    return ChampionModel(model_name, str(version.version), model_file, inputs)


def check_signature(model: ChampionModel) -> None:
    """The model's signature must list exactly the inputs this code builds, in order."""
    expected = tuple(mi.MODEL_INPUTS)
    if model.input_names != expected:
        missing = sorted(set(expected) - set(model.input_names))
        extra = sorted(set(model.input_names) - set(expected))
        raise PlatformError(
            f"The champion v{model.version} of {model.name} expects inputs that the feature pipeline does not "
            f"build (missing here: {extra or 'none'}; not used by the model: {missing or 'none'}; "
            "or a different order). Retrain the model on the current features before scoring."
        )


def load_booster(path: str, load_counter=None) -> xgb.Booster:
    """Load once per Python worker (cached by path); `load_counter` counts real loads."""
    booster = _BOOSTERS.get(path)
    if booster is None:
        import xgboost as xgb

        if load_counter is not None:
            load_counter.add(1)
        booster = xgb.Booster()
        booster.load_model(path)
        booster.set_param({"nthread": 1})  # one task per core already
        _BOOSTERS[path] = booster
    return booster


def score_batches(batches: Iterator[pd.DataFrame], shipped_name: str, load_counter=None) -> Iterator[pd.DataFrame]:
    """mapInPandas body: model inputs -> predicted finish time, per Arrow batch."""
    from pyspark import SparkFiles

    path = SparkFiles.get(shipped_name)
    for batch in batches:
        if batch.empty:
            continue
        booster = load_booster(path, load_counter)
        inputs = mi.model_inputs(batch)
        residual = booster.inplace_predict(inputs.to_numpy(np.float32), missing=np.nan)
        yield pd.DataFrame(
            {
                "athlete_id": batch["athlete_id"].to_numpy(),
                "as_of_date": batch["as_of_date"].to_numpy(),
                "race_distance_m": batch["distance_m"].to_numpy(float),
                "predicted_finish_time_s": mi.predicted_time_s(residual, inputs),
            }
        )


def scoring_rows(features: DataFrame, races: DataFrame, athletes: DataFrame) -> DataFrame:
    """Pure transform: feature rows x standard distances + profile + latest race so far."""
    from pyspark.sql import functions as F

    from athlete_platform.training.dataset import ATHLETE_COLUMNS

    distances = features.sparkSession.createDataFrame([(d,) for d in mi.RACE_DISTANCES_M], "distance_m double")
    days = features.select("athlete_id", "feature_date")
    previous = (
        days.join(races.select("athlete_id", "race_date", "session_id", "distance_m", "finish_time_s"), "athlete_id")
        .where(F.col("race_date") <= F.col("feature_date"))
        .groupBy("athlete_id", "feature_date")
        .agg(F.max(F.struct("race_date", "session_id", "distance_m", "finish_time_s")).alias("prev"))
        .select(
            "athlete_id",
            "feature_date",
            F.col("prev.race_date").alias("prev_race_date"),
            F.col("prev.distance_m").alias("prev_distance_m"),
            F.col("prev.finish_time_s").alias("prev_finish_time_s"),
        )
    )
    return (
        features.join(previous, ["athlete_id", "feature_date"], "left")
        .join(athletes.select(*ATHLETE_COLUMNS), "athlete_id")
        .crossJoin(distances)
        .withColumn("as_of_date", F.col("feature_date"))
        # The prediction is for a race the day after the features' day.
        .withColumn("event_date", F.date_add("feature_date", 1))
    )


def score(spark: SparkSession, rows: DataFrame, model: ChampionModel, load_counter=None) -> DataFrame:
    """Ship the model file and score `rows` on the executors."""
    shipped = Path(tempfile.mkdtemp(prefix="athlete-platform-ship-")) / model.shipped_name
    shutil.copyfile(model.local_file, shipped)
    spark.sparkContext.addFile(str(shipped))
    body = functools.partial(score_batches, shipped_name=model.shipped_name, load_counter=load_counter)
    needed = ["athlete_id", "as_of_date", *mi.REQUIRED_COLUMNS]
    return rows.select(*dict.fromkeys(needed)).mapInPandas(body, SCORED_SCHEMA)


def run_batch_inference(
    spark: SparkSession,
    names: TableNames,
    settings: Settings,
    run_id: str,
    now: datetime,
    start: date | None = None,
    end: date | None = None,
    as_of: date | None = None,
) -> InferenceResult:
    """Score a time range (start..end) or the latest row per athlete (as_of); MERGE into gold."""
    from pyspark.sql import functions as F

    from athlete_platform.features.feature_view import FeatureView
    from athlete_platform.lakehouse.writes import LINEAGE_COLUMNS, merge_upsert, utc_timestamp

    if (as_of is None) == (start is None or end is None):
        raise PlatformError("Give either --as-of D, or --start D1 and --end D2 (not both).")
    model = fetch_champion(settings, names(t.TIME_ESTIMATOR))
    check_signature(model)
    view = FeatureView(spark, names)
    if as_of:
        reached = view.get_batch_data(as_of, as_of).limit(1).count()
        if not reached:
            raise PlatformError(
                f"{names(t.ATHLETE_ROLLING_FEATURES)} has no rows for {as_of}: run the feature pipeline "
                f"with --run-date {as_of} first (predictions as of a day need that day's features)."
            )
    features = view.get_latest(as_of) if as_of else view.get_batch_data(start, end)
    window = f"as of {as_of}" if as_of else f"from {start} to {end}"
    rows = scoring_rows(features, spark.table(names(t.RACES)), spark.table(names(t.ATHLETES)))
    scored = (
        score(spark, rows, model)
        .select(
            *PREDICTION_KEYS,
            "predicted_finish_time_s",
            (F.col("predicted_finish_time_s") / (F.col("race_distance_m") / 1000.0)).alias("predicted_pace_s_per_km"),
            F.lit(model.name).alias("model_name"),
            F.lit(model.version).alias("model_version"),
            F.lit(view.table_version).cast("bigint").alias("feature_table_version"),
            F.lit(run_id).alias("run_id"),
            utc_timestamp(now).alias("scored_at"),
        )
        .cache()
    )
    count = scored.count()
    if count == 0:
        scored.unpersist()
        raise PlatformError(
            f"No feature rows {window} in {names(t.ATHLETE_ROLLING_FEATURES)}: run the feature pipeline "
            "for those dates first, or pick dates that have features."
        )
    table = schemas.ensure_table(spark, names, schemas.ATHLETE_PREDICTIONS)
    merge_upsert(spark, table, scored, PREDICTION_KEYS, ignore_changes_in=(*LINEAGE_COLUMNS, "run_id", "scored_at"))
    athletes = scored.select("athlete_id").distinct().count()
    scored.unpersist()
    log.info(
        "batch inference %s: %d predictions for %d athletes with %s v%s (feature table v%d)",
        window,
        count,
        athletes,
        model.name,
        model.version,
        view.table_version,
    )
    return InferenceResult(count, athletes, model.version, view.table_version)
