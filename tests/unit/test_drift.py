"""PSI (monitoring/drift.py): zero for the same distribution, the known value for a hand case,
and the alert band for a shifted cohort."""

import math

import numpy as np
import pytest

from athlete_platform.monitoring import drift


def test_same_distribution_is_stable_and_a_shifted_cohort_alerts():
    rng = np.random.default_rng(0)
    training = rng.normal(50, 10, 20000)  # e.g. CTL
    assert drift.psi(training, rng.normal(50, 10, 5000)) < drift.PSI_WATCH
    assert drift.psi(training, rng.normal(53, 10, 5000)) < drift.PSI_ALERT  # a small move: watch at most
    assert drift.psi(training, rng.normal(62, 10, 5000)) > drift.PSI_ALERT  # a fitter cohort arrives


def test_hand_computed_value_with_open_ends_and_missing_values():
    expected = np.array([1.0, 2.0, 3.0, 4.0])  # two bins at the median edge 2.5: 50 % / 50 %, no missing
    actual = np.array([0.0, 10.0, 20.0, np.nan])  # 25 % below, 50 % above (beyond the range), 25 % missing
    edges = drift.bin_edges(expected, bins=2)
    assert edges.tolist() == [2.5]
    assert drift.shares(actual, edges).tolist() == [0.25, 0.5, 0.25]
    e = [0.5, 0.5, drift.EPSILON]
    a = [0.25, 0.5, 0.25]
    want = sum((x - y) * math.log(x / y) for x, y in zip(a, e, strict=True))
    assert drift.psi(expected, actual, bins=2) == pytest.approx(want)


def test_constant_training_values_and_empty_sides():
    assert drift.psi(np.full(100, 3.0), np.full(50, 3.0)) == pytest.approx(0.0)
    assert drift.psi(np.full(100, 3.0), np.full(50, 4.0)) > drift.PSI_ALERT
    with pytest.raises(ValueError, match="values on both sides"):
        drift.psi(np.array([]), np.array([1.0]))
