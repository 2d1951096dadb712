"""Physiology of the simulated athletes: Daniels-Gilbert VDOT, Banister TRIMP, the latent
fitness (CTL-driven VDOT) with race results, and session speeds from that fitness."""

# The generator keeps its own copy of the Daniels VDOT and Banister TRIMP formulas (here, and
# nowhere else in this package) so its ground truth is independent of the pipeline's.

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeAlias

import numpy as np
from numpy.typing import ArrayLike

from athlete_platform.ingestion.sample_data.config import (
    CTL_K,
    LATENT_MAX_SHIFT,
    LATENT_REF_FLOOR,
    LATENT_RELATIVE_GAIN,
    RACE_DISTANCES_M,
    VDOT_RANGE,
)
from athlete_platform.ingestion.sample_data.profile import AthleteProfile
from athlete_platform.ingestion.sample_data.training import Sessions, TrainingCalendar

FloatOrArray: TypeAlias = float | np.ndarray

# Banister TRIMP constants by sex: (a, b)
TRIMP_A_B: dict[str, tuple[float, float]] = {"M": (0.64, 1.92), "F": (0.86, 1.67)}

# Daniels-Gilbert oxygen cost of running: VO2 = C0 + C1 * v + C2 * v^2 (v in m/min)
_VO2_C0, _VO2_C1, _VO2_C2 = -4.60, 0.182258, 0.000104

# fraction of VDOT (%VO2max) held on average during a run, by session kind
_PCT_LO = np.array([0.62, 0.80, 0.78, 0.64, 0.0])
_PCT_HI = np.array([0.70, 0.86, 0.86, 0.72, 0.0])
# ride speed factor by session kind
_RIDE_BOOST = np.array([1.0, 1.06, 1.03, 0.97, 1.0])
_RIDE_MAX_SPEED_MPS = 11.0
_SPEED_NOISE_SIGMA = 0.03


def _vo2_ml_kg_min(speed_m_per_min: FloatOrArray) -> FloatOrArray:
    """Oxygen cost (ml/kg/min) of running at a speed (m/min)."""
    return _VO2_C0 + _VO2_C1 * speed_m_per_min + _VO2_C2 * speed_m_per_min * speed_m_per_min


def _run_speed_m_per_min(vo2_ml_kg_min: np.ndarray) -> np.ndarray:
    """Running speed (m/min) whose oxygen cost is `vo2_ml_kg_min` (inverse of `_vo2_ml_kg_min`)."""
    return (-_VO2_C1 + np.sqrt(_VO2_C1**2 + 4 * _VO2_C2 * (vo2_ml_kg_min - _VO2_C0))) / (2 * _VO2_C2)


def _vdot(distance_m: FloatOrArray, time_min: FloatOrArray, exp: Callable = np.exp) -> FloatOrArray:
    """Daniels-Gilbert VDOT: oxygen cost of the average speed over the %VO2max sustainable
    for `time_min` minutes. `exp` is np.exp for arrays, math.exp for plain floats (the two
    may differ in the last bit, and the generated files depend on which one is used)."""
    fraction_of_vo2max = 0.8 + 0.1894393 * exp(-0.012778 * time_min) + 0.2989558 * exp(-0.1932605 * time_min)
    return _vo2_ml_kg_min(distance_m / time_min) / fraction_of_vo2max


def daniels_vdot(distance_m: ArrayLike, time_s: ArrayLike) -> FloatOrArray:
    """Daniels-Gilbert VDOT of a performance (scalars or numpy arrays)."""
    out = _vdot(np.asarray(distance_m, dtype=float), np.asarray(time_s, dtype=float) / 60.0)
    return float(out) if out.ndim == 0 else out


def _daniels_time_s_scalar(vdot: float, distance_m: float) -> float:
    """`daniels_time_s` for one plain float (math.exp, no numpy), by bisection."""
    lo_min, hi_min = distance_m / 1000.0, distance_m / 40.0  # VDOT(lo) > 200, VDOT(hi) < 5
    for _ in range(64):
        t_min = 0.5 * (lo_min + hi_min)
        if _vdot(distance_m, t_min, math.exp) > vdot:
            lo_min = t_min
        else:
            hi_min = t_min
    return 30.0 * (lo_min + hi_min)


def daniels_time_s(vdot: ArrayLike, distance_m: ArrayLike) -> FloatOrArray:
    """Race time (seconds) at which the Daniels-Gilbert VDOT equals `vdot` (inverse of
    `daniels_vdot`; scalars or numpy arrays, solved by bisection)."""
    v = np.asarray(vdot, dtype=float)
    d = np.asarray(distance_m, dtype=float)
    if not (np.all(np.isfinite(v)) and np.all((v > 5) & (v < 200))):
        raise ValueError("vdot must be finite and between 5 and 200")
    if not (np.all(np.isfinite(d)) and np.all(d > 0)):
        raise ValueError("distance_m must be finite and positive")
    if v.ndim == 0 and d.ndim == 0:
        return _daniels_time_s_scalar(float(v), float(d))
    v, d = np.broadcast_arrays(v, d)
    lo_min, hi_min = d / 1000.0, d / 40.0
    for _ in range(64):
        t_min = 0.5 * (lo_min + hi_min)
        above = _vdot(d, t_min) > v
        lo_min = np.where(above, t_min, lo_min)
        hi_min = np.where(above, hi_min, t_min)
    return 30.0 * (lo_min + hi_min)


def _hrr_fraction(avg_hr_bpm: FloatOrArray, hr_rest_bpm: int, hr_max_bpm: int) -> FloatOrArray:
    """Fraction of the heart-rate reserve: (avg_hr - hr_rest) / (hr_max - hr_rest)."""
    return (avg_hr_bpm - hr_rest_bpm) / (hr_max_bpm - hr_rest_bpm)


def _trimp(duration_min: FloatOrArray, hrr_fraction: FloatOrArray, sex: str, exp: Callable = np.exp) -> FloatOrArray:
    """Banister TRIMP: minutes * x * a * exp(b * x), x the heart-rate-reserve fraction
    (`exp` as in `_vdot`)."""
    a, b = TRIMP_A_B[sex]
    return duration_min * hrr_fraction * a * exp(b * hrr_fraction)


def banister_trimp(duration_s: ArrayLike, avg_hr: ArrayLike, hr_rest: float, hr_max: float, sex: str) -> FloatOrArray:
    """Banister TRIMP: minutes * x * a * exp(b * x), x = (avg_hr - hr_rest)/(hr_max - hr_rest);
    male a=0.64 b=1.92, female a=0.86 b=1.67. `sex` is 'M' or 'F' (scalar)."""
    x = _hrr_fraction(np.asarray(avg_hr, dtype=float), hr_rest, hr_max)
    out = _trimp(np.asarray(duration_s, dtype=float) / 60.0, x, sex)
    return float(out) if out.ndim == 0 else out


def session_trimp(profile: AthleteProfile, sessions: Sessions, duration_s: np.ndarray) -> np.ndarray:
    """Banister TRIMP of every session (races with their final time), for what reads the load
    after the simulation (the notes); the simulation itself keeps its own sums."""
    x = _hrr_fraction(sessions.avg_hr_bpm, profile.hr_rest_bpm, profile.hr_max_bpm)
    return _trimp(duration_s / 60.0, x, profile.sex)


def expected_mape_floor(sigma: float, n_intervals: int = 20000) -> float:
    """E|exp(eps) - 1| for eps ~ N(0, sigma), by Simpson's rule on [-12 sigma, 12 sigma]
    (the kink at 0 is a panel boundary). This is the best MAPE any race-time predictor can
    reach when it knows the latent VDOT exactly."""
    if sigma < 0:
        raise ValueError("sigma must be >= 0")
    if sigma == 0:
        return 0.0
    n = n_intervals + (n_intervals % 4)  # even count on each side of 0
    eps = np.linspace(-12.0 * sigma, 12.0 * sigma, n + 1)
    f = np.abs(np.expm1(eps)) * np.exp(-0.5 * (eps / sigma) ** 2) / (sigma * math.sqrt(2.0 * math.pi))
    h = eps[1] - eps[0]
    return float(h / 3.0 * (f[0] + f[-1] + 4.0 * f[1:-1:2].sum() + 2.0 * f[2:-1:2].sum()))


def simulate_latent_fitness(
    profile: AthleteProfile, calendar: TrainingCalendar, sessions: Sessions, race_noise_sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """The athlete's latent VDOT per day (from the first day on) and the session durations (s)
    with the race results filled in.

    The daily load is the Banister TRIMP; CTL is its EWMA (k = CTL_K), starting at the
    habitual load ``ref`` (the mean daily TRIMP). The VDOT of day d is
    ``base_vdot + gain * (CTL(d-1) - ref)``, ``gain = LATENT_RELATIVE_GAIN / max(ref, LATENT_REF_FLOOR)``,
    clamped to ``base_vdot +- LATENT_MAX_SHIFT`` and VDOT_RANGE. A race finishes in the Daniels
    time at the VDOT of its day times ``exp(race_noise_sigma * z)``, and its TRIMP counts from then on.
    """
    sex, hr_rest_bpm, hr_max_bpm = profile.sex, profile.hr_rest_bpm, profile.hr_max_bpm
    duration_s = sessions.duration_s.copy()
    race_index = sessions.race_index
    hrr_fraction = _hrr_fraction(sessions.avg_hr_bpm, hr_rest_bpm, hr_max_bpm)
    trimp = _trimp(duration_s / 60.0, hrr_fraction, sex)
    trimp[race_index] = 0.0  # races are added when their time is known
    load_per_day = np.bincount(sessions.day_rel, weights=trimp, minlength=calendar.n_days)
    ref = float(load_per_day.mean())
    gain = LATENT_RELATIVE_GAIN / max(ref, LATENT_REF_FLOOR)
    vdot_lo = max(VDOT_RANGE[0], profile.base_vdot - LATENT_MAX_SHIFT)
    vdot_hi = min(VDOT_RANGE[1], profile.base_vdot + LATENT_MAX_SHIFT)
    sigma = float(race_noise_sigma)
    load_l = load_per_day.tolist()
    vdot_l = [0.0] * calendar.n_days
    race_at = {d: p for p, d in enumerate(calendar.race_days_rel)}
    ctl = ref
    for j in range(calendar.n_days):
        v = min(vdot_hi, max(vdot_lo, profile.base_vdot + gain * (ctl - ref)))
        vdot_l[j] = v
        day_load = load_l[j]
        if j in race_at:
            p = race_at[j]
            s = int(race_index[p])
            distance_m = RACE_DISTANCES_M[calendar.race_distance_idx[p]]
            race_time_s = _daniels_time_s_scalar(v, distance_m) * math.exp(sigma * calendar.race_z[p])
            duration_s[s] = int(round(race_time_s))
            x = _hrr_fraction(int(sessions.avg_hr_bpm[s]), hr_rest_bpm, hr_max_bpm)
            day_load += _trimp(duration_s[s] / 60.0, x, sex, math.exp)
        ctl += CTL_K * (day_load - ctl)
    return np.array(vdot_l), duration_s


def session_speed_mps(profile: AthleteProfile, sessions: Sessions, vdot_per_day: np.ndarray) -> np.ndarray:
    """Average speed (m/s) of each session from the latent VDOT of its day: runs at a
    kind-dependent %VO2max through the Daniels-Gilbert cost equation, rides and swims scaled
    from the athlete's habitual speed, all with a little noise."""
    kind, sport = sessions.kind, sessions.sport
    vd = vdot_per_day[sessions.day_rel]
    fraction = _PCT_LO[kind] + (_PCT_HI[kind] - _PCT_LO[kind]) * sessions.u_pct
    v_run = _run_speed_m_per_min(vd * fraction) / 60.0
    v_ride = np.minimum(profile.ride_kmh / 3.6 * _RIDE_BOOST[kind] * (vd / profile.base_vdot), _RIDE_MAX_SPEED_MPS)
    v_swim = 100.0 / profile.swim_pace_s_per_100m * np.sqrt(vd / profile.base_vdot)
    return np.choose(sport, [v_run, v_ride, v_swim]) * np.exp(_SPEED_NOISE_SIGMA * sessions.z_speed)
