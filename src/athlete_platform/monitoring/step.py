"""The monitoring step: the champion time estimator's drift and realised accuracy over the 7 days
ending on the run date -> one row of `gold.model_monitoring` (MERGE on model, version, window end:
a re-run for the same day replaces its row).

The training set's reference comes from the version's own MLflow run (`training.reference`);
the window's feature rows, predictions and races are read from the lakehouse as of now.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from athlete_platform.errors import PlatformError, SetupError
from athlete_platform.features import model_inputs as mi
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.ddl import ensure_table
from athlete_platform.lakehouse.models import CHAMPION, configure_mlflow, require_alias
from athlete_platform.lakehouse.step import Step, StepContext, wall_clock
from athlete_platform.monitoring import model_monitoring as mm
from athlete_platform.training import reference

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitoringInputs:
    model_name: str
    model_version: str
    run_date: Any
    reference_inputs: pd.DataFrame
    reference_predictions: pd.DataFrame
    window_features: pd.DataFrame
    window_predictions: pd.DataFrame
    races: pd.DataFrame
    recent_predictions: pd.DataFrame
    training_mape: float | None


@dataclass(frozen=True)
class MonitoringResult:
    row: dict

    @property
    def decision(self) -> str:  # what `run` prints after the step
        return mm.describe(self.row)

    @property
    def retrain_recommended(self) -> bool:
        return self.row["retrain_recommended"]

    def __str__(self) -> str:
        return self.decision


def version_reference(model_name: str, version: str) -> tuple[pd.DataFrame, pd.DataFrame, float | None]:
    """(reference inputs, reference predictions, held-out MAPE) of a version's training run."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    run_id = client.get_model_version(model_name, version).run_id
    folder = Path(tempfile.mkdtemp(prefix="athlete-platform-reference-"))
    try:
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=reference.ARTIFACT_PATH, dst_path=str(folder))
    except (MlflowException, OSError):
        raise PlatformError(
            f"{model_name} v{version} has no training reference to monitor against (it was trained before "
            "monitoring existed): retrain it (`athlete-platform train`), then run the monitoring step again."
        ) from None
    inputs, predictions = reference.read(folder / reference.ARTIFACT_PATH)
    return inputs, predictions, client.get_run(run_id).data.metrics.get("model_mape")


class MonitoringStep(Step[MonitoringInputs, dict, MonitoringResult]):
    """champion time estimator + the window's features, predictions and races -> gold.model_monitoring."""

    def extract(self, ctx: StepContext, params: Mapping[str, Any]) -> MonitoringInputs:
        from pyspark.sql import functions as F

        spark, names = ctx.spark, ctx.names
        for table, producer in ((tables.ATHLETE_ROLLING_FEATURES, "features"), (tables.RACES, "silver")):
            if not spark.catalog.tableExists(names(table)):
                raise SetupError(f"Monitoring reads {names(table)}, which does not exist yet: run `{producer}` first.")
        configure_mlflow(ctx.settings)
        model_name = names(tables.TIME_ESTIMATOR)
        hint = "There is no model to monitor: run `athlete-platform train`."
        version = require_alias(model_name, CHAMPION, hint).version
        ref_inputs, ref_predictions, training_mape = version_reference(model_name, version)

        start, end = mm.window_of(ctx.run_date)
        in_window = F.col("feature_date").between(F.lit(start), F.lit(end))
        features = (
            spark.table(names(tables.ATHLETE_ROLLING_FEATURES))
            .where(in_window)
            .join(spark.table(names(tables.ATHLETES)).select("athlete_id", *mi.ATHLETE_INPUTS), "athlete_id")
            .select(*reference.DRIFT_INPUTS)
        )
        races = spark.table(names(tables.RACES)).where(F.col("race_date").between(F.lit(start), F.lit(end)))
        predictions_name = names(tables.ATHLETE_PREDICTIONS)
        if spark.catalog.tableExists(predictions_name):
            mine = spark.table(predictions_name).where(F.col("model_version") == F.lit(version))
            present = set(mine.columns)
            mine = mine.select(
                *(F.col(c) if c in present else F.lit(None).cast("double").alias(c) for c in mm.PREDICTION_COLUMNS)
            )
            window_predictions = mine.where(F.col("as_of_date").between(F.lit(start), F.lit(end))).toPandas()
            lookback = start - timedelta(days=mm.LOOKBACK_DAYS)
            recent = mine.where(F.col("as_of_date").between(F.lit(lookback), F.lit(end))).toPandas()
        else:
            window_predictions = recent = pd.DataFrame(columns=list(mm.PREDICTION_COLUMNS))
        return MonitoringInputs(
            model_name,
            version,
            ctx.run_date,
            ref_inputs,
            ref_predictions,
            features.toPandas(),
            window_predictions,
            races.select(*mm.RACE_COLUMNS).toPandas(),
            recent,
            training_mape,
        )

    def transform(self, inputs: MonitoringInputs) -> dict:
        return mm.monitoring_row(
            inputs.model_name,
            inputs.model_version,
            inputs.run_date,
            inputs.reference_inputs,
            inputs.reference_predictions,
            inputs.window_features,
            inputs.window_predictions,
            inputs.races,
            inputs.recent_predictions,
            inputs.training_mape,
        )

    def load(self, ctx: StepContext, row: dict) -> MonitoringResult:
        from pyspark.sql import functions as F

        from athlete_platform.lakehouse.writes import LINEAGE_COLUMNS, merge_upsert, utc_timestamp

        spark, names = ctx.spark, ctx.names
        table = ensure_table(spark, names, tables.MODEL_MONITORING)
        schema = spark.table(table).drop("computed_at", "_run_id").schema
        frame = spark.createDataFrame([row], schema).select(
            "*", utc_timestamp(wall_clock()).alias("computed_at"), F.lit(ctx.run_id).alias("_run_id")
        )
        merge_upsert(spark, table, frame, tables.MODEL_MONITORING.keys, ignore_changes_in=LINEAGE_COLUMNS)
        result = MonitoringResult(row)
        log.info("monitoring: %s", result.decision)
        return result
