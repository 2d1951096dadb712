"""Time-series cross-validation folds for hyper-parameter search (issue 14), pure numpy.

Races are ordered by day. Fold k trains on every race before its cutoff day and validates on
the races from that cutoff up to the next: an expanding window, so no fold ever learns from a
race after the ones it is scored on (as in production, where the model predicts races that
have not happened). Races of one day are never split between training and validation. The
first `min_train_fraction` of the race days only ever train.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FOLDS = 4
MIN_TRAIN_FRACTION = 0.4


@dataclass(frozen=True)
class Fold:
    train: np.ndarray  # row indices
    validate: np.ndarray
    cutoff_day: np.datetime64  # first validation day


def time_series_folds(
    race_days: np.ndarray, folds: int = FOLDS, min_train_fraction: float = MIN_TRAIN_FRACTION
) -> list[Fold]:
    """Expanding-window folds over the rows' race days (any order); empty folds are dropped."""
    days = np.asarray(race_days, dtype="datetime64[D]")
    distinct = np.unique(days)
    if folds < 1 or not 0 < min_train_fraction < 1:
        raise ValueError(f"folds must be >= 1 and min_train_fraction in (0, 1), got {folds}, {min_train_fraction}")
    if len(distinct) < folds + 1:
        raise ValueError(f"{len(distinct)} race days cannot make {folds} folds: train on more history or use fewer")
    first = max(int(len(distinct) * min_train_fraction), 1)
    bounds = np.linspace(first, len(distinct), folds + 1).round().astype(int)
    out = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        if end <= start:
            continue
        cutoff, stop = distinct[start], distinct[end] if end < len(distinct) else None
        validate = (days >= cutoff) & (days < stop) if stop is not None else days >= cutoff
        out.append(Fold(np.flatnonzero(days < cutoff), np.flatnonzero(validate), cutoff))
    return out
