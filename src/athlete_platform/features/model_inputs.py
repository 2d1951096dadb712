"""The time estimator's inputs and target: one function shared by training and inference.

Both pipelines build a frame with the feature-store row of the as-of day, the athlete's
profile, the race distance and the athlete's latest race before it; `model_inputs` turns
that into the model's columns, so training and serving cannot drift apart.

Target: log pace, `log(finish_time_s / distance_m)`, learnt as a *residual* over a baseline
(`base_log_pace`: the mean of the VDOT and Riegel log paces where they exist, else the
athlete's recent training pace). Pace varies far less across distances than time does, the
log makes errors relative (what MAPE measures) and the generator's race noise is log-normal,
so squared error on log pace fits; learning the correction to the baselines lets a few
hundred races suffice (the trees only have to learn how fitness moved since the source race).
The prediction is `exp(base_log_pace + model_output) * distance_m`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from athlete_platform.domain import physiology

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
    "days_since_prev_race",
    "base_log_pace",
)
# A last-resort base pace (5:00 min/km) when an athlete has no race and no recent run.
FALLBACK_PACE_S_PER_M = 0.3
# What `model_inputs` needs in its input frame.
REQUIRED_COLUMNS = (
    "distance_m",
    "event_date",
    *FEATURE_STORE_INPUTS,
    *ATHLETE_INPUTS,
    "sex",
    "birth_date",
    "prev_race_date",
    "prev_distance_m",
    "prev_finish_time_s",
)


def vdot_baseline_time_s(vdot_best_90d: np.ndarray, distance_m: np.ndarray) -> np.ndarray:
    """Daniels equivalent time for the distance at the best recent VDOT (NaN without one)."""
    return np.asarray(physiology.daniels_time_s(np.asarray(vdot_best_90d, float), np.asarray(distance_m, float)), float)


def riegel_baseline_time_s(prev_time_s: np.ndarray, prev_distance_m: np.ndarray, distance_m: np.ndarray) -> np.ndarray:
    """Riegel from the athlete's latest earlier race (NaN without one)."""
    return np.asarray(
        physiology.riegel_time_s(
            np.asarray(prev_time_s, float), np.asarray(prev_distance_m, float), np.asarray(distance_m, float)
        ),
        float,
    )


def model_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns (float64, in MODEL_INPUTS order) for each row of `frame`."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"model_inputs needs columns {missing}")
    distance = frame["distance_m"].to_numpy(float)
    event = pd.to_datetime(frame["event_date"])
    out = pd.DataFrame(index=frame.index)
    out["distance_m"] = distance
    out["log_distance_m"] = np.log(distance)
    for column in (*FEATURE_STORE_INPUTS, *ATHLETE_INPUTS):
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    out["sex_male"] = (frame["sex"] == "M").astype(float)
    out["age_years"] = ((event - pd.to_datetime(frame["birth_date"])).dt.days / 365.25).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["vdot_log_pace"] = np.log(vdot_baseline_time_s(frame["vdot_best_90d"], distance) / distance)
        riegel = riegel_baseline_time_s(frame["prev_finish_time_s"], frame["prev_distance_m"], distance)
        out["riegel_log_pace"] = np.log(riegel / distance)
    out["days_since_prev_race"] = (event - pd.to_datetime(frame["prev_race_date"])).dt.days.astype(float)
    out["base_log_pace"] = base_log_pace(out)
    return out[list(MODEL_INPUTS)].astype(float)


def base_log_pace(inputs: pd.DataFrame) -> np.ndarray:
    """Mean of the baselines' log paces; else log of recent training pace; else a fallback."""
    baselines = inputs[["vdot_log_pace", "riegel_log_pace"]].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        counts = np.isfinite(baselines).sum(axis=1)
        mean = np.where(
            counts > 0, np.nansum(np.where(np.isfinite(baselines), baselines, 0.0), axis=1) / counts, np.nan
        )
        training_pace = np.log(inputs["avg_pace_28d_s_per_km"].to_numpy(float) / 1000.0)
    base = np.where(np.isfinite(mean), mean, training_pace)
    return np.where(np.isfinite(base), base, np.log(FALLBACK_PACE_S_PER_M))


def training_target(finish_time_s, distance_m, inputs: pd.DataFrame) -> np.ndarray:
    """What the model learns: log pace minus the base log pace."""
    return target_log_pace(finish_time_s, distance_m) - inputs["base_log_pace"].to_numpy(float)


def predicted_time_s(model_output, inputs: pd.DataFrame) -> np.ndarray:
    """Finish time from the model's raw output (a residual on log pace)."""
    log_pace = inputs["base_log_pace"].to_numpy(float) + np.asarray(model_output, float)
    return time_from_log_pace(log_pace, inputs["distance_m"].to_numpy(float))


def target_log_pace(finish_time_s: np.ndarray, distance_m: np.ndarray) -> np.ndarray:
    return np.log(np.asarray(finish_time_s, float) / np.asarray(distance_m, float))


def time_from_log_pace(log_pace: np.ndarray, distance_m: np.ndarray) -> np.ndarray:
    return np.exp(np.asarray(log_pace, float)) * np.asarray(distance_m, float)
