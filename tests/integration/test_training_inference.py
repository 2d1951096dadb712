"""Training + gate + batch inference on generated data, with real MLflow, Spark and Delta."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date, datetime, timedelta

import mlflow
import pytest
from mlflow import MlflowClient

from athlete_platform.config import SampleDataSettings
from athlete_platform.errors import PlatformError
from athlete_platform.features.feature_view import FeatureView
from athlete_platform.features.pipeline import run_feature_pipeline
from athlete_platform.inference import batch
from athlete_platform.ingestion.bronze import run_bronze
from athlete_platform.ingestion.silver import run_silver
from athlete_platform.lakehouse import tables as t
from athlete_platform.lakehouse.schemas import ALL_SPECS, ATHLETE_PREDICTIONS
from athlete_platform.pipelines import generate_sample_data
from athlete_platform.training.pipeline import CHALLENGER, CHAMPION, run_training

pytestmark = pytest.mark.integration

NOW = datetime(2030, 1, 1)


@pytest.fixture(scope="module")
def lake(spark, names, settings):
    """A year of data for 40 athletes (enough races to train), through features."""
    bigger = settings.model_copy(
        update={"sample_data": SampleDataSettings(seed=11, n_athletes=40, n_days=300, start_date=date(2024, 1, 1))}
    )
    for spec in (*ALL_SPECS, ATHLETE_PREDICTIONS):
        spark.sql(f"DROP TABLE IF EXISTS {names(spec.id)}")
    shutil.rmtree(bigger.landing_path, ignore_errors=True)
    shutil.rmtree(bigger.mlflow_path, ignore_errors=True)
    generate_sample_data(bigger)
    run_date = bigger.sample_data.last_date
    run_bronze(spark, names, bigger.landing_path, "t-1", NOW)
    run_silver(spark, names, run_date, "t-1", NOW)
    run_feature_pipeline(spark, names, run_date, "t-1", NOW)
    return bigger, run_date


@pytest.fixture(scope="module")
def first_training(spark, names, lake):
    settings, run_date = lake
    return run_training(spark, names, settings, run_date, "train-1")


def test_first_model_beats_both_baselines_and_is_champion(first_training):
    m = first_training.metrics
    assert first_training.promoted
    assert m["test_rows_with_baselines"] >= 20
    assert m["model_mape"] < m["riegel_mape"]
    assert m["model_mape"] < m["vdot_mape"]
    # reported next to the noise floor, which no model can beat by much
    assert 0 < m["noise_floor_mape"] < m["model_mape"] * 1.5
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(first_training.model_name, CHAMPION).version) == first_training.version


def test_run_records_params_metrics_lineage_and_signature(first_training):
    client = MlflowClient()
    run = client.get_run(first_training.run_id)
    assert run.data.params["target"] == "log(finish_time_s/distance_m) - base_log_pace"
    assert {"model_mape", "riegel_mape", "vdot_mape", "noise_floor_mape", "model_mape_5k"} <= set(run.data.metrics)
    tags = run.data.tags
    assert len(tags["git_commit"]) in (40, len("unknown"))
    assert {"delta_version.features", "delta_version.races", "delta_version.athletes"} <= set(tags)
    assert "promoted to champion" in tags["promotion.decision"]
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {"time_estimator_train", "time_estimator_test"}
    info = mlflow.models.get_model_info(f"models:/{first_training.model_name}@{CHAMPION}")
    assert info.signature is not None and info.saved_input_example_info is not None


def test_worse_model_does_not_move_the_champion(spark, names, lake, first_training):
    settings, run_date = lake
    worse = run_training(spark, names, settings, run_date, "train-2", params_override={"n_estimators": 2})
    assert not worse.promoted
    assert "not promoted" in worse.decision
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(worse.model_name, CHAMPION).version) == first_training.version
    assert str(client.get_model_version_by_alias(worse.model_name, CHALLENGER).version) == worse.version


def test_batch_inference_as_of_is_idempotent_and_traceable(spark, names, lake, first_training):
    settings, run_date = lake
    predictions = names(t.ATHLETE_PREDICTIONS)
    first = batch.run_batch_inference(spark, names, settings, "inf-1", NOW, as_of=run_date)
    athletes = spark.table(names(t.ATHLETE_ROLLING_FEATURES)).select("athlete_id").distinct().count()
    assert first.rows == athletes * 4
    before = spark.table(predictions).count()
    batch.run_batch_inference(spark, names, settings, "inf-2", NOW, as_of=run_date)
    assert spark.table(predictions).count() == before
    last_merge = spark.sql(f"DESCRIBE HISTORY {predictions} LIMIT 1").first()
    assert last_merge.operationMetrics.get("numTargetRowsUpdated", "0") == "0"

    rows = spark.table(predictions).where(f"as_of_date = DATE'{run_date}'").collect()
    assert {r.model_version for r in rows} == {first_training.version}
    assert {r.race_distance_m for r in rows} == {5000.0, 10000.0, 21097.5, 42195.0}
    assert all(r.predicted_finish_time_s > 0 and r.feature_table_version == first.feature_table_version for r in rows)


def test_feature_table_version_on_a_row_reproduces_the_prediction(spark, names, lake):
    settings, run_date = lake
    row = spark.table(names(t.ATHLETE_PREDICTIONS)).orderBy("athlete_id", "race_distance_m").first()
    # Change the feature table afterwards: the pinned version must still give the same answer.
    run_feature_pipeline(spark, names, run_date + timedelta(days=2), "t-2", NOW)
    view = FeatureView(spark, names, version=row.feature_table_version)
    features = view.get_batch_data(row.as_of_date, row.as_of_date).where(f"athlete_id = '{row.athlete_id}'")
    rows = batch.scoring_rows(features, spark.table(names(t.RACES)), spark.table(names(t.ATHLETES)))
    model = batch.fetch_champion(settings, names(t.TIME_ESTIMATOR))
    again = batch.score(spark, rows, model).where(f"race_distance_m = {row.race_distance_m}").first()
    assert again.predicted_finish_time_s == pytest.approx(row.predicted_finish_time_s, rel=1e-9)


def test_range_mode_scores_every_athlete_day(spark, names, lake):
    settings, run_date = lake
    start = run_date - timedelta(days=2)
    result = batch.run_batch_inference(spark, names, settings, "inf-3", NOW, start=start, end=run_date)
    expected = (
        spark.table(names(t.ATHLETE_ROLLING_FEATURES))
        .where(f"feature_date BETWEEN DATE'{start}' AND DATE'{run_date}'")
        .count()
    )
    assert result.rows == expected * 4


def test_model_is_loaded_once_per_python_worker_not_per_batch(spark, names, lake):
    settings, run_date = lake
    features = FeatureView(spark, names).get_batch_data(run_date - timedelta(days=60), run_date)
    rows = batch.scoring_rows(features, spark.table(names(t.RACES)), spark.table(names(t.ATHLETES))).repartition(8)
    loads = spark.sparkContext.accumulator(0)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "200")
    try:
        champion = batch.fetch_champion(settings, names(t.TIME_ESTIMATOR))
        # A fresh shipped name, so no worker has it cached from earlier tests.
        model = dataclasses.replace(champion, version=f"{champion.version}-loadtest")
        scored = batch.score(spark, rows, model, load_counter=loads).count()
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    batches = scored / 200
    assert batches > 8 * 2  # many batches in many tasks ...
    assert 1 <= loads.value <= 2  # ... one load per Python worker (local[2]: at most two workers)


def test_missing_champion_and_empty_window_are_clear_errors(spark, names, lake):
    settings, _ = lake
    with pytest.raises(PlatformError, match="no 'champion' version yet.*training pipeline"):
        batch.fetch_champion(settings, "uc_athlete_data.ml.no_such_model")
    with pytest.raises(PlatformError, match="No feature rows from 2001-01-01 to 2001-01-31"):
        batch.run_batch_inference(spark, names, settings, "inf-x", NOW, start=date(2001, 1, 1), end=date(2001, 1, 31))
