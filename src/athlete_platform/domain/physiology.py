"""Physiology formulas of DESIGN.md section 4: Banister TRIMP, Daniels-Gilbert VDOT, Riegel,
and the aerobic VDOT of training runs (speed at a fraction of the heart-rate reserve).

Vectorised numpy (scalars in, float out). `daniels_vdot` is written once over an `exp`
function so the same formula serves numpy arrays and Spark columns (silver's race VDOT).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from athlete_platform.domain.arrays import as_days, as_float_array, maybe_scalar

#: Banister TRIMP coefficients ``(a, b)`` per sex: ``minutes * x * a * exp(b*x)``.
TRIMP_COEFFICIENTS: Mapping[str, tuple[float, float]] = {
    "M": (0.64, 1.92),
    "F": (0.86, 1.67),
}

#: Look-back (days d-28..d-1) for the TRIMP-per-minute median used to impute.
IMPUTATION_LOOKBACK_DAYS: int = 28

#: Riegel fatigue exponent.
RIEGEL_EXPONENT: float = 1.06


def trimp(
    duration_s: Any,
    avg_hr: Any,
    hr_rest: Any,
    hr_max: Any,
    sex: Any,
) -> np.ndarray | float:
    """Banister TRIMP of one or many sessions (vectorised, broadcasting).

    ``TRIMP = minutes * x * a * exp(b * x)`` with ``minutes = duration_s / 60``
    and heart-rate reserve fraction ``x = (avg_hr - hr_rest) / (hr_max - hr_rest)``;
    ``(a, b) = (0.64, 1.92)`` for ``sex == 'M'`` and ``(0.86, 1.67)`` for ``'F'``.

    Clipping choice: ``x`` is **not** clipped into ``[0, 1]``.  The only
    exception is ``x < 0`` (average HR below resting HR), which gives a load
    of exactly 0.  An ``avg_hr`` above ``hr_max`` (``x > 1``) is used as is.

    Missing values: NaN ``avg_hr`` (or NaN duration / HR bounds) gives NaN.

    Args:
        duration_s: Session duration in seconds.
        avg_hr: Average heart rate of the session (bpm), NaN when unknown.
        hr_rest: Athlete's resting heart rate (bpm).
        hr_max: Athlete's maximum heart rate (bpm); must exceed ``hr_rest``.
        sex: ``'M'`` or ``'F'`` (scalar or array-like).

    Returns:
        A float64 array of the broadcast shape (a ``float`` for all-scalar input).

    Raises:
        ValueError: for a sex value other than ``'M'``/``'F'`` or ``hr_max <= hr_rest``.
    """
    dur = as_float_array(duration_s)
    hr = as_float_array(avg_hr)
    rest = as_float_array(hr_rest)
    hmax = as_float_array(hr_max)
    sex_arr = np.asarray(sex, dtype=object)

    is_m = sex_arr == "M"
    is_f = sex_arr == "F"
    bad = ~(is_m | is_f)
    if np.any(bad):
        raise ValueError(f"sex must be 'M' or 'F', got {sorted(set(map(repr, np.atleast_1d(sex_arr[bad]))))}")
    if np.any(hmax <= rest):
        raise ValueError("hr_max must be greater than hr_rest")

    a = np.where(is_m, TRIMP_COEFFICIENTS["M"][0], TRIMP_COEFFICIENTS["F"][0])
    b = np.where(is_m, TRIMP_COEFFICIENTS["M"][1], TRIMP_COEFFICIENTS["F"][1])
    minutes = dur / 60.0
    x = np.asarray(hr_reserve_fraction(hr, rest, hmax))
    with np.errstate(over="ignore", invalid="ignore"):
        load = minutes * x * a * np.exp(b * x)
    # x < 0 -> 0 load; NaN x stays NaN because NaN < 0 is False.
    result = np.where(x < 0, 0.0, load).astype(np.float64)
    return maybe_scalar(result)


def hr_reserve_fraction(hr: Any, hr_rest: Any, hr_max: Any) -> np.ndarray | float:
    """Fraction of the heart-rate reserve, ``(hr - hr_rest) / (hr_max - hr_rest)`` (Karvonen).

    Vectorised and broadcasting; not clipped (a heart rate above ``hr_max`` gives more than 1,
    below ``hr_rest`` less than 0). NaN where any input is missing or ``hr_max <= hr_rest``
    (no reserve to take a fraction of). TRIMP's ``x`` is this fraction.
    """
    h, rest, hmax = as_float_array(hr), as_float_array(hr_rest), as_float_array(hr_max)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (h - rest) / (hmax - rest)
    return maybe_scalar(np.where(hmax > rest, x, np.nan))


def hr_reserve_fraction_one(hr: float, hr_rest: float, hr_max: float) -> float:
    """`hr_reserve_fraction` of one set of floats, in plain Python (~20x faster, bit for bit: the
    same IEEE subtractions and division; `hr_max > hr_rest` makes the divisor > 0, never 0)."""
    if hr_max > hr_rest:
        return (hr - hr_rest) / (hr_max - hr_rest)
    return math.nan


def impute_missing_loads(
    day: Any,
    duration_s: Any,
    trimp: Any,
    lookback_days: int = IMPUTATION_LOOKBACK_DAYS,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill the load of sessions without heart rate, for one athlete.

    A session is "without HR" when its ``trimp`` is NaN.  Its load becomes
    ``minutes * median(TRIMP per minute)`` over the athlete's sessions *with*
    HR whose start day lies in ``d-lookback_days .. d-1`` (strictly before the
    session's day ``d``; same-day sessions are excluded), or 0 when there is
    no such session.  The median of an even count is the mean of the two
    middle values.  Sessions with HR but a non-positive duration have no
    defined rate and are left out of the median pool; imputed loads never
    feed the pool.

    Args:
        day: Session days (``datetime64``, ``datetime.date``, timestamps or
            ISO strings; timezone-naive local dates).  Any order.
        duration_s: Session durations in seconds.
        trimp: Session TRIMP, NaN when no HR was recorded.
        lookback_days: Size of the look-back window (default 28).

    Returns:
        ``(load, imputed)``: float64 loads and a boolean flag (True where the
        load was imputed), both aligned with the input order.
    """
    days = as_days(day).astype(np.int64)
    dur = as_float_array(duration_s).reshape(-1)
    tr = as_float_array(trimp).reshape(-1)
    if not (days.shape == dur.shape == tr.shape):
        raise ValueError("day, duration_s and trimp must have the same length")
    if lookback_days < 1:
        raise ValueError("lookback_days must be >= 1")

    minutes = dur / 60.0
    missing = np.isnan(tr)
    pool = ~missing & np.isfinite(minutes) & (minutes > 0)
    order = np.argsort(days[pool], kind="stable")
    pool_days = days[pool][order]
    pool_rate = (tr[pool] / minutes[pool])[order]

    query = days[missing]
    lo = np.searchsorted(pool_days, query - lookback_days, side="left")
    hi = np.searchsorted(pool_days, query, side="left")
    counts = hi - lo
    rate = np.zeros(query.shape, dtype=np.float64)
    has = counts > 0
    if np.any(has):
        width = int(counts.max())
        offsets = np.arange(width)
        idx = lo[has, None] + offsets[None, :]
        valid = offsets[None, :] < counts[has, None]
        vals = np.where(valid, pool_rate[np.minimum(idx, pool_rate.size - 1)], np.nan)
        rate[has] = np.nanmedian(vals, axis=1)

    load = tr.copy()
    load[missing] = minutes[missing] * rate
    return load, missing.copy()


def daniels_vdot(distance_m: Any, time_s: Any, exp: Callable[[Any], Any] = np.exp) -> Any:
    """Daniels-Gilbert VDOT, written once for numpy arrays and Spark columns (pass `F.exp`).

    ``v = distance_m / (time_s/60)`` (m/min), ``t = time_s/60`` (min),
    ``VO2 = -4.60 + 0.182258 v + 0.000104 v^2``,
    ``%max = 0.8 + 0.1894393 e^(-0.012778 t) + 0.2989558 e^(-0.1932605 t)``, ``VDOT = VO2 / %max``.
    """
    t_min = time_s / 60.0
    v = distance_m / t_min
    vo2 = -4.60 + 0.182258 * v + 0.000104 * v * v
    pct_max = 0.8 + 0.1894393 * exp(-0.012778 * t_min) + 0.2989558 * exp(-0.1932605 * t_min)
    return vo2 / pct_max


def vdot(distance_m: Any, time_s: Any) -> np.ndarray | float:
    """Daniels-Gilbert VDOT of a race (vectorised numpy); non-positive distance or time gives NaN."""
    d = as_float_array(distance_m)
    t_s = as_float_array(time_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = daniels_vdot(d, t_s)
    result = np.where((d > 0) & (t_s > 0), result, np.nan)
    return maybe_scalar(np.asarray(result, dtype=np.float64))


#: The heart-rate reserve fraction the aerobic VDOT reads the athlete's speed at. %HRR tracks
#: the fraction of VO2 reserve (Swain and Leutholtz, 1997), so a run at 75 % HRR costs about
#: 75 % of VO2max: VDOT = Daniels' oxygen cost of that speed / 0.75.
AEROBIC_HRR_FRACTION: float = 0.75
#: Aerobic VDOTs outside this range are an extrapolated line, not a runner: left undefined.
AEROBIC_VDOT_RANGE: tuple[float, float] = (15.0, 90.0)


def aerobic_vdot(hr_mean: Any, log_speed_mean: Any, log_speed_per_bpm: Any, hr_rest: Any, hr_max: Any) -> Any:
    """VDOT from the training line of ln(speed, m/s) on heart rate (mean point and slope).

    The line gives the speed at ``hr_rest + AEROBIC_HRR_FRACTION * (hr_max - hr_rest)``;
    Daniels' oxygen cost of that speed (m/min), over the fraction, is the VDOT. NaN without a
    slope, with ``hr_max <= hr_rest`` or outside ``AEROBIC_VDOT_RANGE``. Vectorised; the
    one-row twin `aerobic_vdot_one` gives the same bits.
    """
    hr, speed, slope = as_float_array(hr_mean), as_float_array(log_speed_mean), as_float_array(log_speed_per_bpm)
    rest, top = as_float_array(hr_rest), as_float_array(hr_max)
    with np.errstate(invalid="ignore", over="ignore"):
        hr_at = rest + AEROBIC_HRR_FRACTION * (top - rest)
        v = np.exp(speed + slope * (hr_at - hr)) * 60.0
        value = (-4.60 + 0.182258 * v + 0.000104 * v * v) / AEROBIC_HRR_FRACTION
        lo, hi = AEROBIC_VDOT_RANGE
        ok = (top > rest) & (value >= lo) & (value <= hi)
    return maybe_scalar(np.asarray(np.where(ok, value, np.nan), dtype=np.float64))


def aerobic_vdot_one(
    hr_mean: float, log_speed_mean: float, log_speed_per_bpm: float, hr_rest: float, hr_max: float
) -> float:
    """`aerobic_vdot` of one set of floats, bit for bit (the same IEEE operations, numpy's own exp)."""
    if not hr_max > hr_rest:
        return math.nan
    exponent = log_speed_mean + log_speed_per_bpm * (hr_rest + AEROBIC_HRR_FRACTION * (hr_max - hr_rest) - hr_mean)
    if not -700.0 < exponent < 700.0:  # NaN, or near overflow: numpy decides
        return float(aerobic_vdot(hr_mean, log_speed_mean, log_speed_per_bpm, hr_rest, hr_max))
    v = float(np.exp(exponent)) * 60.0
    value = (-4.60 + 0.182258 * v + 0.000104 * v * v) / AEROBIC_HRR_FRACTION
    lo, hi = AEROBIC_VDOT_RANGE
    return value if lo <= value <= hi else math.nan


#: Halvings `daniels_time_s` does at least: what 42 195 m needs to reach its default 1e-7 s.
MIN_BISECTION_STEPS: int = 40

#: Speed (m/min) at which the Daniels VO2 polynomial is 0 (positive root).
_V_ZERO_VO2: float = (-0.182258 + math.sqrt(0.182258**2 + 4 * 0.000104 * 4.60)) / (2 * 0.000104)


def daniels_time_s(vdot_value: Any, distance_m: Any, tol_s: float = 1e-7) -> np.ndarray | float:
    """Race time (s) at which :func:`vdot` of ``distance_m`` equals ``vdot_value``.

    For a fixed distance VDOT strictly decreases with time wherever the VO2
    polynomial is positive (its log-elasticity w.r.t. time is below -1 while
    that of ``%max`` is above -0.25), so the root is unique and is found by
    vectorised bisection on ``(0, distance / v0]`` where ``v0`` is the speed of
    zero VO2.  Converges to ``tol_s`` (default 1e-7 s), each element on its own and after
    at least ``MIN_BISECTION_STEPS`` halvings, so an element's value is the same whatever
    else is in the call.  Non-positive or NaN inputs give NaN.
    """
    target = as_float_array(vdot_value)
    d = as_float_array(distance_m)
    if target.ndim == 0 and d.ndim == 0 and _scalar_path_applies(float(target), float(d), tol_s):
        return _daniels_time_scalar_s(float(target), float(d), tol_s)
    target, d = np.broadcast_arrays(target, d)
    ok = np.isfinite(target) & np.isfinite(d) & (target > 0) & (d > 0)
    tgt = np.where(ok, target, 1.0)
    dist = np.where(ok, d, 1.0)

    hi = dist / _V_ZERO_VO2 * 60.0  # VDOT(hi) == 0 < target
    lo = hi * 1e-9  # VDOT(lo) is astronomically large > target
    done = np.zeros(hi.shape, dtype=bool)
    for step in range(1, 201):
        mid = 0.5 * (lo + hi)
        too_fast = np.asarray(vdot(dist, mid)) > tgt  # still above target -> go slower
        lo = np.where(done | ~too_fast, lo, mid)
        hi = np.where(done | too_fast, hi, mid)
        # Each element stops on its own (so its value does not depend on the other elements of
        # the call: one request equals its row in a batch), after at least the halvings a
        # marathon needs, so that every call with a marathon in it gives the bits it always gave.
        done |= (hi - lo <= tol_s) & (step >= MIN_BISECTION_STEPS)
        if np.all(done):
            break
    result = np.where(ok, 0.5 * (lo + hi), np.nan)
    return maybe_scalar(np.asarray(result, dtype=np.float64))


#: The scalar path's plain-float VDOT differs from numpy's by a few ulps at most (only `exp`
#: differs: numpy's SIMD exp and libm's disagree in the last bit on ~5 % of arguments); within
#: this relative distance of the target the comparison is redone with numpy's own formula.
_SCALAR_EXACT_MARGIN: float = 1e-12


def _scalar_path_applies(target: float, distance_m: float, tol_s: float) -> bool:
    """Plain inputs only (a race distance, a human VDOT): elsewhere (NaN, 0, subnormal or huge
    values) Python floats would raise where numpy gives inf/NaN, so the array code decides."""
    return 1e-3 <= distance_m <= 1e7 and 1e-3 <= target <= 1e4 and tol_s > 0


def _daniels_time_scalar_s(target: float, distance_m: float, tol_s: float) -> float:
    """`daniels_time_s` of one value, bit for bit, in plain Python floats (~50x faster).

    A serving request computes one VDOT projection; the array code spends ~1 ms on numpy's
    per-call overhead over ~45 halvings. Here each halving is float arithmetic, which is the
    same IEEE double arithmetic numpy does element by element, so `lo`, `hi` and `mid` take the
    same values. Only the comparison `vdot(mid) > target` could differ, through `exp`: it is
    taken from `math.exp` when far from the target and from numpy's `exp` near it.
    `tests/unit/test_on_demand.py` compares both paths bit for bit on many values.
    """
    hi = distance_m / _V_ZERO_VO2 * 60.0
    lo = hi * 1e-9
    for step in range(1, 201):
        mid = 0.5 * (lo + hi)
        if _vdot_above(distance_m, mid, target):
            lo = mid  # still above target -> go slower
        else:
            hi = mid
        if hi - lo <= tol_s and step >= MIN_BISECTION_STEPS:
            break
    return 0.5 * (lo + hi)


def _vdot_above(distance_m: float, time_s: float, target: float) -> bool:
    """`vdot(distance_m, time_s) > target` exactly as the array code decides it."""
    fast = daniels_vdot(distance_m, time_s, math.exp)
    if abs(fast - target) > _SCALAR_EXACT_MARGIN * target:
        return fast > target
    return bool(daniels_vdot(np.float64(distance_m), np.float64(time_s), np.exp) > target)


def riegel_time_s(t1_s: Any, d1_m: Any, d2_m: Any) -> np.ndarray | float:
    """Riegel prediction ``T2 = T1 * (D2 / D1) ** 1.06`` (vectorised; NaN for non-positive inputs)."""
    t1 = as_float_array(t1_s)
    d1 = as_float_array(d1_m)
    d2 = as_float_array(d2_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        # The `power` ufunc, not `**`: on 0-d inputs the quotient is a numpy scalar whose `**` is
        # libm's pow, one ulp off the ufunc a column goes through for some ratios (1500 m -> 10 km).
        result = t1 * np.power(d2 / d1, RIEGEL_EXPONENT)
    result = np.where((t1 > 0) & (d1 > 0) & (d2 > 0), result, np.nan)
    return maybe_scalar(np.asarray(result, dtype=np.float64))


#: Distance ratios `riegel_time_one_s` takes in plain floats: far from overflow and underflow.
_PLAIN_RATIO = (1e-100, 1e100)


def riegel_time_one_s(t1_s: float, d1_m: float, d2_m: float) -> float:
    """`riegel_time_s` of one set of floats, bit for bit, ~10x faster.

    The power is numpy's own `power` ufunc on one float (Python's `**`, `math.pow` and numpy's
    scalar `**` call libm's pow, which differs from the ufunc in the last bit on ~5 % of
    arguments: `riegel_time_s` on 0-d inputs differs from its column result on ~1.6 % of
    standard-distance pairs for that reason); the division and product are the same IEEE
    operations in Python. Values far outside a human range go through the array code (Python
    floats raise where numpy gives inf).
    """
    if not (t1_s > 0 and d1_m > 0 and d2_m > 0):
        return math.nan
    ratio = d2_m / d1_m
    if not (_PLAIN_RATIO[0] < ratio < _PLAIN_RATIO[1] and t1_s < _PLAIN_RATIO[1]):
        # As a column of one, not as 0-d arrays: numpy turns a 0-d quotient into a scalar whose
        # `**` is libm's pow, not the `power` ufunc a column goes through.
        return float(riegel_time_s(np.array([t1_s]), np.array([d1_m]), np.array([d2_m]))[0])
    return t1_s * float(np.power(ratio, RIEGEL_EXPONENT))
