"""Hyper-parameter search by time-series CV (training/tuning.py): each candidate is scored on the
expanding folds of the training races only, the lowest mean fold MAPE wins (the defaults on a
tie), and training uses the winner unless parameters were given."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import xgboost as xgb

from athlete_platform.features import model_inputs as mi
from athlete_platform.training import cv, tuning
from athlete_platform.training.pipeline import XGB_PARAMS, TrainingInputs, fit_and_evaluate
from tests.unit.test_training_intervals import generated_races

FAST = {**XGB_PARAMS, "n_estimators": 30}
CANDIDATES = ({}, {"max_depth": 1}, {"learning_rate": 0.3})


@pytest.fixture(scope="module")
def races():
    return generated_races(seed=11, athletes=120, races_each=6)


def test_each_candidate_is_scored_on_the_time_series_folds_of_the_training_races(races):
    trials = tuning.search(races, FAST, CANDIDATES)
    assert [t.number for t in trials] == [0, 1, 2] and [t.overrides for t in trials] == list(CANDIDATES)
    folds = cv.time_series_folds(np.asarray(races["race_date"], dtype="datetime64[D]"))
    assert all(t.fold_rows == tuple(len(f.validate) for f in folds) for t in trials)
    # Fold 0 of the defaults by hand: fit on the races before the cutoff, score the fold's races.
    inputs = mi.model_inputs(races)
    target = mi.training_target(races["finish_time_s"], races["distance_m"], inputs)
    first = folds[0]
    model = xgb.XGBRegressor(**FAST).fit(inputs.iloc[first.train], target[first.train])
    held = inputs.iloc[first.validate]
    actual = races["finish_time_s"].to_numpy(float)[first.validate]
    by_hand = np.mean(np.abs(mi.predicted_time_s(model.predict(held), held) - actual) / actual)
    assert trials[0].fold_mape[0] == pytest.approx(by_hand, rel=1e-12)
    assert trials[0].mape == pytest.approx(np.mean(trials[0].fold_mape))


def test_the_lowest_mean_wins_and_a_tie_keeps_the_earlier_candidate():
    trials = [
        tuning.Trial(0, {}, (0.03, 0.03), (10, 10)),
        tuning.Trial(1, {"max_depth": 2}, (0.02, 0.03), (10, 10)),
        tuning.Trial(2, {"max_depth": 4}, (0.03, 0.02), (10, 10)),
    ]
    assert tuning.best(trials).number == 1  # 1 and 2 tie at 0.025: the earlier one
    assert tuning.best(trials[:1]).number == 0
    with pytest.raises(ValueError, match="no trials"):
        tuning.best([])


def test_training_uses_the_winner_unless_parameters_are_given(races, monkeypatch):
    monkeypatch.setattr(tuning, "CANDIDATES", CANDIDATES)
    tuned = fit_and_evaluate(TrainingInputs(races, {}, date(2024, 12, 31), None, {}))
    assert len(tuned.trials) == len(CANDIDATES)
    winner = tuning.best(tuned.trials)
    assert tuned.params == {**XGB_PARAMS, **winner.overrides}
    given = fit_and_evaluate(TrainingInputs(races, {}, date(2024, 12, 31), None, {"n_estimators": 20}))
    assert given.trials == () and given.params["n_estimators"] == 20
