"""The time estimator's inputs and target: one function shared by training and inference.

Both pipelines build a frame with the feature-store row of the as-of day, the athlete's
profile, the race distance and the athlete's latest race before it; `model_inputs` turns
that into the model's columns, so training and serving cannot drift apart. The derived inputs
(`log_distance_m`, `age_years`, the baselines, `days_since_prev_race`, `base_log_pace`,
`sex_male`) are on-demand transformations (`features.on_demand`): the same functions build a
training row, a batch scoring row and an online feature vector (`features.online_view`).

Target: log pace, `log(finish_time_s / distance_m)`, learnt as a *residual* over a baseline
(`base_log_pace`: half the races' estimate, the mean of the VDOT and Riegel log paces, and half
the training runs', `aerobic_log_pace` from the heart-rate/speed line of the last 42 days;
either alone when the other is missing; else the athlete's recent training pace). Pace varies
far less across distances than time does, the log makes errors relative (what MAPE measures)
and the generator's race noise is log-normal, so squared error on log pace fits; learning the
correction to the baselines lets a few hundred races suffice (the trees only have to learn how
fitness moved since the source race).
The prediction is `exp(base_log_pace + model_output) * distance_m`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from athlete_platform.features import on_demand

FEATURE_STORE_INPUTS = (
    "atl",
    "ctl",
    "tsb",
    "acwr_rolling",
    "acwr_ewma",
    "monotony_7d",
    "strain_7d",
    "distance_7d_m",
    "distance_28d_m",
    "duration_7d_s",
    "duration_28d_s",
    "sessions_7d",
    "sessions_28d",
    "longest_session_28d_m",
    "avg_pace_28d_s_per_km",
    "avg_hr_28d",
    "days_since_last_session",
    "vdot_best_90d",
    "history_days",
    "runs_with_hr_42d",
    "run_hr_mean_42d",
    "run_log_speed_mean_42d",
    "run_log_speed_per_bpm_42d",
)
ATHLETE_INPUTS = ("weight_kg", "hr_rest", "hr_max")
# The athlete profile columns a scoring or training row joins on.
PROFILE_COLUMNS = ("athlete_id", "sex", "birth_date", *ATHLETE_INPUTS)
MODEL_INPUTS: tuple[str, ...] = (
    "distance_m",
    "log_distance_m",
    *FEATURE_STORE_INPUTS,
    *ATHLETE_INPUTS,
    "sex_male",
    "age_years",
    "vdot_log_pace",
    "riegel_log_pace",
    "aerobic_log_pace",
    "days_since_prev_race",
    "base_log_pace",
)
# The athlete's latest race on or before the features' day (training: strictly before race day).
PREVIOUS_RACE_COLUMNS = ("prev_race_date", "prev_distance_m", "prev_finish_time_s")
#: What the model reads from an athlete's stored row (feature store + profile + last race): an
#: online-store row must hold these names for `OnlineFeatureView` to build the vector.
STORED_INPUTS = (*FEATURE_STORE_INPUTS, *ATHLETE_INPUTS, "sex", "birth_date", *PREVIOUS_RACE_COLUMNS)
#: The request parameters of the ODTs and the frame columns that carry them in training rows
#: (the race) and batch scoring rows (each standard distance, a race the day after the features).
FRAME_REQUEST_COLUMNS = {"race_distance_m": "distance_m", "race_date": "event_date"}
#: Batch scoring predicts a race this many days after the features' day (`event_date`); an
#: online request without `race_date` gets the same day, so it equals the batch row.
RACE_DAYS_AFTER_FEATURE_DATE = 1
# What `model_inputs` needs in its input frame.
REQUIRED_COLUMNS = (*FRAME_REQUEST_COLUMNS.values(), *STORED_INPUTS)


def model_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns (float64, in MODEL_INPUTS order) for each row of `frame`.

    Stored columns are read as numbers; the rest are on-demand transformations computed on the
    frame's columns, with the request parameters taken from `FRAME_REQUEST_COLUMNS`.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"model_inputs needs columns {missing}")
    values = {**{c: frame[c] for c in frame.columns}, **{p: frame[c] for p, c in FRAME_REQUEST_COLUMNS.items()}}
    return pd.DataFrame(on_demand.compute(MODEL_INPUTS, values), index=frame.index, columns=list(MODEL_INPUTS)).astype(
        float
    )


def training_target(finish_time_s, distance_m, inputs: pd.DataFrame) -> np.ndarray:
    """What the model learns: log pace minus the base log pace."""
    return target_log_pace(finish_time_s, distance_m) - inputs["base_log_pace"].to_numpy(float)


def predicted_time_s(model_output, inputs: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
    """Finish time from the model's raw output (a residual on log pace).

    `inputs` holds `base_log_pace` and `distance_m`: frame columns (batch) or one request's
    floats (the embedded predictor, which gets a 0-d array back).
    """
    log_pace = np.asarray(inputs["base_log_pace"], float) + np.asarray(model_output, float)
    return time_from_log_pace(log_pace, np.asarray(inputs["distance_m"], float))


def predicted_time_one_s(model_output: float, base_log_pace: float, distance_m: float) -> float:
    """`predicted_time_s` of one request in floats, bit for bit (the embedded predictor's path).

    The same float64 sum and product in Python, and numpy's own `exp` on one float: `math.exp`
    differs from numpy's vectorised exp in the last bit on ~5 % of arguments.
    """
    return float(np.exp(base_log_pace + model_output)) * distance_m


def target_log_pace(finish_time_s: np.ndarray, distance_m: np.ndarray) -> np.ndarray:
    return np.log(np.asarray(finish_time_s, float) / np.asarray(distance_m, float))


def time_from_log_pace(log_pace: np.ndarray, distance_m: np.ndarray) -> np.ndarray:
    return np.exp(np.asarray(log_pace, float)) * np.asarray(distance_m, float)
