"""An athlete's profile: body, fitness, habits and time zone, drawn from the athlete's
training random stream in a fixed order."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from athlete_platform.ingestion.sample_data.timezones import TIMEZONE_NAMES, TIMEZONE_WEIGHTS

_LONG_DAY_P = np.array([0.04, 0.04, 0.04, 0.04, 0.04, 0.36, 0.44])  # Monday=0 .. Sunday=6


@dataclass(frozen=True)
class AthleteProfile:
    """Fixed traits of one simulated athlete."""

    sex: str  # "M" or "F"
    age_years: int  # on the first generated day
    birth_days_back: int  # birthday this many days before the age-th anniversary
    base_vdot: float
    hr_max_bpm: int
    hr_rest_bpm: int
    lthr_bpm: int
    weight_kg: float  # on the first day; drifts in later athlete records
    sessions_per_week: int
    sport_p: np.ndarray  # probability of run, ride, swim
    long_run_weekday: int  # Monday=0
    tz_index: int  # into timezones.TIMEZONE_NAMES
    preferred_hour: float  # local start hour of the first session of a day
    second_hour: float  # local start hour of a second session
    race_interval_days: float
    race_distance_p: np.ndarray  # probability of each of RACE_DISTANCES_M
    run_elevation_m_per_km: float
    ride_elevation_m_per_km: float
    first_day: int  # day index (from the generation's start) of the athlete's first day
    volume_amplitude: float  # seasonal volume swing, fraction
    volume_phase_rad: float
    has_break: bool
    break_days: int
    break_start_u: float  # where the break starts, as a fraction of the athlete's days
    duration_scale: float
    ride_kmh: float
    swim_pace_s_per_100m: float

    @property
    def tz_name(self) -> str:
        """The athlete's time zone (IANA name)."""
        return TIMEZONE_NAMES[self.tz_index]


def draw_profile(rng: np.random.Generator, n_days: int) -> AthleteProfile:
    """Draw a profile from the athlete's training stream (the draw order is part of the output)."""
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
    tz = int(rng.choice(len(TIMEZONE_NAMES), p=TIMEZONE_WEIGHTS))
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
    return AthleteProfile(
        sex=sex,
        age_years=age,
        birth_days_back=birth_back,
        base_vdot=base_vdot,
        hr_max_bpm=hr_max,
        hr_rest_bpm=hr_rest,
        lthr_bpm=lthr,
        weight_kg=weight,
        sessions_per_week=spw,
        sport_p=sport_p,
        long_run_weekday=long_day,
        tz_index=tz,
        preferred_hour=pref_hour,
        second_hour=second_hour,
        race_interval_days=race_interval,
        race_distance_p=race_p,
        run_elevation_m_per_km=run_elev,
        ride_elevation_m_per_km=ride_elev,
        first_day=join,
        volume_amplitude=vol_amp,
        volume_phase_rad=vol_phase,
        has_break=has_break,
        break_days=break_len,
        break_start_u=break_u,
        duration_scale=dur_scale,
        ride_kmh=ride_kmh,
        swim_pace_s_per_100m=swim_pace,
    )
