"""The live pace coach end to end on a small generated lake: race splits reach silver and
reconcile, the live model trains on their snapshots, its gate numbers land in MLflow and the
registry follows the gate's own decision."""

from __future__ import annotations

import shutil
from datetime import date

import numpy as np
import pytest
from mlflow import MlflowClient

from athlete_platform.config import SampleDataSettings
from athlete_platform.features.live_inputs import LIVE_INPUTS
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.models import (
    CHALLENGER,
    CHAMPION,
    ModelVersionRef,
    resolve_alias,
    signature_input_names,
)
from athlete_platform.training import live_gate
from tests.conftest import generate_sample
from tests.own_lake import own_names, own_settings  # noqa: F401  (the module's own lakehouse)

pytestmark = pytest.mark.integration

LIGHT_LIVE = {"n_estimators": 120, "max_depth": 3}


@pytest.fixture(scope="module")
def lake(spark, names, settings, module_lake):
    """20 athletes x 240 days through silver and features (about 90 races with splits)."""
    small = settings.model_copy(
        update={"sample_data": SampleDataSettings(seed=5, n_athletes=20, n_days=240, start_date=date(2024, 1, 1))}
    )
    for spec in (*tables.FEATURE_PIPELINE_TABLES, tables.ATHLETE_PREDICTIONS):
        spark.sql(f"DROP TABLE IF EXISTS {names(spec)}")
    shutil.rmtree(small.landing_path, ignore_errors=True)
    shutil.rmtree(small.mlflow_path, ignore_errors=True)
    summary = generate_sample(small)
    run_date = small.sample_data.last_date
    module_lake.run("ingest", date(2030, 1, 1), "t-1", settings=small)
    silver = module_lake.run("silver", run_date, "t-1")
    module_lake.run("features", run_date, "t-1")
    return small, run_date, summary, silver


@pytest.fixture(scope="module")
def live_without_time_estimator(lake, module_lake):
    settings, run_date, _, _ = lake
    return module_lake.run("train-live", run_date, "live-0", settings=settings, xgb_params=LIGHT_LIVE)


@pytest.fixture(scope="module")
def live(lake, module_lake, live_without_time_estimator):
    settings, run_date, _, _ = lake
    time_estimator = module_lake.run("train", run_date, "train-1", settings=settings)
    if not time_estimator.promoted:  # a lake this small may not beat its baselines; the pre-race bar needs a champion
        MlflowClient().set_registered_model_alias(time_estimator.model_name, CHAMPION, time_estimator.version)
    return module_lake.run("train-live", run_date, "live-1", settings=settings, xgb_params=LIGHT_LIVE)


def test_race_splits_reconcile_and_sum_to_the_finish_time(spark, names, lake):
    _, _, summary, silver = lake
    assert silver.splits_reconcile
    assert silver.race_split_records == silver.race_splits_accepted + silver.race_splits_quarantined
    assert silver.race_splits_accepted > 40 and silver.race_splits_quarantined == 0  # the generator's are clean
    splits = spark.table(names(tables.RACE_SPLITS))
    assert splits.count() == silver.race_split_rows
    sums = {
        r.session_id: (r.t, r.d, r.n, r.last_km)
        for r in splits.groupBy("session_id")
        .agg({"split_time_s": "sum", "split_distance_m": "sum", "km": "count", "*": "count"})
        .selectExpr("session_id", "`sum(split_time_s)` AS t", "`sum(split_distance_m)` AS d", "`count(km)` AS n")
        .join(splits.groupBy("session_id").agg({"km": "max"}).withColumnRenamed("max(km)", "last_km"), "session_id")
        .collect()
    }
    races = {r.session_id: r for r in spark.table(names(tables.RACES)).collect()}
    assert set(sums) <= set(races)
    for session_id, (total_s, total_m, count, last_km) in sums.items():
        assert round(total_s, 1) == races[session_id].finish_time_s
        assert abs(total_m - races[session_id].distance_m) < 1e-6
        assert count == last_km  # km numbered 1..n


def test_rerunning_silver_changes_no_split(spark, names, lake, module_lake):
    _, run_date, _, _ = lake
    table = names(tables.RACE_SPLITS)
    before = spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").first().version
    again = module_lake.run("silver", run_date, "t-2")
    assert again.splits_reconcile and again.race_split_rows == spark.table(table).count()
    assert spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").first().version == before


def test_without_a_time_estimator_champion_the_gate_fails_and_says_why(live_without_time_estimator):
    result = live_without_time_estimator
    assert not result.promoted
    assert "no champion of" in result.decision and "athlete-platform train" in result.decision
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(result.model_name, CHALLENGER).version) == result.version


def test_gate_numbers_are_in_mlflow_and_the_registry_follows_the_gate(live):
    client = MlflowClient()
    run = client.get_run(live.run_id)
    metrics = run.data.metrics
    for group in live_gate.GROUPS:
        for _, _, bucket in live_gate.BUCKETS:
            assert metrics[f"{group}_rows_{bucket}"] > 0
            for predictor in ("live", "even_pace", "prerace"):
                assert metrics[f"{group}_{predictor}_mape_{bucket}"] == pytest.approx(
                    live.metrics[f"{group}_{predictor}_mape_{bucket}"]
                )
    # The decision is the one the numbers give: beat both bars in every bucket of both groups
    # (and the earlier live version, a challenger only, is no champion to beat).
    beats = all(
        metrics[f"{g}_live_mape_{b}"] < min(metrics[f"{g}_even_pace_mape_{b}"], metrics[f"{g}_prerace_mape_{b}"])
        for g in live_gate.GROUPS
        for _, _, b in live_gate.BUCKETS
    )
    assert live.promoted == beats
    assert run.data.tags["promotion.promoted"] == str(beats)
    assert run.data.params["buckets"] == "b00_25,b25_50,b50_75,b75_100"
    champion = resolve_alias(live.model_name, CHAMPION)
    assert (champion.version if champion else None) == (live.version if beats else None)
    print(live)  # the gate table, for the log
    assert signature_input_names(ModelVersionRef(live.model_name, live.version)) == LIVE_INPUTS
    assert "heldout_athletes" in live.gate_table and "b75_100" in live.gate_table
    # Late in a race the live model has most of the answer: it must be far better than before the start.
    late = metrics["heldout_races_live_mape_b75_100"]
    assert np.isfinite(late) and late < metrics["heldout_races_prerace_mape_b75_100"]
