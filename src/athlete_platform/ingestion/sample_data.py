"""Deterministic generator of app-export-like landing files.

The whole platform can run without outside data: `generate(config, landing_dir)` writes
what a fitness app's daily export would drop into the landing zone, with realistic dirt,
plus the ground truth a model can be scored against.

Layout written under ``landing_dir``::

    app_export/YYYY-MM-DD.jsonl      one UTF-8 JSON-lines file per calendar day
    _generator/manifest.json         seed, config, noise floor, dirt counts and ids
    _generator/latent_fitness.csv    athlete_id,date,vdot_latent (ground truth)

Every non-malformed line is one JSON object with ``record_type`` "athlete" or "session".
The same config always produces byte-identical files, and rewriting is idempotent.

Simulation, per athlete (vectorised with numpy, one random stream per athlete, so an
athlete's data does not depend on how many athletes are generated):

* a profile (sex, age, resting/max HR, LTHR, weight, base VDOT, habits, timezone);
* a training calendar (sessions/week, long-run day, seasonal volume, recovery weeks,
  an occasional break) and per-session sport, intensity, HR, duration and RPE;
* the true daily Banister TRIMP load and its CTL (EWMA, k = 1 - exp(-1/42));
  the latent VDOT of day d is ``base_vdot + gain * (CTL(d-1) - ref)`` where ``ref`` is the
  athlete's habitual load (the mean daily TRIMP) and ``gain = 8 / max(ref, 20)``,
  clamped to ``base_vdot +- 6`` and to [30, 85];
* paces from the latent VDOT through the Daniels-Gilbert equations; races every ~4-8
  weeks (never in the athlete's first 30 days) finish in the Daniels time at the latent
  VDOT of the race day times ``exp(eps)``, ``eps ~ N(0, race_noise_sigma)``.

Dirt (drawn from separate random streams, so changing a dirt rate never changes the
underlying training or the latent truth) is listed in the manifest and the summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import numbers
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from athlete_platform.errors import ConfigError

__all__ = [
    "CTL_K",
    "GenerationSummary",
    "GeneratorConfig",
    "HR_VALID_RANGE",
    "INVALID_RULES",
    "MAX_RUN_SPEED_MPS",
    "RACE_DISTANCES_M",
    "SPORTS",
    "banister_trimp",
    "daniels_time_s",
    "daniels_vdot",
    "expected_mape_floor",
    "generate",
    "utc_offset_minutes",
]

GENERATOR_VERSION = 1

SPORTS: tuple[str, ...] = ("run", "ride", "swim")
RACE_DISTANCES_M: tuple[float, ...] = (5000.0, 10000.0, 21097.5, 42195.0)
RACE_LABELS = ("5K", "10K", "half marathon", "marathon")

INVALID_RULES: tuple[str, ...] = (
    "duration_positive",
    "distance_non_negative",
    "hr_range",
    "speed_plausible",
    "start_not_in_future",
)
HR_VALID_RANGE = (25, 250)
MAX_RUN_SPEED_MPS = 12.0

CTL_TIME_CONSTANT_DAYS = 42.0
CTL_K = 1.0 - math.exp(-1.0 / CTL_TIME_CONSTANT_DAYS)
LATENT_RELATIVE_GAIN = 8.0  # VDOT points for a CTL one full habitual load above the reference
LATENT_REF_FLOOR = 20.0  # TRIMP/day; keeps the gain sane for very low-volume athletes
LATENT_MAX_SHIFT = 6.0  # VDOT points either side of base_vdot
VDOT_RANGE = (30.0, 85.0)
RACE_MIN_DAYS_AFTER_FIRST_DAY = 30
FUTURE_MIN_DAYS, FUTURE_MAX_DAYS = 3650, 7300  # impossible start times land 10-20 years after as_of

# Banister TRIMP constants by sex: (a, b)
_TRIMP_AB = {"M": (0.64, 1.92), "F": (0.86, 1.67)}

# name, standard UTC offset (minutes), DST rule, selection weight
_TIMEZONES: tuple[tuple[str, int, str | None, float], ...] = (
    ("Europe/London", 0, "eu", 0.12),
    ("Europe/Berlin", 60, "eu", 0.18),
    ("Europe/Helsinki", 120, "eu", 0.06),
    ("America/New_York", -300, "us", 0.14),
    ("America/Chicago", -360, "us", 0.08),
    ("America/Denver", -420, "us", 0.05),
    ("America/Los_Angeles", -480, "us", 0.10),
    ("America/Sao_Paulo", -180, None, 0.06),
    ("Asia/Kolkata", 330, None, 0.05),
    ("Asia/Tokyo", 540, None, 0.06),
    ("Africa/Nairobi", 180, None, 0.04),
    ("Australia/Brisbane", 600, None, 0.06),
)
_TZ_NAMES = tuple(t[0] for t in _TIMEZONES)
_TZ_WEIGHTS = np.array([t[3] for t in _TIMEZONES]) / sum(t[3] for t in _TIMEZONES)

_LONG_DAY_P = np.array([0.04, 0.04, 0.04, 0.04, 0.04, 0.36, 0.44])  # Monday=0 .. Sunday=6

# session kinds
_EASY, _TEMPO, _INTERVALS, _LONG, _RACE = range(5)
# heart-rate-reserve fraction by kind (run); ride/swim are a little lower
_X_LO = np.array([0.50, 0.72, 0.76, 0.60, 0.0])
_X_HI = np.array([0.66, 0.83, 0.87, 0.72, 0.0])
_SPORT_X_ADJ = np.array([0.0, 0.03, 0.07])
_RACE_X_LO = np.array([0.92, 0.90, 0.86, 0.80])
_RACE_X_HI = np.array([0.97, 0.95, 0.91, 0.87])
# max HR above average HR, by kind
_SPAN_LO = np.array([5.0, 8.0, 12.0, 8.0, 6.0])
_SPAN_HI = np.array([15.0, 18.0, 28.0, 20.0, 16.0])
# duration in minutes by [sport, kind] (long only for runs)
_DUR_LO = np.array([[30, 40, 45, 75, 0], [45, 60, 50, 90, 0], [30, 35, 40, 45, 0]], float)
_DUR_HI = np.array([[60, 65, 75, 150, 0], [120, 120, 90, 180, 0], [60, 60, 70, 75, 0]], float)
# easy / tempo / intervals split, by sport (cumulative thresholds)
_KIND_T1 = np.array([0.68, 0.70, 0.60])
_KIND_T2 = np.array([0.84, 0.88, 0.82])
# fraction of VDOT (%VO2max) held on average during a run, by kind
_PCT_LO = np.array([0.62, 0.80, 0.78, 0.64, 0.0])
_PCT_HI = np.array([0.70, 0.86, 0.86, 0.72, 0.0])

_NOTES = {
    ("run", _EASY): (
        "easy run",
        "recovery jog",
        "easy run with strides",
        "relaxed shakeout",
        "easy run, legs heavy",
        "Lockerer Dauerlauf",
    ),
    ("run", _TEMPO): ("tempo run", "threshold 3x10min", "steady tempo", "progression run"),
    ("run", _INTERVALS): (
        "intervals 6x800m",
        "track session 10x400m",
        "hill repeats",
        "VO2 intervals 5x1000m",
        "fartlek",
    ),
    ("run", _LONG): ("long run", "long run, fuelled well", "Sunday long run", "long run on trails"),
    ("ride", _EASY): ("easy spin", "endurance ride", "commute ride", "indoor trainer, easy"),
    ("ride", _TEMPO): ("sweet spot 3x12min", "group ride", "tempo ride"),
    ("ride", _INTERVALS): ("VO2 intervals on the bike", "hill climbs", "crit-style surges"),
    ("ride", _LONG): ("long ride",),
    ("swim", _EASY): ("easy swim", "technique drills", "open water swim", "recovery swim"),
    ("swim", _TEMPO): ("CSS swim 8x200m", "steady swim"),
    ("swim", _INTERVALS): ("swim intervals 10x100m", "sprint set 16x50m"),
    ("swim", _LONG): ("long swim",),
}
_NOTE_SUFFIXES = (
    "",
    "",
    "",
    ", felt great",
    ", tired",
    ", legs heavy",
    ", windy",
    ", hot and humid",
    ", très bien",
    ", müde",
    " 💪",
)
_EDIT_SUFFIXES = (" (edited)", " - updated notes", " (corrected)")

_GARBAGE_LINES = (
    "<html><body><h1>502 Bad Gateway</h1></body></html>",
    "ERROR: export interrupted, retrying",
    "}{",
    "athlete_id,session_id,duration_s",
    "{{{corrupted",
    "\ufffd\ufffd\ufffd binary chunk \ufffd",
    "record_type=session;session_id=?",
)

_DAY_FILE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}\.jsonl$")
_EPOCH_DATE = date(1970, 1, 1)


# --------------------------------------------------------------------------- config


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(
            f"GeneratorConfig.{name} must be an integer, got {value!r} ({type(value).__name__}); "
            f"pass a whole number between {lo} and {hi}."
        )
    if not lo <= int(value) <= hi:
        raise ConfigError(
            f"GeneratorConfig.{name} must be between {lo} and {hi}, got {value}; choose a value in that range."
        )


def _check_float(name: str, value: object, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(
            f"GeneratorConfig.{name} must be a finite number, got {value!r}; pass a value between {lo} and {hi}."
        )
    if not lo <= float(value) <= hi:
        raise ConfigError(
            f"GeneratorConfig.{name} must be between {lo} and {hi}, got {value}; choose a value in that range."
        )


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of the generator. Rates are probabilities per session (per line for malformed).

    * ``duplicate_rate``: a session gets a second copy; half are exact (same line again),
      half are updated (same session_id, changed notes/rpe, later updated_at).
    * ``late_rate``: the session is written into the file of a day 1-3 days later.
    * ``missing_hr_rate``: avg_hr and max_hr are null (still a valid session).
    * ``invalid_rate``: a non-race session carries one impossible value (see INVALID_RULES).
    * ``malformed_rate``: per written record line, chance of an extra malformed line in
      the same file (a truncated copy of a record, or non-JSON garbage).
    """

    seed: int = 42
    n_athletes: int = 20
    n_days: int = 365
    start_date: date = date(2024, 1, 1)
    race_noise_sigma: float = 0.03
    duplicate_rate: float = 0.02
    late_rate: float = 0.02
    missing_hr_rate: float = 0.05
    invalid_rate: float = 0.005
    malformed_rate: float = 0.002

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("n_athletes", self.n_athletes, 1, 9999)
        _check_int("n_days", self.n_days, 1, 3660)
        if isinstance(self.start_date, datetime) or not isinstance(self.start_date, date):
            raise ConfigError(
                f"GeneratorConfig.start_date must be a datetime.date (not a datetime or a "
                f"string), got {self.start_date!r}; pass e.g. date(2024, 1, 1)."
            )
        if not 1971 <= self.start_date.year <= 2200:
            raise ConfigError(
                f"GeneratorConfig.start_date must be between 1971 and 2200, got "
                f"{self.start_date.isoformat()}; choose a date in that range."
            )
        _check_float("race_noise_sigma", self.race_noise_sigma, 0.0, 0.5)
        for name in ("duplicate_rate", "late_rate", "missing_hr_rate", "invalid_rate", "malformed_rate"):
            _check_float(name, getattr(self, name), 0.0, 1.0)

    def to_dict(self) -> dict:
        return {
            "seed": int(self.seed),
            "n_athletes": int(self.n_athletes),
            "n_days": int(self.n_days),
            "start_date": self.start_date.isoformat(),
            "race_noise_sigma": float(self.race_noise_sigma),
            "duplicate_rate": float(self.duplicate_rate),
            "late_rate": float(self.late_rate),
            "missing_hr_rate": float(self.missing_hr_rate),
            "invalid_rate": float(self.invalid_rate),
            "malformed_rate": float(self.malformed_rate),
        }


@dataclass(frozen=True)
class GenerationSummary:
    """What `generate` wrote. Counts refer to the daily JSONL files only."""

    landing_dir: str
    files_written: int  # daily JSONL files (one per calendar day, possibly empty)
    file_names: tuple[str, ...]
    lines_written: int  # all lines of the daily files = records + malformed
    malformed_lines: int
    malformed_lines_by_file: Mapping[str, int]  # file name -> malformed lines (every file listed)
    athlete_records: int  # incl. re-emitted (updated) athlete records
    athletes: int
    session_records: int  # incl. duplicates and invalid sessions
    distinct_session_ids: int
    distinct_valid_session_ids: int
    invalid_session_ids: Mapping[str, tuple[str, ...]]  # rule name -> sorted session_ids
    races: int  # distinct valid race session_ids
    race_noise_sigma: float
    expected_mape_floor: float
    exact_duplicates: int  # extra byte-identical lines
    updated_duplicates: int  # extra lines with same session_id, later updated_at
    late_records: int  # sessions whose first record lands 1-3 days after the session day
    missing_hr_sessions: int
    as_of_utc: str
    manifest_path: str
    latent_fitness_path: str
    dirt_session_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def records_written(self) -> int:
        return self.athlete_records + self.session_records


# --------------------------------------------------------------------------- physiology


def _vo2(v_m_per_min):
    return -4.60 + 0.182258 * v_m_per_min + 0.000104 * v_m_per_min * v_m_per_min


def daniels_vdot(distance_m, time_s):
    """Daniels-Gilbert VDOT of a performance (scalars or numpy arrays)."""
    d = np.asarray(distance_m, dtype=float)
    t = np.asarray(time_s, dtype=float) / 60.0
    v = d / t
    pct = 0.8 + 0.1894393 * np.exp(-0.012778 * t) + 0.2989558 * np.exp(-0.1932605 * t)
    out = _vo2(v) / pct
    return float(out) if out.ndim == 0 else out


def _daniels_time_scalar(vdot: float, distance_m: float) -> float:
    lo, hi = distance_m / 1000.0, distance_m / 40.0  # minutes; VDOT(lo) > 200, VDOT(hi) < 5
    exp = math.exp
    for _ in range(64):
        t = 0.5 * (lo + hi)
        v = distance_m / t
        val = (-4.60 + 0.182258 * v + 0.000104 * v * v) / (
            0.8 + 0.1894393 * exp(-0.012778 * t) + 0.2989558 * exp(-0.1932605 * t)
        )
        if val > vdot:
            lo = t
        else:
            hi = t
    return 30.0 * (lo + hi)


def daniels_time_s(vdot, distance_m):
    """Race time (seconds) at which the Daniels-Gilbert VDOT equals `vdot` (inverse of
    `daniels_vdot`; scalars or numpy arrays, solved by bisection)."""
    v = np.asarray(vdot, dtype=float)
    d = np.asarray(distance_m, dtype=float)
    if not (np.all(np.isfinite(v)) and np.all((v > 5) & (v < 200))):
        raise ValueError("vdot must be finite and between 5 and 200")
    if not (np.all(np.isfinite(d)) and np.all(d > 0)):
        raise ValueError("distance_m must be finite and positive")
    if v.ndim == 0 and d.ndim == 0:
        return _daniels_time_scalar(float(v), float(d))
    v, d = np.broadcast_arrays(v, d)
    lo, hi = d / 1000.0, d / 40.0
    for _ in range(64):
        t = 0.5 * (lo + hi)
        val = _vo2(d / t) / (0.8 + 0.1894393 * np.exp(-0.012778 * t) + 0.2989558 * np.exp(-0.1932605 * t))
        above = val > v
        lo = np.where(above, t, lo)
        hi = np.where(above, hi, t)
    return 30.0 * (lo + hi)


def banister_trimp(duration_s, avg_hr, hr_rest, hr_max, sex):
    """Banister TRIMP: minutes * x * a * exp(b * x), x = (avg_hr - hr_rest)/(hr_max - hr_rest);
    male a=0.64 b=1.92, female a=0.86 b=1.67. `sex` is 'M' or 'F' (scalar)."""
    a, b = _TRIMP_AB[sex]
    x = (np.asarray(avg_hr, dtype=float) - hr_rest) / (hr_max - hr_rest)
    out = np.asarray(duration_s, dtype=float) / 60.0 * x * a * np.exp(b * x)
    return float(out) if out.ndim == 0 else out


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


def _nth_sunday(year: int, month: int, n: int) -> date:
    """n-th Sunday of a month (n=-1: the last one)."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 6) % 7)


def _dst_window(rule: str, year: int) -> tuple[date, date]:
    if rule == "eu":
        return _nth_sunday(year, 3, -1), _nth_sunday(year, 10, -1)
    return _nth_sunday(year, 3, 2), _nth_sunday(year, 11, 1)


def utc_offset_minutes(tz_name: str, local_day: date) -> int:
    """UTC offset (minutes) of a generator timezone on a local date, for local times from
    05:00 on (DST switches happen earlier in the night). Current EU/US rules for all years."""
    for name, std, rule, _ in _TIMEZONES:
        if name == tz_name:
            if rule is None:
                return std
            start, end = _dst_window(rule, local_day.year)
            return std + 60 if start <= local_day < end else std
    raise ValueError(f"unknown generator timezone {tz_name!r}")


def _offset_str(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    m = abs(minutes)
    return f"{sign}{m // 60:02d}:{m % 60:02d}"


def _iso_seconds(epochs) -> list[str]:
    arr = np.asarray(epochs, dtype=np.int64).astype("datetime64[s]")
    return np.datetime_as_string(arr, unit="s").tolist()


def _iso_z(epochs) -> list[str]:
    return [s + "Z" for s in _iso_seconds(epochs)]


def _shift_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


# --------------------------------------------------------------------------- simulation


class _Context:
    """Things shared by all athletes of one generation."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        self.cfg = cfg
        n = cfg.n_days
        self.days = [cfg.start_date + timedelta(days=i) for i in range(n)]
        self.day_iso = [d.isoformat() for d in self.days]
        self.day_compact = [d.strftime("%Y%m%d") for d in self.days]
        self.epoch0 = (cfg.start_date - _EPOCH_DATE).days * 86400
        self.start_weekday = cfg.start_date.weekday()
        self.as_of_epoch = self.epoch0 + (n + 1) * 86400
        self.offsets = np.array(
            [[utc_offset_minutes(name, d) for d in self.days] for name in _TZ_NAMES], dtype=np.int64
        )
        self.offset_strs = {int(m): _offset_str(int(m)) for m in np.unique(self.offsets)}


def _pick(options: tuple[str, ...], u: float) -> str:
    return options[min(int(u * len(options)), len(options) - 1)]


def _simulate_athlete(i: int, ctx: _Context) -> dict:
    cfg = ctx.cfg
    n_days = cfg.n_days
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(1, i)))
    drng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(2, i)))
    aid = f"ath_{i + 1:04d}"

    # ---- profile (fixed draw order) ----
    sex = "F" if rng.random() < 0.5 else "M"
    age = int(rng.integers(18, 66))
    birth_back = int(rng.integers(0, 365))
    base_vdot = float(rng.uniform(35.0, 65.0))
    hr_max = int(np.clip(round(208.0 - 0.7 * age + rng.normal(0.0, 5.0)), 150, 215))
    hr_rest = int(np.clip(round(63.0 - 0.5 * (base_vdot - 35.0) + rng.normal(0.0, 4.0)), 40, 70))
    lthr = int(round(hr_rest + (hr_max - hr_rest) * rng.uniform(0.80, 0.88)))
    w_mean = (61.0 - 0.2 * (base_vdot - 50.0)) if sex == "F" else (74.0 - 0.25 * (base_vdot - 50.0))
    weight = float(np.clip(w_mean + rng.normal(0.0, 7.0), 45.0, 110.0))
    spw = int(np.clip(round(3.0 + (base_vdot - 35.0) / 30.0 * 5.0 + rng.normal(0.0, 1.5)), 3, 10))
    run_share = float(rng.uniform(0.45, 1.0))
    ride_frac = float(rng.random())
    sport_p = np.array([run_share, (1 - run_share) * ride_frac, (1 - run_share) * (1 - ride_frac)])
    sport_p = sport_p / sport_p.sum()
    long_day = int(rng.choice(7, p=_LONG_DAY_P))
    tz = int(rng.choice(len(_TIMEZONES), p=_TZ_WEIGHTS))
    morning = bool(rng.random() < 0.6)
    hour_m, hour_e = float(rng.uniform(5.5, 7.5)), float(rng.uniform(17.0, 19.5))
    pref_hour, second_hour = (hour_m, hour_e) if morning else (hour_e, hour_m)
    race_interval = float(rng.uniform(28.0, 56.0))
    race_p = rng.dirichlet([3.5, 3.0, 2.2, 1.3])
    run_elev, ride_elev = float(rng.uniform(2.0, 20.0)), float(rng.uniform(4.0, 18.0))
    join_late, join_u = bool(rng.random() < 0.25), float(rng.random())
    join = int(join_u * (n_days // 2)) if join_late else 0
    vol_amp, vol_phase = float(rng.uniform(0.1, 0.3)), float(rng.uniform(0.0, 2 * math.pi))
    has_break, break_len, break_u = bool(rng.random() < 0.35), int(rng.integers(7, 29)), float(rng.random())
    dur_scale = float(np.clip(0.8 + (base_vdot - 35.0) / 30.0 * 0.5 + rng.normal(0.0, 0.1), 0.7, 1.5))
    ride_kmh = float(np.clip(20.0 + (base_vdot - 35.0) / 3.0 + rng.normal(0.0, 2.0), 17.0, 36.0))
    swim_pace = float(np.clip(150.0 - 1.3 * (base_vdot - 35.0) + rng.normal(0.0, 8.0), 85.0, 200.0))

    # ---- calendar ----
    D = n_days - join
    days = np.arange(join, n_days)
    weekday = (ctx.start_weekday + days) % 7
    vol = 1.0 + vol_amp * np.sin(2 * math.pi * days / 365.25 + vol_phase)
    vol = np.where(((days - join) // 7) % 4 == 3, vol * 0.7, vol)
    b0 = int(break_u * D)
    in_break = has_break & (np.arange(D) >= b0) & (np.arange(D) < b0 + break_len)
    is_long_day = weekday == long_day
    p1 = (min(spw, 7) - 1) / 6.0
    p2 = max(spw - 7, 0) / 6.0
    u1, u2 = rng.random(D), rng.random(D)
    train1 = ((u1 < p1) | is_long_day) & ~in_break
    train2 = train1 & (u2 < p2) & ~is_long_day

    race_rel: list[int] = []
    t = RACE_MIN_DAYS_AFTER_FIRST_DAY + rng.uniform(0.0, race_interval)
    while t < D:
        d = int(t)
        wd = int(weekday[d])
        d += 0 if wd >= 5 else 5 - wd  # race on the weekend
        if d >= D:
            break
        if not in_break[d]:
            race_rel.append(d)
        t = d + race_interval * rng.uniform(0.8, 1.25)
    n_races = len(race_rel)
    race_dist_idx = rng.choice(4, size=n_races, p=race_p)
    race_z = rng.standard_normal(n_races)
    is_race_day = np.zeros(D, dtype=bool)
    is_race_day[race_rel] = True
    train1 |= is_race_day
    train2 &= ~is_race_day

    # ---- sessions ----
    d1, d2 = np.nonzero(train1)[0], np.nonzero(train2)[0]
    s_rel = np.concatenate([d1, d2])
    slot = np.concatenate([np.ones(len(d1), np.int64), np.full(len(d2), 2, np.int64)])
    order = np.lexsort((slot, s_rel))
    s_rel, slot = s_rel[order], slot[order]
    N = len(s_rel)
    race = is_race_day[s_rel] & (slot == 1)
    long_ = is_long_day[s_rel] & (slot == 1) & ~race
    sport = rng.choice(3, size=N, p=sport_p)
    sport[race | long_] = 0
    u_kind = rng.random(N)
    kind = np.where(u_kind < _KIND_T1[sport], _EASY, np.where(u_kind < _KIND_T2[sport], _TEMPO, _INTERVALS))
    kind[slot == 2] = _EASY
    kind[long_] = _LONG
    kind[race] = _RACE
    u_x, u_span, u_dur, z_rpe = rng.random(N), rng.random(N), rng.random(N), rng.standard_normal(N)
    z_start, u_pct, z_speed, u_elev = rng.standard_normal(N), rng.random(N), rng.standard_normal(N), rng.random(N)
    u_note, u_suffix, u_delay = rng.random(N), rng.random(N), rng.random(N)

    ridx = np.nonzero(race)[0]  # in day order, aligned with race_rel
    x = _X_LO[kind] + (_X_HI[kind] - _X_LO[kind]) * u_x - _SPORT_X_ADJ[sport]
    x[ridx] = _RACE_X_LO[race_dist_idx] + (_RACE_X_HI[race_dist_idx] - _RACE_X_LO[race_dist_idx]) * u_x[ridx]
    avg_hr = np.rint(hr_rest + x * (hr_max - hr_rest)).astype(np.int64)
    span = _SPAN_LO[kind] + (_SPAN_HI[kind] - _SPAN_LO[kind]) * u_span
    max_hr = np.maximum(np.minimum(hr_max, avg_hr + np.rint(span).astype(np.int64)), avg_hr)
    dur_min = (_DUR_LO[sport, kind] + (_DUR_HI[sport, kind] - _DUR_LO[sport, kind]) * u_dur) * dur_scale * vol[s_rel]
    dur_min = np.where(slot == 2, dur_min * 0.7, dur_min)
    dur_min = np.clip(dur_min, 15.0, np.where(kind == _LONG, 210.0, 180.0))
    dur_s = np.rint(dur_min * 60.0).astype(np.int64)  # races are filled in below
    rpe = np.clip(np.rint(1.0 + 18.0 * (x - 0.45) + 0.8 * z_rpe), 1, 10).astype(np.int64)
    rpe[ridx] = np.maximum(rpe[ridx], 7)
    start_h = np.where(slot == 1, pref_hour, second_hour) + 0.5 * z_start
    start_h = np.where(race | long_, 7.75 + 0.6 * z_start, start_h)
    start_sec = np.rint(np.clip(start_h, 5.0, 21.5) * 3600.0).astype(np.int64)
    seq = np.ones(N, np.int64)
    j2 = np.nonzero(slot == 2)[0]
    later = start_sec[j2] > start_sec[j2 - 1]
    seq[j2] = np.where(later, 2, 1)
    seq[j2 - 1] = np.where(later, 1, 2)

    # ---- true load, CTL and latent VDOT ----
    a, b = _TRIMP_AB[sex]
    hrr = float(hr_max - hr_rest)
    xr = (avg_hr - hr_rest) / hrr
    trimp = dur_s / 60.0 * xr * a * np.exp(b * xr)
    trimp[ridx] = 0.0
    load = np.bincount(s_rel, weights=trimp, minlength=D)
    ref = float(load.mean())
    gain = LATENT_RELATIVE_GAIN / max(ref, LATENT_REF_FLOOR)
    v_lo = max(VDOT_RANGE[0], base_vdot - LATENT_MAX_SHIFT)
    v_hi = min(VDOT_RANGE[1], base_vdot + LATENT_MAX_SHIFT)
    sigma = float(cfg.race_noise_sigma)
    load_l = load.tolist()
    vdot_l = [0.0] * D
    race_at = {d: p for p, d in enumerate(race_rel)}
    ctl = ref
    for j in range(D):
        v = min(v_hi, max(v_lo, base_vdot + gain * (ctl - ref)))
        vdot_l[j] = v
        day_load = load_l[j]
        if j in race_at:
            p = race_at[j]
            s = int(ridx[p])
            t_s = _daniels_time_scalar(v, RACE_DISTANCES_M[race_dist_idx[p]]) * math.exp(sigma * race_z[p])
            dur_s[s] = int(round(t_s))
            xs = (int(avg_hr[s]) - hr_rest) / hrr
            tr = dur_s[s] / 60.0 * xs * a * math.exp(b * xs)
            trimp[s] = tr
            day_load += tr
        ctl += CTL_K * (day_load - ctl)
    vdot = np.array(vdot_l)

    # ---- distances and elevation from the latent fitness ----
    vd = vdot[s_rel]
    pct = _PCT_LO[kind] + (_PCT_HI[kind] - _PCT_LO[kind]) * u_pct
    vo2 = vd * pct
    v_run = (-0.182258 + np.sqrt(0.182258**2 + 4 * 0.000104 * (4.60 + vo2))) / (2 * 0.000104) / 60.0
    ride_boost = np.array([1.0, 1.06, 1.03, 0.97, 1.0])[kind]
    v_ride = np.minimum(ride_kmh / 3.6 * ride_boost * (vd / base_vdot), 11.0)
    v_swim = 100.0 / swim_pace * np.sqrt(vd / base_vdot)
    speed = np.choose(sport, [v_run, v_ride, v_swim]) * np.exp(0.03 * z_speed)
    dist = np.round(speed * dur_s, 1)
    for p, s in enumerate(ridx):
        dist[s] = RACE_DISTANCES_M[race_dist_idx[p]]
    elev_per_km = np.choose(sport, [np.full(N, run_elev), np.full(N, ride_elev), np.zeros(N)])
    elev = np.round(elev_per_km * dist / 1000.0 * np.where(race, 0.5 * u_elev, 0.5 + u_elev), 1)

    # ---- dirt (own stream) ----
    u_inv, u_rule, u_inv_p = drng.random(N), drng.random(N), drng.random(N)
    u_miss = drng.random(N)
    u_late, late_lag, u_arr = drng.random(N), drng.integers(1, 4, N), drng.random(N)
    u_dup, u_dtype, dup_lag, u_ddelay = drng.random(N), drng.random(N), drng.integers(0, 3, N), drng.random(N)
    u_reorder, u_edit, u_edit2 = drng.random(N), drng.random(N), drng.random(N)

    day_abs = join + s_rel
    invalid = (u_inv < cfg.invalid_rate) & ~race
    n_rules = np.where(sport == 0, 5, 4)  # speed_plausible only applies to runs
    rule_pos = np.minimum((u_rule * n_rules).astype(np.int64), n_rules - 1)
    rule_map_run = np.array([0, 1, 2, 3, 4])
    rule_map_other = np.array([0, 1, 2, 4, 4])
    rule = np.where(sport == 0, rule_map_run[rule_pos], rule_map_other[rule_pos])
    missing = (u_miss < cfg.missing_hr_rate) & ~(invalid & (rule == 2))
    late = (u_late < cfg.late_rate) & (day_abs + late_lag <= n_days - 1)
    dup = u_dup < cfg.duplicate_rate
    exact = dup & (u_dtype < 0.5)
    updated = dup & ~exact

    off = ctx.offsets[tz][day_abs]
    local_epoch = ctx.epoch0 + day_abs * 86400 + start_sec
    utc_start = local_epoch - off * 60
    upd0 = utc_start + dur_s + 120 + np.rint(u_delay * 7080).astype(np.int64)
    arr_local = ctx.epoch0 + (day_abs + late_lag) * 86400 + np.rint((6.0 + 17.0 * u_arr) * 3600).astype(np.int64)
    late_off = ctx.offsets[tz][np.minimum(day_abs + late_lag, n_days - 1)]
    upd0 = np.where(late, arr_local - late_off * 60, upd0)
    upd0 = np.minimum(upd0, ctx.as_of_epoch - 3600)
    upd1 = np.minimum(upd0 + 600 + np.rint(u_ddelay * 172800).astype(np.int64), ctx.as_of_epoch - 60)
    file0 = np.where(late, day_abs + late_lag, day_abs)
    file1 = np.minimum(file0 + dup_lag, n_days - 1)

    start_local_s = _iso_seconds(local_epoch)
    upd0_s, upd1_s = _iso_z(upd0), _iso_z(upd1)

    # values as Python objects (invalid values applied here)
    dur_o = dur_s.tolist()
    dist_o = dist.tolist()
    avg_o = avg_hr.tolist()
    max_o = max_hr.tolist()
    start_o = [s + ctx.offset_strs[int(o)] for s, o in zip(start_local_s, off.tolist(), strict=True)]
    invalid_pos: dict[str, list[int]] = {r: [] for r in INVALID_RULES}
    tz_name = _TZ_NAMES[tz]
    for s in np.nonzero(invalid)[0].tolist():
        r = int(rule[s])
        up = float(u_inv_p[s])
        if r == 0:  # duration_positive
            dur_o[s] = 0 if up < 0.3 else -dur_o[s]
        elif r == 1:  # distance_non_negative
            dist_o[s] = -max(dist_o[s], 100.0)
        elif r == 2:  # hr_range
            max_o[s] = 300
            if up < 0.4:
                avg_o[s] = 300
        elif r == 3:  # speed_plausible (run)
            dist_o[s] = max(dist_o[s], 1000.0)
            dur_o[s] = max(1, int(math.floor(dist_o[s] / (13.0 + 17.0 * up))))
        else:  # start_not_in_future
            fut = ctx.as_of_epoch // 86400 + FUTURE_MIN_DAYS + int(up * (FUTURE_MAX_DAYS - FUTURE_MIN_DAYS))
            fday = _EPOCH_DATE + timedelta(days=fut)
            foff = utc_offset_minutes(tz_name, fday)
            fep = fut * 86400 + int(start_sec[s])
            start_o[s] = _iso_seconds([fep])[0] + _offset_str(foff)
        invalid_pos[INVALID_RULES[r]].append(s)
    for s in np.nonzero(missing)[0].tolist():
        avg_o[s] = None
        max_o[s] = None

    # ---- records ----
    out: list[tuple[int, int, int, int, str]] = []  # (file_day, arrival, athlete, seq, line)
    n_line = 0

    def emit(file_day: int, arrival: int, line: str) -> None:
        nonlocal n_line
        out.append((file_day, arrival, i, n_line, line))
        n_line += 1

    def dumps(rec: dict) -> str:
        return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))

    birth = _shift_years(cfg.start_date, -age) - timedelta(days=birth_back)
    athlete_rec = {
        "record_type": "athlete",
        "athlete_id": aid,
        "sex": sex,
        "birth_date": birth.isoformat(),
        "weight_kg": round(weight, 1),
        "hr_rest": hr_rest,
        "hr_max": hr_max,
        "lthr": lthr,
        "timezone": tz_name,
        "updated_at": None,
    }
    # athlete record: 04:30 local on its day (before any session of that day)
    a_ep = ctx.epoch0 + join * 86400 + 16200 - int(ctx.offsets[tz][join]) * 60
    athlete_rec["updated_at"] = _iso_z([a_ep])[0]
    emit(join, a_ep, dumps(athlete_rec))
    athlete_records = 1

    sport_names = [SPORTS[k] for k in sport.tolist()]
    kind_l, seq_l, day_l = kind.tolist(), seq.tolist(), day_abs.tolist()
    rpe_l, elev_l = rpe.tolist(), elev.tolist()
    u_note_l, u_suffix_l = u_note.tolist(), u_suffix.tolist()
    file0_l, file1_l, upd0_l = file0.tolist(), file1.tolist(), upd0.tolist()
    race_idx_of = {int(s): p for p, s in enumerate(ridx)}
    exact_ids, updated_ids, late_ids, missing_ids, race_ids = [], [], [], [], []
    session_records = 0
    for s in range(N):
        sid = f"{aid}-{ctx.day_compact[day_l[s]]}-{seq_l[s]}"
        k = kind_l[s]
        sp = sport_names[s]
        if k == _RACE:
            label = RACE_LABELS[int(race_dist_idx[race_idx_of[s]])]
            note = _pick((f"race: {label}", f"{label} race, gave it everything", f"race day - {label}"), u_note_l[s])
            race_ids.append(sid)
        else:
            note = _pick(_NOTES[(sp, k)], u_note_l[s]) + _pick(_NOTE_SUFFIXES, u_suffix_l[s])
        rec = {
            "record_type": "session",
            "session_id": sid,
            "athlete_id": aid,
            "sport": sp,
            "start_time": start_o[s],
            "duration_s": dur_o[s],
            "distance_m": dist_o[s],
            "elevation_gain_m": elev_l[s],
            "avg_hr": avg_o[s],
            "max_hr": max_o[s],
            "rpe": rpe_l[s],
            "notes": note,
            "is_race": k == _RACE,
            "source": "app",
            "updated_at": upd0_s[s],
        }
        line = dumps(rec)
        f0, a0 = file0_l[s], upd0_l[s]
        if exact[s]:
            emit(f0, a0, line)
            f1 = file1_l[s]
            emit(f1, a0 + 1 + (f1 - f0) * 86400, line)
            exact_ids.append(sid)
            session_records += 2
        elif updated[s]:
            old_rpe = rec["rpe"]
            if u_edit[s] < 0.5:
                rec["rpe"] = old_rpe + 1 if (old_rpe < 10 and (u_edit2[s] < 0.5 or old_rpe == 1)) else old_rpe - 1
            rec["notes"] = note + _pick(_EDIT_SUFFIXES, float(u_edit2[s]))
            rec["updated_at"] = upd1_s[s]
            new_line = dumps(rec)
            f1 = file1_l[s]
            if u_reorder[s] < 0.3:  # the stale version arrives after the newer one
                emit(f0, a0, new_line)
                emit(f1, a0 + 1 + (f1 - f0) * 86400, line)
            else:
                emit(f0, a0, line)
                emit(f1, a0 + 1 + (f1 - f0) * 86400, new_line)
            updated_ids.append(sid)
            session_records += 2
        else:
            emit(f0, a0, line)
            session_records += 1
        if late[s]:
            late_ids.append(sid)
        if missing[s]:
            missing_ids.append(sid)

    invalid_ids = {r: [f"{aid}-{ctx.day_compact[day_l[s]]}-{seq_l[s]}" for s in pos] for r, pos in invalid_pos.items()}

    # ---- occasional athlete re-emissions with an updated weight ----
    t = join + rng.uniform(45.0, 120.0)
    while t < n_days:
        d = int(t)
        weight = float(np.clip(weight + rng.normal(0.0, 0.9), 45.0, 110.0))
        athlete_rec["weight_kg"] = round(weight, 1)
        ep = ctx.epoch0 + d * 86400 + 16200 + int(rng.integers(0, 1800)) - int(ctx.offsets[tz][d]) * 60
        athlete_rec["updated_at"] = _iso_z([ep])[0]
        emit(d, ep, dumps(athlete_rec))
        athlete_records += 1
        t = d + rng.uniform(45.0, 120.0)

    return {
        "lines": out,
        "athlete_id": aid,
        "join": join,
        "vdot": vdot,
        "athlete_records": athlete_records,
        "session_records": session_records,
        "distinct_sessions": N,
        "race_ids": race_ids,
        "invalid_ids": invalid_ids,
        "exact_ids": exact_ids,
        "updated_ids": updated_ids,
        "late_ids": late_ids,
        "missing_ids": missing_ids,
    }


# --------------------------------------------------------------------------- writing


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _previous_files(manifest_path: Path) -> list[str]:
    try:
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        return [f["name"] for f in old.get("files", []) if isinstance(f, dict) and isinstance(f.get("name"), str)]
    except (OSError, ValueError, AttributeError):
        return []


def generate(config: GeneratorConfig, landing_dir: Path) -> GenerationSummary:
    """Write the landing files for `config` under `landing_dir` and return what was written.

    Files are replaced atomically; daily files listed by a previous manifest in the same
    directory but not part of this generation are removed (nothing else is touched)."""
    if not isinstance(config, GeneratorConfig):
        raise ConfigError(f"generate() needs a GeneratorConfig, got {type(config).__name__}.")
    landing_dir = Path(landing_dir)
    ctx = _Context(config)
    n_days = config.n_days

    buckets: list[list[tuple[int, int, int, str]]] = [[] for _ in range(n_days)]
    latent_rows: list[str] = ["athlete_id,date,vdot_latent"]
    athlete_records = session_records = distinct_sessions = 0
    invalid: dict[str, list[str]] = {r: [] for r in INVALID_RULES}
    dirt: dict[str, list[str]] = {"exact_duplicate": [], "updated_duplicate": [], "late": [], "missing_hr": []}
    race_ids: list[str] = []
    for i in range(config.n_athletes):
        res = _simulate_athlete(i, ctx)
        for fday, arrival, ai, n, line in res["lines"]:
            buckets[fday].append((arrival, ai, n, line))
        aid, join = res["athlete_id"], res["join"]
        for j, v in enumerate(res["vdot"].tolist()):
            latent_rows.append(f"{aid},{ctx.day_iso[join + j]},{v:.4f}")
        athlete_records += res["athlete_records"]
        session_records += res["session_records"]
        distinct_sessions += res["distinct_sessions"]
        for r in INVALID_RULES:
            invalid[r].extend(res["invalid_ids"][r])
        dirt["exact_duplicate"].extend(res["exact_ids"])
        dirt["updated_duplicate"].extend(res["updated_ids"])
        dirt["late"].extend(res["late_ids"])
        dirt["missing_hr"].extend(res["missing_ids"])
        race_ids.extend(res["race_ids"])

    invalid_t = {r: tuple(sorted(v)) for r, v in invalid.items()}
    dirt_t = {k: tuple(sorted(v)) for k, v in dirt.items()}
    n_invalid = sum(len(v) for v in invalid_t.values())

    # ---- malformed lines (own stream), then write the daily files ----
    mrng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(4,)))
    export_dir = landing_dir / "app_export"
    gen_dir = landing_dir / "_generator"
    manifest_path = gen_dir / "manifest.json"
    old_files = _previous_files(manifest_path)
    file_names: list[str] = []
    malformed_by_file: dict[str, int] = {}
    files_meta = []
    lines_total = malformed_total = 0
    for d in range(n_days):
        bucket = buckets[d]
        bucket.sort()
        lines = [t[3] for t in bucket]
        n_rec = len(lines)
        m = int(mrng.binomial(n_rec, config.malformed_rate)) if n_rec else 0
        for _ in range(m):
            if mrng.random() < 0.7:
                src = bucket[int(mrng.integers(0, n_rec))][3]  # a truncated copy of a record
                bad = src[: int(mrng.integers(1, len(src)))]
            else:
                bad = _GARBAGE_LINES[int(mrng.integers(0, len(_GARBAGE_LINES)))]
            lines.insert(int(mrng.integers(0, len(lines) + 1)), bad)
        name = f"{ctx.day_iso[d]}.jsonl"
        data = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
        _write_atomic(export_dir / name, data)
        file_names.append(name)
        malformed_by_file[name] = m
        files_meta.append({"name": name, "lines": len(lines), "malformed": m, "bytes": len(data)})
        lines_total += len(lines)
        malformed_total += m
    keep = set(file_names)
    for name in old_files:
        if name not in keep and _DAY_FILE_RE.match(name):
            with contextlib.suppress(FileNotFoundError):
                (export_dir / name).unlink()

    latent_path = gen_dir / "latent_fitness.csv"
    _write_atomic(latent_path, ("\n".join(latent_rows) + "\n").encode("utf-8"))

    invalid_set = {s for v in invalid_t.values() for s in v}
    races_valid = sum(1 for s in race_ids if s not in invalid_set)
    floor = expected_mape_floor(float(config.race_noise_sigma))
    as_of = _iso_z([ctx.as_of_epoch])[0]
    counts = {
        "files": n_days,
        "lines": lines_total,
        "malformed_lines": malformed_total,
        "records": athlete_records + session_records,
        "athlete_records": athlete_records,
        "athletes": config.n_athletes,
        "session_records": session_records,
        "distinct_session_ids": distinct_sessions,
        "distinct_valid_session_ids": distinct_sessions - n_invalid,
        "races": races_valid,
        "exact_duplicates": len(dirt_t["exact_duplicate"]),
        "updated_duplicates": len(dirt_t["updated_duplicate"]),
        "late_records": len(dirt_t["late"]),
        "missing_hr_sessions": len(dirt_t["missing_hr"]),
        "invalid_sessions": {r: len(v) for r, v in invalid_t.items()},
    }
    manifest = {
        "generator": "athlete_platform.ingestion.sample_data",
        "generator_version": GENERATOR_VERSION,
        "seed": int(config.seed),
        "config": config.to_dict(),
        "race_noise_sigma": float(config.race_noise_sigma),
        "expected_mape_floor": floor,
        "first_day": ctx.day_iso[0],
        "last_day": ctx.day_iso[-1],
        "as_of_utc": as_of,
        "layout": {
            "app_export": "app_export/YYYY-MM-DD.jsonl",
            "latent_fitness": "_generator/latent_fitness.csv",
        },
        "counts": counts,
        "invalid_session_ids": {r: list(v) for r, v in invalid_t.items()},
        "dirt_session_ids": {k: list(v) for k, v in dirt_t.items()},
        "validation_rules": {
            "duration_positive": "duration_s > 0",
            "distance_non_negative": "distance_m >= 0",
            "hr_range": f"avg_hr and max_hr null or within [{HR_VALID_RANGE[0]}, {HR_VALID_RANGE[1]}]",
            "speed_plausible": (
                f"sport == 'run' and duration_s > 0 implies distance_m / duration_s <= {MAX_RUN_SPEED_MPS}"
            ),
            "start_not_in_future": "start_time (as UTC) < as_of_utc",
        },
        "latent_model": {
            "trimp": "minutes * x * a * exp(b * x), x = (avg_hr - hr_rest) / (hr_max - hr_rest)",
            "trimp_a_b": {k: list(v) for k, v in _TRIMP_AB.items()},
            "ctl_k": CTL_K,
            "vdot_latent": "clamp(base_vdot + gain * (CTL(d-1) - ref)); ref = mean daily TRIMP; "
            "gain = relative_gain / max(ref, ref_floor); CTL starts at ref on the athlete's first day",
            "relative_gain": LATENT_RELATIVE_GAIN,
            "ref_floor": LATENT_REF_FLOOR,
            "max_shift": LATENT_MAX_SHIFT,
            "vdot_range": list(VDOT_RANGE),
            "race_distances_m": list(RACE_DISTANCES_M),
            "race_time": "daniels_time(vdot_latent(local race date), distance) * exp(eps), eps ~ N(0, sigma)",
        },
        "files": files_meta,
    }
    _write_atomic(
        manifest_path, (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    )

    return GenerationSummary(
        landing_dir=str(landing_dir),
        files_written=n_days,
        file_names=tuple(file_names),
        lines_written=lines_total,
        malformed_lines=malformed_total,
        malformed_lines_by_file=malformed_by_file,
        athlete_records=athlete_records,
        athletes=config.n_athletes,
        session_records=session_records,
        distinct_session_ids=distinct_sessions,
        distinct_valid_session_ids=distinct_sessions - n_invalid,
        invalid_session_ids=invalid_t,
        races=races_valid,
        race_noise_sigma=float(config.race_noise_sigma),
        expected_mape_floor=floor,
        exact_duplicates=len(dirt_t["exact_duplicate"]),
        updated_duplicates=len(dirt_t["updated_duplicate"]),
        late_records=len(dirt_t["late"]),
        missing_hr_sessions=len(dirt_t["missing_hr"]),
        as_of_utc=as_of,
        manifest_path=str(manifest_path),
        latent_fitness_path=str(latent_path),
        dirt_session_ids=dirt_t,
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m athlete_platform.ingestion.sample_data LANDING_DIR [--n-athletes N ...]`"""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("landing_dir", type=Path)
    p.add_argument("--seed", type=int, default=GeneratorConfig.seed)
    p.add_argument("--n-athletes", type=int, default=GeneratorConfig.n_athletes)
    p.add_argument("--n-days", type=int, default=GeneratorConfig.n_days)
    p.add_argument("--start-date", type=date.fromisoformat, default=GeneratorConfig.start_date)
    p.add_argument("--race-noise-sigma", type=float, default=GeneratorConfig.race_noise_sigma)
    args = p.parse_args(argv)
    try:
        cfg = GeneratorConfig(
            seed=args.seed,
            n_athletes=args.n_athletes,
            n_days=args.n_days,
            start_date=args.start_date,
            race_noise_sigma=args.race_noise_sigma,
        )
        summary = generate(cfg, args.landing_dir)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    print(
        f"wrote {summary.files_written} files, {summary.lines_written} lines "
        f"({summary.session_records} session records, {summary.races} races, "
        f"{summary.malformed_lines} malformed) to {summary.landing_dir}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
