"""`daniels_time_s` on one value (the serving path) equals the array path (batch) bit for bit.

The scalar path exists for speed (~10 us instead of ~1 ms per request); batch scoring and
training keep the array code, so their results cannot change, and a request must give exactly
its batch row's value.
"""

from __future__ import annotations

import math

import numpy as np

from athlete_platform.domain import physiology


def bits(values) -> np.ndarray:
    return np.asarray(values, np.float64).view(np.int64)


def test_scalar_path_equals_the_array_path_bit_for_bit(monkeypatch):
    rng = np.random.default_rng(20261202)
    count = 4000
    vdot = np.concatenate([rng.uniform(15, 90, count - 6), [30.0, 45.3, 60.0, 85.0, 20.5, 72.25]])
    standard = np.array([800.0, 1500.0, 5000.0, 10000.0, 21097.5, 42195.0, 100000.0])
    distance = rng.choice(standard, count) * rng.choice([1.0, 1.0, 1.0001, 0.37, 2.9], count)
    exact_checks = []
    exact = physiology.daniels_vdot

    def counting(distance_m, time_s, exp=np.exp):
        if exp is np.exp:
            exact_checks.append(time_s)
        return exact(distance_m, time_s, exp)

    monkeypatch.setattr(physiology, "daniels_vdot", counting)
    array = physiology.daniels_time_s(vdot, distance)
    exact_checks.clear()
    scalar = [physiology.daniels_time_s(v, d) for v, d in zip(vdot.tolist(), distance.tolist(), strict=True)]
    assert all(isinstance(value, float) for value in scalar)
    assert np.array_equal(bits(scalar), bits(array))
    # The comparisons near the root went through numpy's exp (libm's differs in the last bit).
    assert exact_checks


def test_inputs_outside_the_scalar_range_go_through_the_array_code():
    cases = [(math.nan, 5000.0), (45.0, math.nan), (0.0, 5000.0), (-3.0, 5000.0), (45.0, 0.0), (45.0, 1e-300)]
    cases += [(45.0, 1e12), (1e300, 5000.0), (math.inf, 5000.0), (5e-4, 5000.0)]
    for vdot, distance in cases:
        one = physiology.daniels_time_s(vdot, distance)
        many = physiology.daniels_time_s(np.array([vdot, 45.0]), np.array([distance, 5000.0]))[0]
        assert bits(one) == bits(many), (vdot, distance)
