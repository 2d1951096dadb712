"""Prediction intervals by conformal calibration (issue 14), pure numpy.

The time estimator predicts a log-pace residual (`log(finish_time_s / distance_m) - base_log_pace`).
On calibration races scored by a model that did not train on them (training cross-fits them by
athlete), the residuals `actual - predicted` are collected per race distance (Mondrian
conformal: a marathon's errors are not a 5K's); the interval of a new prediction is
`predicted + [q_low, q_high]`, mapped back to seconds. With `n` calibration residuals, `q_low`
is the `floor((n + 1) * (1 - coverage) / 2)`-th smallest and `q_high` the
`ceil((n + 1) * (1 + coverage) / 2)`-th smallest: the split-conformal order statistics, which
cover at least `coverage` of exchangeable new races (for cross-fitted residuals and a model
refitted on all rows, as in CV+, that holds approximately; training measures it on held-out
races). A distance with fewer than `min_group_rows` calibration races uses the offsets pooled
over all distances.

Because the target is a log, the interval in seconds is asymmetric (the slow side is wider),
as race outcomes are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: The interval the platform publishes: P10 to P90.
COVERAGE = 0.8
#: Fewer calibration races than this for a distance: the pooled offsets are used for it.
MIN_GROUP_ROWS = 30
POOLED = "*"
#: The MLmodel metadata key under which a version stores its offsets (`to_metadata`).
METADATA_KEY = "prediction_interval"


@dataclass(frozen=True)
class Offsets:
    """The residual quantiles of one group (a distance, or all pooled)."""

    low: float  # add to the predicted log pace for P10
    high: float  # ... for P90
    rows: int  # calibration residuals behind them


def min_calibration_rows(coverage: float = COVERAGE) -> int:
    """The fewest residuals whose order statistics can guarantee `coverage` (9 for 80 %)."""
    alpha = 1.0 - coverage
    return math.ceil(2 / alpha - 1 - 1e-9)


def conformal_offsets(residuals: np.ndarray, coverage: float = COVERAGE) -> Offsets:
    """Split-conformal lower and upper offsets for a central `coverage` interval."""
    values = np.sort(np.asarray(residuals, dtype=float))
    values = values[~np.isnan(values)]
    n = len(values)
    if n < min_calibration_rows(coverage):
        raise ValueError(
            f"{n} calibration residuals cannot give a {coverage:.0%} interval that holds (at least "
            f"{min_calibration_rows(coverage)} are needed): widen the calibration window"
        )
    alpha = 1.0 - coverage
    slack = 1e-9  # (n + 1) * alpha / 2 is often a whole number in floating point's clothing
    low_k = math.floor((n + 1) * alpha / 2 + slack)  # 1-based order statistics, within 1..n here
    high_k = math.ceil((n + 1) * (1 - alpha / 2) - slack)
    return Offsets(float(values[low_k - 1]), float(values[high_k - 1]), n)


def calibrate(
    residuals: np.ndarray,
    groups: np.ndarray,
    coverage: float = COVERAGE,
    min_group_rows: int = MIN_GROUP_ROWS,
) -> dict[str, Offsets]:
    """Offsets per group with enough rows, plus the pooled ones (key `POOLED`)."""
    residuals, groups = np.asarray(residuals, dtype=float), np.asarray(groups).astype(str)
    out = {POOLED: conformal_offsets(residuals, coverage)}
    for group in np.unique(groups):
        mine = residuals[groups == group]
        if len(mine) >= min_group_rows:
            out[str(group)] = conformal_offsets(mine, coverage)  # a plain str: it goes to YAML (MLmodel)
    return out


def interval(predicted: np.ndarray, groups: np.ndarray, offsets: dict[str, Offsets]) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of each prediction, in the prediction's own (log) units. Vectorised: one
    lookup per distinct group, not per row (batch scoring calls it on every Arrow batch)."""
    predicted, groups = np.asarray(predicted, dtype=float), np.asarray(groups).astype(str)
    pooled = offsets[POOLED]
    distinct, index = np.unique(groups, return_inverse=True)
    low = np.array([offsets.get(g, pooled).low for g in distinct], dtype=float)
    high = np.array([offsets.get(g, pooled).high for g in distinct], dtype=float)
    return predicted + low[index], predicted + high[index]


def distance_groups(distance_m: np.ndarray) -> np.ndarray:
    """The calibration group of each race: its distance in metres as text ("5000", "21097.5")."""
    return np.array([f"{d:g}" for d in np.asarray(distance_m, dtype=float)])


def to_metadata(offsets: dict[str, Offsets], coverage: float = COVERAGE) -> dict:
    """The offsets as plain JSON-able values, stored with the model version (MLmodel metadata)."""
    return {
        "method": "split conformal, per race distance (Mondrian), on the log-pace residual",
        "coverage": coverage,
        "offsets": {
            str(g): {"low": float(o.low), "high": float(o.high), "rows": int(o.rows)} for g, o in offsets.items()
        },
    }


def from_metadata(metadata: dict | None) -> dict[str, Offsets] | None:
    """The offsets stored by `to_metadata`, or None for a version trained without intervals."""
    stored = (metadata or {}).get("offsets")
    if not stored or POOLED not in stored:
        return None
    return {g: Offsets(float(o["low"]), float(o["high"]), int(o["rows"])) for g, o in stored.items()}


def coverage_of(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """The share of `actual` inside [low, high]."""
    actual = np.asarray(actual, dtype=float)
    return float(np.mean((actual >= low) & (actual <= high)))
