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
    expected = np.array([1.0, 2.0, 3.0, 4.0, np.nan])  # two bins at the median edge 2.5: 50 % / 50 % of present
    actual = np.array([0.0, 10.0, 20.0, np.nan])  # of present: 1/3 below, 2/3 above (beyond the range)
    edges = drift.bin_edges(expected, bins=2)
    assert edges.tolist() == [2.5]
    assert drift.shares(actual, edges).tolist() == pytest.approx([1 / 3, 2 / 3])
    e, a = [0.5, 0.5], [1 / 3, 2 / 3]
    want = sum((x - y) * math.log(x / y) for x, y in zip(a, e, strict=True))
    assert drift.psi(expected, actual, bins=2) == pytest.approx(want)
    assert drift.missing_rise(expected, actual) == pytest.approx(0.25 - 0.2)


def test_missing_values_count_only_when_they_rise():
    """A feature that becomes more complete is not drift; one that starts arriving empty is."""
    rng = np.random.default_rng(1)
    values = rng.normal(50, 10, 1000)
    sparse = np.where(np.arange(1000) % 5 == 0, np.nan, values)  # 20 % missing at training
    assert drift.psi(sparse, values) < drift.PSI_WATCH and drift.missing_rise(sparse, values) == 0.0
    emptied = np.where(np.arange(1000) % 2 == 0, np.nan, values)
    assert drift.missing_rise(values, emptied) == pytest.approx(0.5)
    assert drift.missing_rise(values, emptied) > drift.MISSING_ALERT
    assert drift.psi(values, np.full(10, np.nan)) == 0.0  # nothing present: missing_rise's to say


def test_constant_training_values_and_empty_sides():
    assert drift.psi(np.full(100, 3.0), np.full(50, 3.0)) == pytest.approx(0.0)
    assert drift.psi(np.full(100, 3.0), np.full(50, 4.0)) > drift.PSI_ALERT
    with pytest.raises(ValueError, match="values on both sides"):
        drift.psi(np.array([]), np.array([1.0]))
