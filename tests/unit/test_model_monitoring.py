"""gold.model_monitoring's row (issue 14): drift against the training reference, realised
accuracy of predictions made before each race, and the flags that ask for retraining."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from athlete_platform.domain.distances import RACE_DISTANCES_M
from athlete_platform.monitoring import model_monitoring as mm
from athlete_platform.training.reference import DRIFT_INPUTS

RUN_DATE = date(2024, 6, 30)


def cohort(rng: np.random.Generator, n: int, shift: dict[str, float] | None = None) -> pd.DataFrame:
    """Drift inputs of `n` athlete-days: each input normal around its own level (+ `shift`)."""
    shift = shift or {}
    return pd.DataFrame({c: rng.normal(50.0 + i + shift.get(c, 0.0), 10.0, n) for i, c in enumerate(DRIFT_INPUTS)})


def paces(rng: np.random.Generator, n: int, factor: float = 1.0) -> pd.DataFrame:
    rows = [(d, p) for d in RACE_DISTANCES_M for p in rng.normal(300 + d / 1000, 20, n) * factor]
    return pd.DataFrame(rows, columns=["race_distance_m", "predicted_pace_s_per_km"])


def race(athlete: str, day: date, distance: float, finish_s: float) -> dict:
    return {"athlete_id": athlete, "race_date": day, "distance_m": distance, "finish_time_s": finish_s}


def prediction(athlete: str, as_of: date, distance: float, time_s: float, p10: float = np.nan, p90: float = np.nan):
    return {
        "athlete_id": athlete,
        "as_of_date": as_of,
        "race_distance_m": distance,
        "predicted_finish_time_s": time_s,
        "predicted_finish_time_p10_s": p10,
        "predicted_finish_time_p90_s": p90,
        "predicted_pace_s_per_km": time_s / (distance / 1000),
    }


def row(window_features, window_predictions=None, races=None, recent=None, training_mape=0.03, seed=1):
    rng = np.random.default_rng(seed)
    empty_predictions = pd.DataFrame(columns=list(mm.PREDICTION_COLUMNS))
    return mm.monitoring_row(
        "time_estimator",
        "3",
        RUN_DATE,
        cohort(rng, 2000),
        paces(rng, 500),
        window_features,
        empty_predictions if window_predictions is None else window_predictions,
        pd.DataFrame(columns=list(mm.RACE_COLUMNS)) if races is None else races,
        empty_predictions if recent is None else recent,
        training_mape,
    )


def test_the_same_population_raises_no_flag():
    rng = np.random.default_rng(2)
    out = row(cohort(rng, 300), paces(rng, 75))
    assert out["flags"] == [] and out["retrain_recommended"] is False
    assert out["max_feature_psi"] < 0.1 and out["prediction_psi"] < 0.1
    assert [f["input"] for f in out["feature_psi"]] == sorted(DRIFT_INPUTS)
    assert (out["window_start"], out["window_end"]) == (RUN_DATE - timedelta(days=6), RUN_DATE)


def test_a_shifted_cohort_raises_feature_drift_naming_the_input():
    rng = np.random.default_rng(3)
    out = row(cohort(rng, 300, shift={"ctl": 15.0}))  # 1.5 sd fitter than the training athletes
    assert out["drifted_features"] == ["ctl"]
    assert "feature_drift" in out["flags"] and out["retrain_recommended"] is True
    assert out["max_feature_psi"] == max(f["psi"] for f in out["feature_psi"]) > 0.25


def test_predictions_slower_than_the_reference_raise_prediction_drift():
    rng = np.random.default_rng(4)
    out = row(cohort(rng, 300), paces(rng, 75, factor=1.15))
    assert out["flags"] == ["prediction_drift"] and out["prediction_psi"] > 0.25


def test_a_race_is_judged_by_the_latest_prediction_made_before_its_day():
    day = RUN_DATE - timedelta(days=2)
    races = pd.DataFrame([race("a", day, 10000.0, 2400.0), race("b", day, 7000.0, 2000.0)])  # b: no standard distance
    recent = pd.DataFrame(
        [
            prediction("a", day - timedelta(days=5), 10000.0, 2000.0),  # older: not used
            prediction("a", day - timedelta(days=1), 10000.0, 2300.0, 2200.0, 2450.0),  # the one
            prediction("a", day, 10000.0, 9999.0),  # the race day itself: made after the start, not used
            prediction("a", day - timedelta(days=1), 5000.0, 1100.0),  # another distance
            prediction("b", day - timedelta(days=1), 10000.0, 2000.0),
        ]
    )
    matched = mm.realised(races, recent)
    assert matched[["athlete_id", "predicted_finish_time_s"]].values.tolist() == [["a", 2300.0]]
    accuracy = mm.accuracy(matched)
    assert accuracy == mm.Accuracy(1, pytest.approx(100 / 2400), 1.0)


def test_a_prediction_older_than_the_lookback_is_not_matched():
    day = RUN_DATE
    races = pd.DataFrame([race("a", day, 5000.0, 1200.0)])
    recent = pd.DataFrame([prediction("a", day - timedelta(days=mm.LOOKBACK_DAYS + 1), 5000.0, 1200.0)])
    assert mm.realised(races, recent).empty


def realised_races(n: int, error: float, inside: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    day = RUN_DATE - timedelta(days=1)
    races = pd.DataFrame([race(f"a{i}", day, 5000.0, 1200.0) for i in range(n)])
    time_s = 1200.0 * (1 + error)
    band = (1100.0, 1300.0) if inside else (time_s - 10, time_s + 10)
    recent = pd.DataFrame([prediction(f"a{i}", day - timedelta(days=1), 5000.0, time_s, *band) for i in range(n)])
    return races, recent


def test_realised_accuracy_worse_than_at_training_asks_for_retraining():
    rng = np.random.default_rng(5)
    races, recent = realised_races(12, error=0.06, inside=True)  # 6 % against 3 % at training
    out = row(cohort(rng, 300), races=races, recent=recent)
    assert out["realised_races"] == 12 and out["realised_mape"] == pytest.approx(0.06)
    assert out["flags"] == ["accuracy_degraded"]


def test_an_interval_that_stops_holding_raises_coverage_low():
    rng = np.random.default_rng(6)
    races, recent = realised_races(12, error=0.02, inside=False)
    out = row(cohort(rng, 300), races=races, recent=recent)
    assert out["realised_coverage"] == 0.0 and out["flags"] == ["coverage_low"]


def test_too_few_races_raise_no_accuracy_flag():
    rng = np.random.default_rng(7)
    races, recent = realised_races(mm.MIN_REALISED_RACES - 1, error=0.5, inside=False)
    out = row(cohort(rng, 300), races=races, recent=recent)
    assert out["realised_races"] == mm.MIN_REALISED_RACES - 1 and out["flags"] == []


def test_an_input_that_starts_arriving_empty_is_drift_one_that_fills_in_is_not():
    rng = np.random.default_rng(8)
    window = cohort(rng, 300)
    window.loc[window.index % 2 == 0, "avg_hr_28d"] = np.nan  # half the athletes lost their HR strap
    out = row(window)
    drifted = {f["input"]: f for f in out["feature_psi"]}
    assert out["drifted_features"] == ["avg_hr_28d"] and drifted["avg_hr_28d"]["missing_rise"] == pytest.approx(0.5)
    assert drifted["avg_hr_28d"]["psi"] < 0.25  # the values still present did not move

    rng = np.random.default_rng(8)
    reference = cohort(rng, 2000)
    reference.loc[reference.index % 5 == 0, "vdot_best_90d"] = np.nan  # early races: no 90-day best yet
    inputs = mm.feature_drift(reference, cohort(rng, 300))
    assert not inputs["vdot_best_90d"].drifted and inputs["vdot_best_90d"].missing_rise == 0.0


def test_an_empty_window_is_a_row_without_drift_values():
    out = row(pd.DataFrame(columns=list(DRIFT_INPUTS)))
    assert out["feature_rows"] == 0 and out["feature_psi"] == [] and out["max_feature_psi"] is None
    assert out["prediction_psi"] is None and out["realised_races"] == 0 and out["flags"] == []
    assert "no feature rows" in mm.describe(out)
