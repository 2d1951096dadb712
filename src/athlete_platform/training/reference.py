"""The reference population that monitoring compares a scoring window against (issue 14), pure
pandas: written by training as artifacts of the version's MLflow run.

The reference is every athlete's state on each of the 28 days up to the training run date
(`training.dataset.reference_states`, framed as batch scoring frames it): the population the
version was validated and promoted to score, so a later week differs from it only if the
athletes changed. (The training races' states were the reference before: race days are
tapered, rested days, so an ordinary week of the same athletes already "drifted" from them on
six inputs.)

- `inputs.parquet`: the stored inputs of each reference state (`DRIFT_INPUTS`: the feature
  store's load state and the profile). Only these are compared: the request-derived inputs
  (distance, the baselines' projections) describe the race asked about, not the athlete.
- `predictions.parquet`: the model's predicted pace for each reference state at each standard
  distance, like for like with a window's predictions (which are for those distances).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from athlete_platform.domain.distances import RACE_DISTANCES_M
from athlete_platform.features import model_inputs as mi

if TYPE_CHECKING:
    from pathlib import Path

#: Inputs whose drift monitoring measures: the athlete's stored state, not the request; without
#: `history_days` (days since the first session), which grows with the calendar by construction.
DRIFT_INPUTS: tuple[str, ...] = tuple(c for c in (*mi.FEATURE_STORE_INPUTS, *mi.ATHLETE_INPUTS) if c != "history_days")
#: Artifact folder of the training run that holds the reference files.
ARTIFACT_PATH = "monitoring_reference"
INPUTS_FILE = "inputs.parquet"
PREDICTIONS_FILE = "predictions.parquet"


def reference_inputs(train: pd.DataFrame) -> pd.DataFrame:
    """The drift inputs of each reference row, as floats."""
    return pd.DataFrame({c: pd.to_numeric(train[c], errors="coerce").astype(float) for c in DRIFT_INPUTS})


def reference_predictions(model, train: pd.DataFrame) -> pd.DataFrame:
    """Predicted pace, s/km, of each reference state at each standard distance."""
    parts = []
    for distance in RACE_DISTANCES_M:
        inputs = mi.model_inputs(train.assign(distance_m=distance))
        time_s = mi.predicted_time_s(model.predict(inputs), inputs)
        parts.append(pd.DataFrame({"race_distance_m": distance, "predicted_pace_s_per_km": time_s / (distance / 1000)}))
    return pd.concat(parts, ignore_index=True)


def write(folder: Path, model, train: pd.DataFrame) -> Path:
    """Write both reference files into `folder` (logged as the run's `ARTIFACT_PATH`)."""
    folder.mkdir(parents=True, exist_ok=True)
    reference_inputs(train).to_parquet(folder / INPUTS_FILE, index=False)
    reference_predictions(model, train).to_parquet(folder / PREDICTIONS_FILE, index=False)
    return folder


def read(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(inputs, predictions) written by `write`."""
    return pd.read_parquet(folder / INPUTS_FILE), pd.read_parquet(folder / PREDICTIONS_FILE)


def finite(values: pd.Series) -> np.ndarray:
    """A column as floats with non-finite values as NaN (PSI counts missing as a bin)."""
    out = pd.to_numeric(values, errors="coerce").to_numpy(float)
    out[~np.isfinite(out)] = np.nan
    return out
