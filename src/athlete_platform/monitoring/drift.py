"""Population Stability Index (PSI): how far a feature's distribution in a scoring window has
moved from the training set's, pure numpy.

Bins are the training sample's deciles (quantile edges; each bin is (low, high], so each holds
about a tenth of the training rows; ties merge bins), open at both ends so a value beyond the
training range still lands in the first or last bin. PSI = sum over bins of
(actual% - expected%) * ln(actual% / expected%) over the values present on each side, with each
share floored at `EPSILON` so an empty bin does not make it infinite. Missing values are measured
apart (`missing_rise`): a feature that starts arriving empty is drift, one that becomes *more*
complete (e.g. a 90-day best once athletes have 90 days of history) is not, and a missing bin
inside the PSI would count both alike.

Reading it (the industry's usual bands): below 0.1 stable, 0.1 to 0.25 a moderate shift worth a
look, above 0.25 a significant shift (`PSI_ALERT`: the monitoring flag).
"""

from __future__ import annotations

import numpy as np

BINS = 10
EPSILON = 1e-4
PSI_WATCH = 0.1
PSI_ALERT = 0.25
#: A rise in the share of missing values above this (absolute) is drift too.
MISSING_ALERT = 0.1


def bin_edges(expected: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Inner quantile edges of the expected (training) values, duplicates removed."""
    values = np.asarray(expected, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return np.array([])
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))


def shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each bin's share of the values present (missing ones are left out)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = BINS) -> float:
    """The PSI of `actual` (scoring window) against `expected` (training set), over present values
    (0 when a side has none: what is missing is `missing_rise`'s to judge)."""
    if len(expected) == 0 or len(actual) == 0:
        raise ValueError("PSI needs values on both sides (training set and scoring window)")
    expected, actual = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if np.isnan(expected).all() or np.isnan(actual).all():
        return 0.0
    edges = bin_edges(expected, bins)
    e = np.maximum(shares(expected, edges), EPSILON)
    a = np.maximum(shares(actual, edges), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def missing_rise(expected: np.ndarray, actual: np.ndarray) -> float:
    """How much larger the window's share of missing values is than the training set's (0 when
    it is not larger)."""
    e, a = np.isnan(np.asarray(expected, dtype=float)), np.isnan(np.asarray(actual, dtype=float))
    return max(0.0, float(a.mean()) - float(e.mean()))
