"""Unit tests for athlete_platform.features.metrics.

Expectations are written by hand (closed forms, literal numbers, or a naive
per-day loop in this file), never by calling the function under test twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from athlete_platform.domain import physiology as phys
from athlete_platform.features import metrics as m

K7 = 1.0 - math.exp(-1.0 / 7.0)
K42 = 1.0 - math.exp(-1.0 / 42.0)


# --------------------------------------------------------------------------
# TRIMP
# --------------------------------------------------------------------------


def test_trimp_male_hand_computed() -> None:
    # 60 min, rest 60, max 190, avg 151 -> x = 91/130 = 0.7
    # 60 * 0.7 * 0.64 * exp(1.344) = 26.88 * 3.83430... = 103.0673
    got = phys.trimp(3600, 151, 60, 190, "M")
    assert got == pytest.approx(103.0673353, abs=1e-6)


def test_trimp_female_hand_computed() -> None:
    # 60 * 0.7 * 0.86 * exp(1.169) = 36.12 * 3.21877... = 116.2621
    got = phys.trimp(3600, 151, 60, 190, "F")
    assert got == pytest.approx(116.2620539, abs=1e-6)


def test_trimp_vectorised_series_and_edge_cases() -> None:
    df = pd.DataFrame(
        {
            "duration_s": [3600.0, 3600.0, 1800.0, 1800.0, 1800.0],
            "avg_hr": [151.0, 151.0, 203.0, 50.0, np.nan],
            "hr_rest": [60.0] * 5,
            "hr_max": [190.0] * 5,
            "sex": ["M", "F", "M", "F", "M"],
        }
    )
    got = phys.trimp(df.duration_s, df.avg_hr, df.hr_rest, df.hr_max, df.sex)
    assert isinstance(got, np.ndarray)
    assert got.shape == (5,)
    assert got[0] == pytest.approx(103.0673353, abs=1e-6)
    assert got[1] == pytest.approx(116.2620539, abs=1e-6)
    # avg above max: x = 143/130 = 1.1, NOT clipped: 30*1.1*0.64*exp(2.112)
    assert got[2] == pytest.approx(30 * 1.1 * 0.64 * math.exp(1.92 * 1.1), rel=1e-12)
    assert got[2] == pytest.approx(174.5516103, abs=1e-6)
    # avg below rest: x < 0 -> exactly 0
    assert got[3] == 0.0
    # missing HR -> NaN
    assert np.isnan(got[4])


def test_trimp_rejects_bad_sex_and_hr_bounds() -> None:
    with pytest.raises(ValueError):
        phys.trimp(3600, 150, 60, 190, "X")
    with pytest.raises(ValueError):
        phys.trimp([3600, 3600], [150, 150], 60, 190, ["M", None])
    with pytest.raises(ValueError):
        phys.trimp(3600, 150, 190, 190, "M")


# --------------------------------------------------------------------------
# Imputation of sessions without HR
# --------------------------------------------------------------------------


def test_impute_median_of_previous_28_days() -> None:
    d = dt.date(2024, 1, 1)
    day = [
        d,  # 0: HR, 60 min, rate 2.0
        d + dt.timedelta(days=1),  # 1: HR, 30 min, rate 3.0
        d + dt.timedelta(days=2),  # 2: no HR, 40 min -> median(2, 3) = 2.5 -> 100
        d + dt.timedelta(days=2),  # 3: HR same day, rate 10 -> not used for row 2
        d + dt.timedelta(days=3),  # 4: no HR, 20 min -> median(2, 3, 10) = 3 -> 60
        d + dt.timedelta(days=29),  # 5: no HR, 10 min: window Jan 2..Jan 29 -> rates 3, 10 -> 6.5 -> 65
        d + dt.timedelta(days=28),  # 6: no HR, 10 min: window Jan 1..Jan 28 -> rates 2, 3, 10 -> 3 -> 30
    ]
    duration_s = [3600, 1800, 2400, 600, 1200, 600, 600]
    trimp = [120.0, 90.0, np.nan, 100.0, np.nan, np.nan, np.nan]
    load, imputed = phys.impute_missing_loads(day, duration_s, trimp)
    np.testing.assert_allclose(load, [120.0, 90.0, 100.0, 100.0, 60.0, 65.0, 30.0], rtol=1e-12)
    assert imputed.tolist() == [False, False, True, False, True, True, True]


def test_impute_without_history_gives_zero() -> None:
    day = np.array(["2024-03-01", "2024-03-01", "2024-04-15"], dtype="datetime64[D]")
    # first session has no HR and no previous HR session -> 0; same-day HR not used
    # last session is 45 days after the only HR session -> 0
    load, imputed = phys.impute_missing_loads(day, [3600, 1800, 3000], [np.nan, 50.0, np.nan])
    np.testing.assert_array_equal(load, [0.0, 50.0, 0.0])
    assert imputed.tolist() == [True, False, True]


def test_impute_ignores_imputed_sessions_in_pool() -> None:
    day = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])
    # day 2 has no HR (imputed to 30 min * 4 = 120); day 3 must use only day-1 rate 4
    load, imputed = phys.impute_missing_loads(
        pd.Series(day), pd.Series([900, 1800, 600]), pd.Series([60.0, np.nan, np.nan])
    )
    np.testing.assert_allclose(load, [60.0, 120.0, 40.0], rtol=1e-12)
    assert imputed.tolist() == [False, True, True]


# --------------------------------------------------------------------------
# Daily series
# --------------------------------------------------------------------------


def test_to_daily_load_sums_and_fills_gaps() -> None:
    days, load = m.to_daily_load(["2024-01-05", "2024-01-01", "2024-01-01"], [7.0, 10.0, 5.0], end_day="2024-01-07")
    assert days[0] == np.datetime64("2024-01-01")
    assert days[-1] == np.datetime64("2024-01-07")
    np.testing.assert_array_equal(load, [15.0, 0.0, 0.0, 0.0, 7.0, 0.0, 0.0])
    with pytest.raises(ValueError):
        m.to_daily_load(["2024-01-01"], [1.0], start_day="2024-01-02")


# --------------------------------------------------------------------------
# ATL / CTL
# --------------------------------------------------------------------------


def test_constant_load_closed_form() -> None:
    L = 80.0
    n = np.arange(1, 201)
    feats, _ = m.compute(np.full(200, L))
    # X(n) after n days of constant load, seeded 0: L * (1 - (1-k)^n)
    np.testing.assert_allclose(feats["atl"], L * (1 - (1 - K7) ** n), rtol=1e-12)
    np.testing.assert_allclose(feats["ctl"], L * (1 - (1 - K42) ** n), rtol=1e-12)
    # converges toward L, ATL faster than CTL
    assert abs(feats["atl"][-1] - L) < 1e-9
    assert 0 < L - feats["ctl"][-1] < 1.0
    assert np.all(np.diff(feats["atl"]) > 0)
    # tsb(d) = ctl(d-1) - atl(d-1) = L((1-ka)^(d) - (1-kc)^(d)) with d days done
    expected_tsb = L * ((1 - K7) ** (n - 1) - (1 - K42) ** (n - 1))
    np.testing.assert_allclose(feats["tsb"], expected_tsb, rtol=1e-12, atol=1e-12)
    assert feats["tsb"][0] == 0.0


def test_single_spike_decays_by_one_minus_k() -> None:
    load = np.zeros(60)
    load[0] = 100.0
    feats, _ = m.compute(load)
    n = np.arange(60)
    np.testing.assert_allclose(feats["atl"], 100 * K7 * (1 - K7) ** n, rtol=1e-12)
    np.testing.assert_allclose(feats["ctl"], 100 * K42 * (1 - K42) ** n, rtol=1e-12)
    ratio = feats["atl"][1:] / feats["atl"][:-1]
    np.testing.assert_allclose(ratio, 1 - K7, rtol=1e-12)


def test_gap_between_sessions() -> None:
    # 50 on day 0, three rest days, 80 on day 4
    feats, _ = m.compute(np.array([50.0, 0.0, 0.0, 0.0, 80.0]))
    for name, k in (("atl", K7), ("ctl", K42)):
        x = feats[name]
        assert x[3] == pytest.approx(50 * k * (1 - k) ** 3, rel=1e-12)
        assert x[4] == pytest.approx(50 * k * (1 - k) ** 4 + 80 * k, rel=1e-12)
    assert feats["tsb"][4] == pytest.approx(50 * K42 * (1 - K42) ** 3 - 50 * K7 * (1 - K7) ** 3, rel=1e-12)


def test_ewma_states_resume_from_initial() -> None:
    # X(0) = 10 + 0.5 * (30 - 10) = 20, X(1) = 20 + 0.5 * (0 - 20) = 10
    np.testing.assert_allclose(m.ewma_states(np.array([30.0, 0.0]), 0.5, 10.0), [20.0, 10.0])
    with pytest.raises(ValueError):
        m.ewma_states(np.array([1.0]), 0.0)


# --------------------------------------------------------------------------
# ACWR
# --------------------------------------------------------------------------


def test_acwr_null_during_first_28_days_then_defined() -> None:
    load = np.arange(1.0, 41.0)  # load(i) = i + 1
    feats, _ = m.compute(load)
    assert np.all(np.isnan(feats["acwr_rolling"][:27]))
    assert np.all(np.isnan(feats["acwr_ewma"][:27]))
    # index 27: acute mean(22..28) = 25, chronic mean(1..28) = 14.5
    assert feats["acwr_rolling"][27] == pytest.approx(25 / 14.5, rel=1e-12)
    # index 39: acute mean(34..40) = 37, chronic mean(13..40) = 26.5
    assert feats["acwr_rolling"][39] == pytest.approx(37 / 26.5, rel=1e-12)
    assert np.all(np.isfinite(feats["acwr_ewma"][27:]))


def test_acwr_constant_load_values() -> None:
    L = 50.0
    feats, _ = m.compute(np.full(30, L))
    assert feats["acwr_rolling"][27] == pytest.approx(1.0, rel=1e-12)
    # E(n) = L (1 - (1-lambda)^n) after n days; at index 27, n = 28
    e7 = 1 - 0.75**28
    e28 = 1 - (27 / 29) ** 28
    assert feats["acwr_ewma"][27] == pytest.approx(e7 / e28, rel=1e-12)
    assert feats["acwr_ewma"][29] == pytest.approx((1 - 0.75**30) / (1 - (27 / 29) ** 30), rel=1e-12)


def test_acwr_null_when_chronic_is_zero() -> None:
    load = np.zeros(40)
    load[0] = 70.0
    feats, _ = m.compute(load)
    # day 27: chronic window still holds day 0 -> acute 0 / chronic 2.5 = 0
    assert feats["acwr_rolling"][27] == 0.0
    # day 28 onward: chronic window all zero -> null
    assert np.all(np.isnan(feats["acwr_rolling"][28:]))
    # EWMA chronic never reaches 0 after a positive load
    assert np.all(np.isfinite(feats["acwr_ewma"][27:]))
    feats0, _ = m.compute(np.zeros(40))
    assert np.all(np.isnan(feats0["acwr_rolling"]))
    assert np.all(np.isnan(feats0["acwr_ewma"]))


# --------------------------------------------------------------------------
# Monotony / strain
# --------------------------------------------------------------------------


def test_monotony_and_strain_hand_computed() -> None:
    feats, _ = m.compute(np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]))
    # mean 40, population variance (900+400+100+0+100+400+900)/7 = 400 -> std 20
    assert feats["monotony_7d"][6] == pytest.approx(2.0, rel=1e-12)
    assert feats["strain_7d"][6] == pytest.approx(280.0 * 2.0, rel=1e-12)
    # day 0: window is six pre-history zeros + 10: mean 10/7, std 10*sqrt(6)/7
    assert feats["monotony_7d"][0] == pytest.approx(1 / math.sqrt(6), rel=1e-12)
    assert feats["strain_7d"][0] == pytest.approx(10 / math.sqrt(6), rel=1e-12)


def test_zero_variance_week_gives_null_monotony() -> None:
    feats, _ = m.compute(np.full(10, 0.1))  # 0.1 is not exact in binary
    assert np.all(np.isfinite(feats["monotony_7d"][:6]))
    assert np.all(np.isnan(feats["monotony_7d"][6:]))
    assert np.all(np.isnan(feats["strain_7d"][6:]))
    feats0, _ = m.compute(np.zeros(8))
    assert np.all(np.isnan(feats0["monotony_7d"]))


# --------------------------------------------------------------------------
# Incremental computation
# --------------------------------------------------------------------------


def _naive_reference(load: list[float]) -> dict[str, list[float]]:
    """Straightforward per-day implementation of the conventions (test oracle)."""
    nan = float("nan")
    a = c = e7 = e28 = 0.0
    out: dict[str, list[float]] = {name: [] for name in m.FEATURE_NAMES}
    for d, value in enumerate(load):
        out["tsb"].append(c - a)
        a = a + K7 * (value - a)
        c = c + K42 * (value - c)
        e7 = 0.25 * value + 0.75 * e7
        e28 = (2 / 29) * value + (27 / 29) * e28
        hist = [load[i] if i >= 0 else 0.0 for i in range(d - 27, d + 1)]
        week = hist[-7:]
        chronic = sum(hist) / 28
        acute = sum(week) / 7
        ok = d >= 27
        out["atl"].append(a)
        out["ctl"].append(c)
        out["acwr_rolling"].append(acute / chronic if ok and chronic > 0 else nan)
        out["acwr_ewma"].append(e7 / e28 if ok and e28 > 0 else nan)
        std = math.sqrt(sum((w - acute) ** 2 for w in week) / 7)
        mono = acute / std if max(week) != min(week) else nan
        out["monotony_7d"].append(mono)
        out["strain_7d"].append(sum(week) * mono)
    return out


def _random_load(seed: int, n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    load = rng.gamma(2.0, 40.0, size=n)
    load[rng.random(n) < 0.3] = 0.0  # rest days
    load[60:75] = 0.0  # a two-week break
    return load


def test_full_compute_matches_naive_reference() -> None:
    load = _random_load(7)
    feats, state = m.compute(load)
    ref = _naive_reference(load.tolist())
    for name in m.FEATURE_NAMES:
        np.testing.assert_allclose(feats[name], ref[name], rtol=1e-10, atol=1e-12, err_msg=name)
    assert state.days_processed == 200
    assert state.recent_loads == tuple(load[-27:].tolist())
    assert state.atl == pytest.approx(ref["atl"][-1], rel=1e-12)


@pytest.mark.parametrize("split", [1, 6, 7, 26, 27, 28, 29, 100, 199])
def test_incremental_equals_full_recompute(split: int) -> None:
    load = _random_load(11)
    full, full_state = m.compute(load)
    first, mid_state = m.compute(load[:split])
    second, end_state = m.compute(load[split:], mid_state)
    assert mid_state.days_processed == split
    for name in m.FEATURE_NAMES:
        joined = np.concatenate([first[name], second[name]])
        np.testing.assert_array_equal(joined, full[name], err_msg=name)
    assert end_state == full_state


def test_incremental_many_chunks_and_empty_chunk() -> None:
    load = _random_load(3)
    full, full_state = m.compute(load)
    state = m.LoadState.initial()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in m.FEATURE_NAMES}
    for lo, hi in [(0, 3), (3, 3), (3, 30), (30, 31), (31, 120), (120, 200)]:
        feats, state = m.compute(load[lo:hi], state)
        for name in m.FEATURE_NAMES:
            parts[name].append(feats[name])
    for name in m.FEATURE_NAMES:
        np.testing.assert_array_equal(np.concatenate(parts[name]), full[name], err_msg=name)
    assert state == full_state


def test_load_state_validation_and_immutability() -> None:
    s = m.LoadState.initial()
    assert s.recent_loads == (0.0,) * 27 and s.days_processed == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.atl = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        m.LoadState(recent_loads=(0.0,) * 26)
    with pytest.raises(ValueError):
        m.LoadState(days_processed=-1)
    with pytest.raises(ValueError):
        m.compute(np.array([1.0, np.nan]))


# --------------------------------------------------------------------------
# Race performance
# --------------------------------------------------------------------------


def _vdot_by_hand(distance_m: float, time_s: float) -> float:
    t = time_s / 60
    v = distance_m / t
    vo2 = -4.60 + 0.182258 * v + 0.000104 * v * v
    pct = 0.8 + 0.1894393 * math.exp(-0.012778 * t) + 0.2989558 * math.exp(-0.1932605 * t)
    return vo2 / pct


def test_vdot_5k_in_20_minutes() -> None:
    # v = 250 m/min: VO2 = -4.6 + 45.5645 + 6.5 = 47.4645
    # %max(20) = 0.8 + 0.1894393 e^-0.25556 + 0.2989558 e^-3.86521 = 0.952983
    got = phys.vdot(5000, 1200)
    assert got == pytest.approx(47.4645 / 0.9529831, abs=1e-4)
    assert got == pytest.approx(49.8, abs=0.1)
    assert got == pytest.approx(_vdot_by_hand(5000, 1200), rel=1e-12)


def test_vdot_vectorised() -> None:
    got = phys.vdot(np.array([5000.0, 10000.0, 42195.0]), np.array([1200.0, 2400.0, 10800.0]))
    expected = [_vdot_by_hand(5000, 1200), _vdot_by_hand(10000, 2400), _vdot_by_hand(42195, 10800)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.isnan(phys.vdot(0.0, 1200.0))


def test_daniels_time_round_trips_vdot() -> None:
    dist = np.array([1500.0, 5000.0, 10000.0, 21097.5, 42195.0])
    times = np.array([300.0, 1200.0, 2700.0, 5400.0, 14400.0])
    v = np.array([_vdot_by_hand(d, t) for d, t in zip(dist, times, strict=True)])
    got = phys.daniels_time_s(v, dist)
    np.testing.assert_allclose(got, times, rtol=0, atol=1e-6)
    # VDOT 49.8 over 10 km: the solved time reproduces the target by hand
    t10 = phys.daniels_time_s(49.8, 10000.0)
    assert _vdot_by_hand(10000.0, t10) == pytest.approx(49.8, abs=1e-8)
    assert 2400 < t10 < 2520  # ~41:30
    assert np.isnan(phys.daniels_time_s(-1.0, 5000.0))


def test_riegel_example() -> None:
    # 10 km in 40:00 -> half marathon: 2400 * 2.10975^1.06 = 5295.37 s (~1:28:15)
    assert phys.riegel_time_s(2400.0, 10000.0, 21097.5) == pytest.approx(5295.3674, abs=1e-3)
    # doubling the distance multiplies time by 2^1.06 = 2.0849315
    got = phys.riegel_time_s(np.array([1200.0, 600.0]), 5000.0, 10000.0)
    np.testing.assert_allclose(got, [1200 * 2.0849315, 600 * 2.0849315], rtol=1e-7)
