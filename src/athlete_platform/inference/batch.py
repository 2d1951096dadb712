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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from athlete_platform.errors import PlatformError
from athlete_platform.features import model_inputs as mi
from athlete_platform.features.scoring_frame import scoring_rows
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.ddl import ensure_table
from athlete_platform.lakehouse.models import (
    CHAMPION,
    configure_mlflow,
    download,
    model_metadata,
    require_alias,
    signature_input_names,
)
from athlete_platform.lakehouse.step import Step, StepContext, wall_clock
from athlete_platform.training import intervals

if TYPE_CHECKING:
    import xgboost as xgb
    from pyspark.sql import DataFrame, SparkSession

    from athlete_platform.config import Settings

log = logging.getLogger(__name__)

PREDICTION_KEYS = ["athlete_id", "as_of_date", "race_distance_m"]
# The columns of `scoring_rows` the executors get (the model's inputs are built from them there).
SCORING_COLUMNS = list(dict.fromkeys(["athlete_id", "as_of_date", *mi.REQUIRED_COLUMNS]))
SCORED_SCHEMA = (
    "athlete_id string, as_of_date date, race_distance_m double, predicted_finish_time_s double, "
    "predicted_finish_time_p10_s double, predicted_finish_time_p90_s double"
)

# Per Python worker: model file name -> loaded booster. Lives as long as the worker.
_BOOSTERS: dict[str, xgb.Booster] = {}


@dataclass(frozen=True)
class ChampionModel:
    name: str
    version: str
    local_file: Path
    input_names: tuple[str, ...]
    #: P10/P90 offsets stored with the version (None: trained without intervals, columns null).
    interval_offsets: dict[str, intervals.Offsets] | None = None

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
    """Resolve the champion alias once, then download and read the signature of that version."""
    configure_mlflow(settings)
    ref = require_alias(
        model_name,
        CHAMPION,
        "There is nothing to score with: run the training pipeline first (`athlete-platform train`).",
    )
    folder = download(ref, Path(tempfile.mkdtemp(prefix="athlete-platform-model-")))
    model_file = next(folder.rglob("model.ubj"), None) or next(folder.rglob("model.*"), None)
    if model_file is None:
        raise PlatformError(f"The champion v{ref.version} of {model_name} has no XGBoost model file.")
    offsets = intervals.from_metadata(model_metadata(ref).get(intervals.METADATA_KEY))
    return ChampionModel(model_name, ref.version, model_file, signature_input_names(ref), offsets)


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


def score_batches(
    batches: Iterator[pd.DataFrame],
    shipped_name: str,
    offsets: dict[str, intervals.Offsets] | None = None,
    load_counter=None,
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: model inputs -> predicted finish time and its P10/P90, per Arrow batch."""
    from pyspark import SparkFiles

    path = SparkFiles.get(shipped_name)
    for batch in batches:
        if batch.empty:
            continue
        booster = load_booster(path, load_counter)
        inputs = mi.model_inputs(batch)
        residual = booster.inplace_predict(inputs.to_numpy(np.float32), missing=np.nan)
        if offsets is None:
            p10 = p90 = np.full(len(batch), np.nan)
        else:
            low, high = intervals.interval(residual, intervals.distance_groups(inputs["distance_m"]), offsets)
            p10, p90 = mi.predicted_time_s(low, inputs), mi.predicted_time_s(high, inputs)
        yield pd.DataFrame(
            {
                "athlete_id": batch["athlete_id"].to_numpy(),
                "as_of_date": batch["as_of_date"].to_numpy(),
                "race_distance_m": batch["distance_m"].to_numpy(float),
                "predicted_finish_time_s": mi.predicted_time_s(residual, inputs),
                "predicted_finish_time_p10_s": p10,
                "predicted_finish_time_p90_s": p90,
            }
        )


def score(spark: SparkSession, rows: DataFrame, model: ChampionModel, load_counter=None) -> DataFrame:
    """Ship the model file and score `rows` on the executors."""
    shipped = Path(tempfile.mkdtemp(prefix="athlete-platform-ship-")) / model.shipped_name
    shutil.copyfile(model.local_file, shipped)
    spark.sparkContext.addFile(str(shipped))
    body = functools.partial(
        score_batches, shipped_name=model.shipped_name, offsets=model.interval_offsets, load_counter=load_counter
    )
    return rows.select(*SCORING_COLUMNS).mapInPandas(body, SCORED_SCHEMA)


@dataclass(frozen=True)
class InferenceInputs:
    features: DataFrame  # feature rows to score
    races: DataFrame
    athletes: DataFrame
    model: ChampionModel
    feature_table_version: int
    window: str  # for messages: "as of D" or "from D1 to D2"
    run_id: str


@dataclass(frozen=True)
class ScoredPredictions:
    frame: DataFrame  # rows for gold.athlete_predictions (without scored_at)
    inputs: InferenceInputs


class BatchInferenceStep(Step[InferenceInputs, ScoredPredictions, InferenceResult]):
    """feature view -> champion time estimator -> gold.athlete_predictions.

    Mode: `--start D1 --end D2` scores every athlete-day in the range; otherwise the latest row
    per athlete as of `--as-of`, which defaults to the run date (decided here, once).
    """

    def extract(self, ctx: StepContext, params: Mapping[str, Any]) -> InferenceInputs:
        from athlete_platform.features.feature_view import FeatureView

        start, end, as_of = params.get("start"), params.get("end"), params.get("as_of")
        if (start is None) != (end is None) or (start is not None and as_of is not None):
            raise PlatformError("Give either --as-of D, or --start D1 and --end D2 (not both).")
        if start is None:
            as_of = as_of or ctx.run_date
        spark, names = ctx.spark, ctx.names
        model = fetch_champion(ctx.settings, names(tables.TIME_ESTIMATOR))
        check_signature(model)
        view = FeatureView(spark, names)
        if as_of and not view.get_batch_data(as_of, as_of).limit(1).count():
            raise PlatformError(
                f"{names(tables.ATHLETE_ROLLING_FEATURES)} has no rows for {as_of}: run the feature pipeline "
                f"with --run-date {as_of} first (predictions as of a day need that day's features)."
            )
        features = view.get_latest(as_of) if as_of else view.get_batch_data(start, end)
        window = f"as of {as_of}" if as_of else f"from {start} to {end}"
        return InferenceInputs(
            features,
            spark.table(names(tables.RACES)),
            spark.table(names(tables.ATHLETES)),
            model,
            view.table_version,
            window,
            ctx.run_id,
        )

    def transform(self, inputs: InferenceInputs) -> ScoredPredictions:
        from pyspark.sql import functions as F

        model = inputs.model
        rows = scoring_rows(inputs.features, inputs.races, inputs.athletes)
        frame = score(inputs.features.sparkSession, rows, model).select(
            *tables.ATHLETE_PREDICTIONS.keys,
            "predicted_finish_time_s",
            (F.col("predicted_finish_time_s") / (F.col("race_distance_m") / 1000.0)).alias("predicted_pace_s_per_km"),
            "predicted_finish_time_p10_s",
            "predicted_finish_time_p90_s",
            F.lit(model.name).alias("model_name"),
            F.lit(model.version).alias("model_version"),
            F.lit(inputs.feature_table_version).cast("bigint").alias("feature_table_version"),
            F.lit(inputs.run_id).alias("run_id"),
        )
        return ScoredPredictions(frame, inputs)

    def load(self, ctx: StepContext, predictions: ScoredPredictions) -> InferenceResult:
        from athlete_platform.lakehouse.writes import LINEAGE_COLUMNS, merge_upsert, utc_timestamp

        spark, names = ctx.spark, ctx.names
        inputs = predictions.inputs
        scored = predictions.frame.select("*", utc_timestamp(wall_clock()).alias("scored_at")).cache()
        count = scored.count()
        if count == 0:
            scored.unpersist()
            raise PlatformError(
                f"No feature rows {inputs.window} in {names(tables.ATHLETE_ROLLING_FEATURES)}: run the feature "
                "pipeline for those dates first, or pick dates that have features."
            )
        table = ensure_table(spark, names, tables.ATHLETE_PREDICTIONS)
        merge_upsert(
            spark,
            table,
            scored,
            tables.ATHLETE_PREDICTIONS.keys,
            ignore_changes_in=(*LINEAGE_COLUMNS, "run_id", "scored_at"),
        )
        athletes = scored.select("athlete_id").distinct().count()
        scored.unpersist()
        model = inputs.model
        log.info(
            "batch inference %s: %d predictions for %d athletes with %s v%s (feature table v%d)",
            inputs.window,
            count,
            athletes,
            model.name,
            model.version,
            inputs.feature_table_version,
        )
        return InferenceResult(count, athletes, model.version, inputs.feature_table_version)
