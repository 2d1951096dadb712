"""Population Stability Index (PSI): how far a feature's distribution in a scoring window has
moved from the training set's, pure numpy.

Bins are the training sample's deciles (quantile edges; each bin is (low, high], so each holds
about a tenth of the training rows; ties merge bins), open at both ends so a value beyond the
training range still lands in the first or last bin. Missing values are a bin of their own: a feature that starts
arriving empty is drift too. PSI = sum over bins of (actual% - expected%) * ln(actual% / expected%),
with each share floored at `EPSILON` so an empty bin does not make it infinite.

Reading it (the industry's usual bands): below 0.1 stable, 0.1 to 0.25 a moderate shift worth a
look, above 0.25 a significant shift (`PSI_ALERT`: the monitoring flag).
"""

from __future__ import annotations

import numpy as np

BINS = 10
EPSILON = 1e-4
PSI_WATCH = 0.1
PSI_ALERT = 0.25


def bin_edges(expected: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Inner quantile edges of the expected (training) values, duplicates removed."""
    values = np.asarray(expected, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return np.array([])
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))


def shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each bin's share of `values` (the last bin: missing values)."""
    values = np.asarray(values, dtype=float)
    missing = np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[~missing], side="left"), minlength=len(edges) + 1)
    counts = np.append(counts, missing.sum())
    return counts / max(len(values), 1)


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = BINS) -> float:
    """The PSI of `actual` (scoring window) against `expected` (training set)."""
    if len(expected) == 0 or len(actual) == 0:
        raise ValueError("PSI needs values on both sides (training set and scoring window)")
    edges = bin_edges(expected, bins)
    e = np.maximum(shares(expected, edges), EPSILON)
    a = np.maximum(shares(actual, edges), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))
