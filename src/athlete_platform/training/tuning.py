"""Hyper-parameter search by time-series cross-validation (issue 14), pure pandas/numpy + XGBoost.

Each candidate is a few overrides of the default parameters. It is scored by the expanding-window
folds of `training.cv` on the training races only (the held-out races stay untouched for the
gate): fit on every race before a fold's cutoff day, predict the fold's races, MAPE of the
finish times. The candidate with the lowest mean fold MAPE wins; a tie keeps the earlier one,
and the defaults come first, so a search that finds nothing better changes nothing. Training
logs every trial as an MLflow child run of the version's run (`training.pipeline`).

The candidates are few on purpose: a few hundred races a year cannot tell finer grids apart
(one fold's MAPE moves by about 0.1 point between neighbouring settings by chance alone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from athlete_platform.features import model_inputs as mi
from athlete_platform.training import cv

#: Overrides of the default parameters, defaults first: shallower and deeper trees, faster and
#: slower learning, stronger L2.
CANDIDATES: tuple[Mapping[str, Any], ...] = (
    {},
    {"max_depth": 2},
    {"max_depth": 4, "min_child_weight": 5},
    {"learning_rate": 0.06, "n_estimators": 200},
    {"learning_rate": 0.02, "n_estimators": 600},
    {"reg_lambda": 10.0},
)


@dataclass(frozen=True)
class Trial:
    """One candidate's cross-validation result."""

    number: int  # position in the candidates (0: the defaults)
    overrides: Mapping[str, Any]
    fold_mape: tuple[float, ...]
    fold_rows: tuple[int, ...]  # validation races per fold

    @property
    def mape(self) -> float:
        """Mean of the folds' MAPE (each fold counts the same)."""
        return float(np.mean(self.fold_mape))


def search(
    train: pd.DataFrame,
    base_params: Mapping[str, Any],
    candidates: Sequence[Mapping[str, Any]] = CANDIDATES,
    folds: int = cv.FOLDS,
) -> list[Trial]:
    """Every candidate scored by time-series CV on `train` (its `race_date` orders the folds)."""
    import xgboost as xgb

    splits = cv.time_series_folds(pd.to_datetime(train["race_date"]).to_numpy(), folds)
    inputs = mi.model_inputs(train)
    target = mi.training_target(train["finish_time_s"], train["distance_m"], inputs)
    actual_s = train["finish_time_s"].to_numpy(float)
    trials = []
    for number, overrides in enumerate(candidates):
        params = {**base_params, **overrides}
        mapes, rows = [], []
        for fold in splits:
            model = xgb.XGBRegressor(**params).fit(inputs.iloc[fold.train], target[fold.train])
            held = inputs.iloc[fold.validate]
            predicted_s = mi.predicted_time_s(model.predict(held), held)
            mapes.append(float(np.mean(np.abs(predicted_s - actual_s[fold.validate]) / actual_s[fold.validate])))
            rows.append(len(fold.validate))
        trials.append(Trial(number, dict(overrides), tuple(mapes), tuple(rows)))
    return trials


def best(trials: Sequence[Trial]) -> Trial:
    """The trial with the lowest mean fold MAPE; the earliest of equals."""
    if not trials:
        raise ValueError("no trials to choose from")
    return min(trials, key=lambda t: (t.mape, t.number))
