"""Training's P10-P90 intervals on generated races whose noise is known (issue 14).

The races are drawn as: log pace = the VDOT projection of the athlete's fitness + noise, with the
noise's spread set per distance (the marathon three times the 5K's). `fit_and_evaluate` must
calibrate on its own window (never on the held-out races) and the held-out coverage of the
80 % interval must land near 80 %, per distance: the interval follows each distance's noise.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from athlete_platform.features import model_inputs as mi
from athlete_platform.features import on_demand
from athlete_platform.training import intervals
from athlete_platform.training.pipeline import (
    CALIBRATION_FOLDS,
    CALIBRATION_FROM_QUANTILE,
    TrainingInputs,
    calibration_folds,
    fit_and_evaluate,
    interval_metadata,
)

NOISE_SD = {5000.0: 0.02, 10000.0: 0.03, 21097.5: 0.045, 42195.0: 0.06}


def generated_races(seed: int, athletes: int = 1500, races_each: int = 10) -> pd.DataFrame:
    """`athletes` x `races_each` races over two years; each athlete's fitness (VDOT) is fixed."""
    rng = np.random.default_rng(seed)
    n = athletes * races_each
    athlete = np.repeat(np.arange(athletes), races_each)
    day = np.concatenate([np.sort(rng.choice(730, races_each, replace=False)) for _ in range(athletes)])
    distance = rng.choice(list(NOISE_SD), n)
    vdot = np.repeat(rng.uniform(35, 65, athletes), races_each)
    noise_sd = np.array([NOISE_SD[d] for d in distance])
    finish_s = on_demand.vdot_projection_s(distance, vdot) * np.exp(rng.normal(0.0, noise_sd))
    race_date = pd.to_datetime(date(2023, 1, 1)) + pd.to_timedelta(day, unit="D")
    first = np.arange(n) % races_each == 0
    frame = pd.DataFrame({c: np.ones(n) for c in mi.REQUIRED_COLUMNS})
    frame = frame.assign(
        athlete_id=[f"a{a:04d}" for a in athlete],
        session_id=[f"a{a:04d}-r{k}" for a, k in zip(athlete, np.arange(n) % races_each, strict=True)],
        race_date=race_date.date,
        event_date=race_date.date,
        distance_m=distance,
        finish_time_s=finish_s,
        vdot_best_90d=vdot,
        ctl=rng.uniform(20, 80, n),
        sex=np.where(athlete % 2 == 1, "F", "M"),
        birth_date=date(1990, 1, 1),
        weight_kg=60.0,
        hr_rest=50.0,
        hr_max=190.0,
        prev_race_date=np.where(first, None, np.roll(race_date.date, 1)),
        prev_distance_m=np.where(first, np.nan, np.roll(distance, 1)),
        prev_finish_time_s=np.where(first, np.nan, np.roll(finish_s, 1)),
        races_before=np.arange(n) % races_each,
    )
    return frame.sort_values(["race_date", "athlete_id"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def trained():
    frame = generated_races(seed=7)
    inputs = TrainingInputs(frame, {}, date(2024, 12, 31), None, {}, tune=False)  # intervals, not tuning
    return fit_and_evaluate(inputs)


def test_the_80_percent_interval_holds_on_held_out_races_per_distance(trained):
    """About 5,400 held-out races (1,350 per distance) and 9,600 calibration residuals (2,400 per
    distance): sampling alone moves a distance's coverage by about 1.5 points (one sd), so the
    bounds per distance are 6 points (4 sd) each side; over all distances, 77-83 %."""
    metrics = trained.metrics
    assert 0.77 <= metrics["interval_coverage"] <= 0.83, metrics["interval_coverage"]
    for tag in ("5k", "10k", "half_marathon", "marathon"):
        assert 0.74 <= metrics[f"interval_coverage_{tag}"] <= 0.86, (tag, metrics[f"interval_coverage_{tag}"])


def test_each_distance_gets_its_own_width_following_its_noise(trained):
    offsets = trained.offsets
    widths = {d: offsets[f"{d:g}"].high - offsets[f"{d:g}"].low for d in NOISE_SD}
    # The central 80 % of the noise alone spans 2 x 1.2816 sd; the model's own error widens it a little.
    for d, sd in NOISE_SD.items():
        assert 0.9 <= widths[d] / (2 * 1.2816 * sd) <= 1.4, (d, widths[d])
    assert widths[5000.0] < widths[10000.0] < widths[21097.5] < widths[42195.0]


def test_calibration_never_sees_a_held_out_race_and_cross_fits_by_athlete(trained):
    train = trained.split.train
    assert set(train["session_id"]).isdisjoint(trained.split.test["session_id"])
    folds = pd.Series(calibration_folds(train["athlete_id"]), index=train.index)
    assert folds.groupby(train["athlete_id"]).nunique().max() == 1  # an athlete is in one fold
    assert sorted(folds.unique()) == list(range(CALIBRATION_FOLDS))
    # the later half of the training races (by day) calibrates: the per-distance residual counts
    # add up to the races on or after the median race day
    days = pd.to_datetime(train["race_date"])
    later = int((days >= days.quantile(CALIBRATION_FROM_QUANTILE)).sum())
    assert sum(o.rows for g, o in trained.offsets.items() if g != intervals.POOLED) == later
    assert len(train) * 0.45 < later < len(train) * 0.6


def test_the_offsets_round_trip_through_the_model_metadata(trained):
    import yaml

    metadata = interval_metadata(trained.offsets)
    # MLflow writes the metadata into the MLmodel file with yaml.safe_dump: plain types only.
    stored = yaml.safe_load(yaml.safe_dump(metadata))[intervals.METADATA_KEY]
    assert set(stored["offsets"]) == {"*", "5000", "10000", "21097.5", "42195"}
    assert intervals.from_metadata(stored) == trained.offsets
    assert intervals.from_metadata(None) is None


def test_the_evaluation_rows_carry_the_interval_around_the_prediction(trained):
    evaluation = trained.evaluation
    assert len(evaluation) == len(trained.split.test)
    assert (evaluation["p10_s"] < evaluation["predicted_s"]).all()
    assert (evaluation["predicted_s"] < evaluation["p90_s"]).all()


def test_too_few_races_to_cross_fit_give_no_interval_not_a_failure():
    frame = generated_races(seed=3, athletes=8, races_each=6)
    trained = fit_and_evaluate(TrainingInputs(frame, {}, date(2024, 12, 31), None, {"n_estimators": 20}))
    assert trained.offsets is None
    assert "interval_coverage" not in trained.metrics
    assert trained.evaluation["p10_s"].isna().all()
