"""One row of `gold.model_monitoring` (issue 14), pure pandas: how far a 7-day scoring window has
drifted from the training set, and how accurate the version's predictions turned out.

- **Input drift:** PSI (`monitoring.drift`) of each stored model input (`training.reference.
  DRIFT_INPUTS`) of the window's feature rows against the version's reference population:
  every athlete's state on the 28 days up to its training run date (`training.reference`).
- **Prediction drift:** PSI of the predicted pace of the window's predictions against the
  model's predictions for that reference population at the same standard distances.
- **Realised accuracy:** each race run in the window at a standard distance is matched with this
  version's latest prediction for that athlete and distance made in the `LOOKBACK_DAYS` before
  it (as_of_date < race day: the prediction existed before the race); MAPE and P10-P90 coverage.

Flags (each with its threshold, chosen as a Databricks Lakehouse Monitoring or Evidently user
would set them): `feature_drift` (an input's PSI > 0.25, or its share of missing values up by
more than 10 points), `prediction_drift` (PSI > 0.25),
`accuracy_degraded` (realised MAPE above 1.5x the held-out MAPE at training) and `coverage_low`
(realised coverage below 65 % for an 80 % interval); the accuracy flags need at least
`MIN_REALISED_RACES` races. Any flag sets `retrain_recommended`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from athlete_platform.domain.distances import RACE_DISTANCES_M
from athlete_platform.monitoring.drift import MISSING_ALERT, PSI_ALERT, missing_rise, psi
from athlete_platform.training.reference import DRIFT_INPUTS, finite

WINDOW_DAYS = 7
LOOKBACK_DAYS = 7
MIN_REALISED_RACES = 10
ACCURACY_ALERT_RATIO = 1.5
COVERAGE_ALERT = 0.65

RACE_COLUMNS = ("athlete_id", "race_date", "distance_m", "finish_time_s")
PREDICTION_COLUMNS = (
    "athlete_id",
    "as_of_date",
    "race_distance_m",
    "predicted_finish_time_s",
    "predicted_finish_time_p10_s",
    "predicted_finish_time_p90_s",
    "predicted_pace_s_per_km",
)


def window_of(run_date: date) -> tuple[date, date]:
    """The 7 days ending on the run date."""
    return run_date - timedelta(days=WINDOW_DAYS - 1), run_date


@dataclass(frozen=True)
class InputDrift:
    psi: float  # over the values present on each side
    missing_rise: float  # rise of the share of missing values (0: not more missing than at training)

    @property
    def drifted(self) -> bool:
        return self.psi > PSI_ALERT or self.missing_rise > MISSING_ALERT


def feature_drift(reference: pd.DataFrame, window: pd.DataFrame) -> dict[str, InputDrift]:
    """Drift of each drift input (empty when the window has no rows)."""
    if window.empty:
        return {}
    out = {}
    for c in DRIFT_INPUTS:
        expected, actual = finite(reference[c]), finite(window[c])
        out[c] = InputDrift(psi(expected, actual), missing_rise(expected, actual))
    return out


def prediction_drift(reference: pd.DataFrame, window: pd.DataFrame) -> float | None:
    """PSI of predicted pace, each distance given the same weight on both sides (None: no predictions)."""
    if window.empty:
        return None
    return psi(_balanced(reference), _balanced(window))


def _balanced(frame: pd.DataFrame) -> np.ndarray:
    """Predicted paces with every standard distance equally represented (resampled with a fixed
    seed to the smallest distance's count), so a window scored at other proportions is not "drift"."""
    groups = [frame.loc[np.isclose(frame["race_distance_m"], d), "predicted_pace_s_per_km"] for d in RACE_DISTANCES_M]
    groups = [g for g in groups if len(g)]
    smallest = min(len(g) for g in groups)
    rng = np.random.default_rng(0)
    return np.concatenate([finite(g)[rng.permutation(len(g))[:smallest]] for g in groups])


def standard_distance(distance_m: pd.Series) -> pd.Series:
    """The standard race distance a race was run at (within 0.5 %), else NaN."""
    out = pd.Series(np.nan, index=distance_m.index)
    for d in RACE_DISTANCES_M:
        out[np.isclose(distance_m.astype(float), d, rtol=0.005)] = d
    return out


def realised(races: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """Each race with the latest prediction for its athlete and distance made in the
    `LOOKBACK_DAYS` before the race day; races without one are left out."""
    races = races.assign(race_distance_m=standard_distance(races["distance_m"])).dropna(subset=["race_distance_m"])
    if races.empty or predictions.empty:
        return pd.DataFrame(columns=[*RACE_COLUMNS, *PREDICTION_COLUMNS[1:]])
    pairs = races.merge(predictions, on=["athlete_id", "race_distance_m"])
    race_day = pd.to_datetime(pairs["race_date"])
    made = pd.to_datetime(pairs["as_of_date"])
    pairs = pairs[(made < race_day) & (made >= race_day - pd.Timedelta(days=LOOKBACK_DAYS))]
    latest = pairs.sort_values("as_of_date").groupby(["athlete_id", "race_date", "race_distance_m"]).tail(1)
    return latest.reset_index(drop=True)


@dataclass(frozen=True)
class Accuracy:
    races: int
    mape: float | None
    coverage: float | None


def accuracy(matched: pd.DataFrame) -> Accuracy:
    """MAPE and P10-P90 coverage of matched races (coverage over races whose prediction has a range)."""
    if matched.empty:
        return Accuracy(0, None, None)
    actual = matched["finish_time_s"].to_numpy(float)
    error = np.abs(matched["predicted_finish_time_s"].to_numpy(float) - actual) / actual
    low = matched["predicted_finish_time_p10_s"].to_numpy(float)
    high = matched["predicted_finish_time_p90_s"].to_numpy(float)
    ranged = ~(np.isnan(low) | np.isnan(high))
    inside = (actual[ranged] >= low[ranged]) & (actual[ranged] <= high[ranged])
    coverage = float(np.mean(inside)) if ranged.any() else None
    return Accuracy(len(matched), float(np.mean(error)), coverage)


def flags(
    inputs: dict[str, InputDrift], prediction_psi: float | None, realised_: Accuracy, training_mape: float | None
) -> list[str]:
    """The raised flags, in a fixed order (see the module docstring for each threshold)."""
    out = []
    if any(drift.drifted for drift in inputs.values()):
        out.append("feature_drift")
    if prediction_psi is not None and prediction_psi > PSI_ALERT:
        out.append("prediction_drift")
    if realised_.races >= MIN_REALISED_RACES:
        bar = None if training_mape is None else ACCURACY_ALERT_RATIO * training_mape
        if bar is not None and realised_.mape is not None and realised_.mape > bar:
            out.append("accuracy_degraded")
        if realised_.coverage is not None and realised_.coverage < COVERAGE_ALERT:
            out.append("coverage_low")
    return out


def monitoring_row(
    model_name: str,
    model_version: str,
    run_date: date,
    reference_inputs: pd.DataFrame,
    reference_predictions: pd.DataFrame,
    window_features: pd.DataFrame,
    window_predictions: pd.DataFrame,
    races: pd.DataFrame,
    recent_predictions: pd.DataFrame,
    training_mape: float | None,
) -> dict:
    """The table row (without lineage) for one version and the window ending on `run_date`.

    `window_features`: drift inputs of the window's feature rows; `window_predictions`: the
    version's predictions made in the window; `races`: races run in the window;
    `recent_predictions`: the version's predictions from `LOOKBACK_DAYS` before the window on."""
    start, end = window_of(run_date)
    inputs = feature_drift(reference_inputs, window_features)
    prediction_psi = prediction_drift(reference_predictions, window_predictions)
    realised_ = accuracy(realised(races, recent_predictions))
    raised = flags(inputs, prediction_psi, realised_, training_mape)
    return {
        "model_name": model_name,
        "model_version": model_version,
        "window_start": start,
        "window_end": end,
        "feature_rows": len(window_features),
        "feature_psi": [{"input": c, "psi": d.psi, "missing_rise": d.missing_rise} for c, d in sorted(inputs.items())],
        "max_feature_psi": max(d.psi for d in inputs.values()) if inputs else None,
        "drifted_features": sorted(c for c, d in inputs.items() if d.drifted),
        "prediction_rows": len(window_predictions),
        "prediction_psi": prediction_psi,
        "realised_races": realised_.races,
        "realised_mape": realised_.mape,
        "realised_coverage": realised_.coverage,
        "training_mape": None if training_mape is None or math.isnan(training_mape) else training_mape,
        "flags": raised,
        "retrain_recommended": bool(raised),
    }


def describe(row: dict) -> str:
    """One line for logs and `make run`'s summary."""
    psi_text = "no feature rows" if row["max_feature_psi"] is None else f"max input PSI {row['max_feature_psi']:.3f}"
    pred_text = "no predictions" if row["prediction_psi"] is None else f"prediction PSI {row['prediction_psi']:.3f}"
    acc = (
        f"realised MAPE {row['realised_mape']:.2%} on {row['realised_races']} races"
        if row["realised_races"]
        else "no race with a prior prediction yet"
    )
    verdict = ("flags: " + ", ".join(row["flags"]) + " -> retrain recommended") if row["flags"] else "no flag"
    return (
        f"{row['model_name']} v{row['model_version']} {row['window_start']}..{row['window_end']}: "
        f"{psi_text}, {pred_text}, {acc}; {verdict}"
    )
