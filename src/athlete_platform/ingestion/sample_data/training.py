"""An athlete's training: the calendar (training days, long runs, races, a break) and the
sessions of those days (sport, kind, heart rate, duration, RPE, start time), drawn from the
athlete's training stream; plus the distance and elevation of each session."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from athlete_platform.ingestion.sample_data.config import (
    KIND_EASY,
    KIND_INTERVALS,
    KIND_LONG,
    KIND_RACE,
    KIND_TEMPO,
    RACE_DISTANCES_M,
    RACE_MIN_DAYS_AFTER_FIRST_DAY,
)
from athlete_platform.ingestion.sample_data.profile import AthleteProfile

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


@dataclass(frozen=True)
class TrainingCalendar:
    """Which of the athlete's days (index 0 = the athlete's first day) have sessions."""

    n_days: int  # days from the athlete's first day to the end of the generation
    volume_factor: np.ndarray  # per day, seasonal volume with recovery weeks
    is_long_day: np.ndarray  # per day
    first_session: np.ndarray  # per day: at least one session
    second_session: np.ndarray  # per day: a second session
    is_race_day: np.ndarray  # per day
    race_days_rel: list[int]  # in day order
    race_distance_idx: np.ndarray  # per race, into RACE_DISTANCES_M
    race_z: np.ndarray  # per race, standard normal race-day noise


@dataclass(frozen=True)
class Sessions:
    """The athlete's sessions in day order (second sessions after first ones), one entry each.

    ``duration_s`` holds placeholders for races (their time follows from the latent fitness);
    the ``u_*`` / ``z_*`` arrays are uniform / normal draws kept for later steps."""

    day_rel: np.ndarray  # day index from the athlete's first day
    is_race: np.ndarray
    sport: np.ndarray  # index into SPORTS
    kind: np.ndarray  # KIND_*
    race_index: np.ndarray  # session positions of the races, aligned with the calendar's races
    avg_hr_bpm: np.ndarray
    max_hr_bpm: np.ndarray
    duration_s: np.ndarray
    rpe: np.ndarray
    start_of_day_s: np.ndarray  # local start time, seconds after midnight
    seq: np.ndarray  # 1 or 2: order of the day's sessions by start time
    u_pct: np.ndarray  # share of the kind's %VO2max range
    z_speed: np.ndarray
    u_elevation: np.ndarray
    u_note: np.ndarray
    u_note_suffix: np.ndarray
    u_upload_delay: np.ndarray


def draw_calendar(
    rng: np.random.Generator, profile: AthleteProfile, n_days: int, start_weekday: int
) -> TrainingCalendar:
    """Training days from sessions/week, the long-run day, seasonal volume, every 4th week
    easier, an occasional break, and weekend races every ~race_interval_days."""
    join = profile.first_day
    spw = profile.sessions_per_week
    D = n_days - join
    days = np.arange(join, n_days)
    weekday = (start_weekday + days) % 7
    vol = 1.0 + profile.volume_amplitude * np.sin(2 * math.pi * days / 365.25 + profile.volume_phase_rad)
    vol = np.where(((days - join) // 7) % 4 == 3, vol * 0.7, vol)
    b0 = int(profile.break_start_u * D)
    in_break = profile.has_break & (np.arange(D) >= b0) & (np.arange(D) < b0 + profile.break_days)
    is_long_day = weekday == profile.long_run_weekday
    p1 = (min(spw, 7) - 1) / 6.0
    p2 = max(spw - 7, 0) / 6.0
    u1, u2 = rng.random(D), rng.random(D)
    train1 = ((u1 < p1) | is_long_day) & ~in_break
    train2 = train1 & (u2 < p2) & ~is_long_day

    race_rel: list[int] = []
    t = RACE_MIN_DAYS_AFTER_FIRST_DAY + rng.uniform(0.0, profile.race_interval_days)
    while t < D:
        d = int(t)
        wd = int(weekday[d])
        d += 0 if wd >= 5 else 5 - wd  # race on the weekend
        if d >= D:
            break
        if not in_break[d]:
            race_rel.append(d)
        t = d + profile.race_interval_days * rng.uniform(0.8, 1.25)
    n_races = len(race_rel)
    race_dist_idx = rng.choice(len(RACE_DISTANCES_M), size=n_races, p=profile.race_distance_p)
    race_z = rng.standard_normal(n_races)
    is_race_day = np.zeros(D, dtype=bool)
    is_race_day[race_rel] = True
    train1 |= is_race_day
    train2 &= ~is_race_day
    return TrainingCalendar(
        n_days=D,
        volume_factor=vol,
        is_long_day=is_long_day,
        first_session=train1,
        second_session=train2,
        is_race_day=is_race_day,
        race_days_rel=race_rel,
        race_distance_idx=race_dist_idx,
        race_z=race_z,
    )


def draw_sessions(rng: np.random.Generator, profile: AthleteProfile, calendar: TrainingCalendar) -> Sessions:
    """Sport, kind, heart rate, duration, RPE and start time of every session of the calendar."""
    hr_rest, hr_max = profile.hr_rest_bpm, profile.hr_max_bpm
    d1, d2 = np.nonzero(calendar.first_session)[0], np.nonzero(calendar.second_session)[0]
    s_rel = np.concatenate([d1, d2])
    slot = np.concatenate([np.ones(len(d1), np.int64), np.full(len(d2), 2, np.int64)])
    order = np.lexsort((slot, s_rel))
    s_rel, slot = s_rel[order], slot[order]
    N = len(s_rel)
    race = calendar.is_race_day[s_rel] & (slot == 1)
    long_ = calendar.is_long_day[s_rel] & (slot == 1) & ~race
    sport = rng.choice(3, size=N, p=profile.sport_p)
    sport[race | long_] = 0
    u_kind = rng.random(N)
    kind = np.where(u_kind < _KIND_T1[sport], KIND_EASY, np.where(u_kind < _KIND_T2[sport], KIND_TEMPO, KIND_INTERVALS))
    kind[slot == 2] = KIND_EASY
    kind[long_] = KIND_LONG
    kind[race] = KIND_RACE
    u_x, u_span, u_dur, z_rpe = rng.random(N), rng.random(N), rng.random(N), rng.standard_normal(N)
    z_start, u_pct, z_speed, u_elev = rng.standard_normal(N), rng.random(N), rng.standard_normal(N), rng.random(N)
    u_note, u_suffix, u_delay = rng.random(N), rng.random(N), rng.random(N)

    ridx = np.nonzero(race)[0]  # in day order, aligned with the calendar's races
    race_dist_idx = calendar.race_distance_idx
    x = _X_LO[kind] + (_X_HI[kind] - _X_LO[kind]) * u_x - _SPORT_X_ADJ[sport]
    x[ridx] = _RACE_X_LO[race_dist_idx] + (_RACE_X_HI[race_dist_idx] - _RACE_X_LO[race_dist_idx]) * u_x[ridx]
    avg_hr = np.rint(hr_rest + x * (hr_max - hr_rest)).astype(np.int64)
    span = _SPAN_LO[kind] + (_SPAN_HI[kind] - _SPAN_LO[kind]) * u_span
    max_hr = np.maximum(np.minimum(hr_max, avg_hr + np.rint(span).astype(np.int64)), avg_hr)
    dur_min = (_DUR_LO[sport, kind] + (_DUR_HI[sport, kind] - _DUR_LO[sport, kind]) * u_dur) * profile.duration_scale
    dur_min = dur_min * calendar.volume_factor[s_rel]
    dur_min = np.where(slot == 2, dur_min * 0.7, dur_min)
    dur_min = np.clip(dur_min, 15.0, np.where(kind == KIND_LONG, 210.0, 180.0))
    dur_s = np.rint(dur_min * 60.0).astype(np.int64)  # races are filled in from the latent fitness
    rpe = np.clip(np.rint(1.0 + 18.0 * (x - 0.45) + 0.8 * z_rpe), 1, 10).astype(np.int64)
    rpe[ridx] = np.maximum(rpe[ridx], 7)
    start_h = np.where(slot == 1, profile.preferred_hour, profile.second_hour) + 0.5 * z_start
    start_h = np.where(race | long_, 7.75 + 0.6 * z_start, start_h)
    start_s = np.rint(np.clip(start_h, 5.0, 21.5) * 3600.0).astype(np.int64)
    seq = np.ones(N, np.int64)
    j2 = np.nonzero(slot == 2)[0]
    later = start_s[j2] > start_s[j2 - 1]
    seq[j2] = np.where(later, 2, 1)
    seq[j2 - 1] = np.where(later, 1, 2)
    return Sessions(
        day_rel=s_rel,
        is_race=race,
        sport=sport,
        kind=kind,
        race_index=ridx,
        avg_hr_bpm=avg_hr,
        max_hr_bpm=max_hr,
        duration_s=dur_s,
        rpe=rpe,
        start_of_day_s=start_s,
        seq=seq,
        u_pct=u_pct,
        z_speed=z_speed,
        u_elevation=u_elev,
        u_note=u_note,
        u_note_suffix=u_suffix,
        u_upload_delay=u_delay,
    )


def session_distance_m(
    sessions: Sessions, calendar: TrainingCalendar, speed_mps: np.ndarray, duration_s: np.ndarray
) -> np.ndarray:
    """Distance (m, 0.1 m) of each session: speed times duration; races are exactly their distance."""
    dist = np.round(speed_mps * duration_s, 1)
    for p, s in enumerate(sessions.race_index):
        dist[s] = RACE_DISTANCES_M[calendar.race_distance_idx[p]]
    return dist


def elevation_gain_m(profile: AthleteProfile, sessions: Sessions, distance_m: np.ndarray) -> np.ndarray:
    """Elevation gain (m, 0.1 m) of each session from the athlete's usual gain per km (none for swims)."""
    n = len(distance_m)
    elev_per_km = np.choose(
        sessions.sport,
        [np.full(n, profile.run_elevation_m_per_km), np.full(n, profile.ride_elevation_m_per_km), np.zeros(n)],
    )
    u = sessions.u_elevation
    return np.round(elev_per_km * distance_m / 1000.0 * np.where(sessions.is_race, 0.5 * u, 0.5 + u), 1)
