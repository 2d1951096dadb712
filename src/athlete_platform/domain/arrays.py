"""Array coercion shared by the vectorised domain and metric functions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def as_float_array(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def maybe_scalar(result: np.ndarray) -> np.ndarray | float:
    return float(result) if result.ndim == 0 else result


def as_days(day: Any) -> np.ndarray:
    """Convert dates / datetimes / strings to a 1-D ``datetime64[D]`` array."""
    arr = np.asarray(day)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype.kind == "M":
        out = arr.astype("datetime64[D]")
    else:
        idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(arr, dtype=object)))
        if idx.tz is not None:
            raise ValueError("timezone-aware timestamps are ambiguous; pass local calendar dates")
        out = idx.to_numpy().astype("datetime64[D]")
    if np.any(np.isnat(out)):
        raise ValueError("session days must not contain missing values (NaT)")
    return out
