"""The JSON records of the app export: athlete records, session records, the generic short
note of each session (`notes` writes the state-driven ones), and the one way every record is
written as a line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from athlete_platform.ingestion.sample_data.config import (
    KIND_EASY,
    KIND_INTERVALS,
    KIND_LONG,
    KIND_RACE,
    KIND_TEMPO,
    RACE_LABELS,
    SPORTS,
)
from athlete_platform.ingestion.sample_data.profile import AthleteProfile
from athlete_platform.ingestion.sample_data.timezones import iso_seconds, iso_z
from athlete_platform.ingestion.sample_data.training import Sessions, TrainingCalendar

ATHLETE_RECORD_LOCAL_TIME_S = 16200  # 04:30 local: before any session of the day
ATHLETE_UPDATE_JITTER_S = 1800
ATHLETE_UPDATE_EVERY_DAYS = (45.0, 120.0)  # uniform gap between athlete re-emissions
WEIGHT_DRIFT_SIGMA_KG = 0.9
WEIGHT_RANGE_KG = (45.0, 110.0)

_NOTES = {
    ("run", KIND_EASY): (
        "easy run",
        "recovery jog",
        "easy run with strides",
        "relaxed shakeout",
        "easy run, flat route",
        "Lockerer Dauerlauf",
    ),
    ("run", KIND_TEMPO): ("tempo run", "threshold 3x10min", "steady tempo", "progression run"),
    ("run", KIND_INTERVALS): (
        "intervals 6x800m",
        "track session 10x400m",
        "hill repeats",
        "VO2 intervals 5x1000m",
        "fartlek",
    ),
    ("run", KIND_LONG): ("long run", "long run, fuelled well", "Sunday long run", "long run on trails"),
    ("ride", KIND_EASY): ("easy spin", "endurance ride", "commute ride", "indoor trainer, easy"),
    ("ride", KIND_TEMPO): ("sweet spot 3x12min", "group ride", "tempo ride"),
    ("ride", KIND_INTERVALS): ("VO2 intervals on the bike", "hill climbs", "crit-style surges"),
    ("ride", KIND_LONG): ("long ride",),
    ("swim", KIND_EASY): ("easy swim", "technique drills", "open water swim", "recovery swim"),
    ("swim", KIND_TEMPO): ("CSS swim 8x200m", "steady swim"),
    ("swim", KIND_INTERVALS): ("swim intervals 10x100m", "sprint set 16x50m"),
    ("swim", KIND_LONG): ("long swim",),
}
# Neutral additions only: what an athlete felt is written by `notes` from the athlete's state,
# so a generic note never claims heavy legs or a hot day that did not happen.
_NOTE_SUFFIXES = (
    "",
    "",
    "",
    "",
    ", usual route",
    ", solo",
    ", with the club",
    ", new shoes",
    ", before work",
    " 👍",
    " ✔️",
)

Line = tuple[int, int, str]  # (file day index, arrival epoch seconds, JSON line)


def pick(options: tuple[str, ...], u: float) -> str:
    """The option a uniform draw ``u`` in [0, 1) falls on."""
    return options[min(int(u * len(options)), len(options) - 1)]


def to_json_line(record: dict) -> str:
    """A record as one compact JSON line (UTF-8 text kept as is, no \\u escapes)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _shift_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _athlete_line(athlete_id: str, profile: AthleteProfile, start_date: date, weight_kg: float, epoch_s: int) -> str:
    birth = _shift_years(start_date, -profile.age_years) - timedelta(days=profile.birth_days_back)
    return to_json_line(
        {
            "record_type": "athlete",
            "athlete_id": athlete_id,
            "sex": profile.sex,
            "birth_date": birth.isoformat(),
            "weight_kg": round(weight_kg, 1),
            "hr_rest": profile.hr_rest_bpm,
            "hr_max": profile.hr_max_bpm,
            "lthr": profile.lthr_bpm,
            "timezone": profile.tz_name,
            "updated_at": iso_z([epoch_s])[0],
        }
    )


def first_athlete_line(
    athlete_id: str, profile: AthleteProfile, start_date: date, epoch0_s: int, day_offsets_min: np.ndarray
) -> Line:
    """The athlete's first record, at 04:30 local on the athlete's first day."""
    day = profile.first_day
    epoch_s = epoch0_s + day * 86400 + ATHLETE_RECORD_LOCAL_TIME_S - int(day_offsets_min[day]) * 60
    return day, epoch_s, _athlete_line(athlete_id, profile, start_date, profile.weight_kg, epoch_s)


def athlete_update_lines(
    rng: np.random.Generator,
    athlete_id: str,
    profile: AthleteProfile,
    start_date: date,
    n_days: int,
    epoch0_s: int,
    day_offsets_min: np.ndarray,
) -> list[Line]:
    """Re-emissions of the athlete record every 45-120 days, with a drifting weight (drawn
    from the athlete's training stream after all of its sessions)."""
    lines: list[Line] = []
    weight_kg = profile.weight_kg
    t = profile.first_day + rng.uniform(*ATHLETE_UPDATE_EVERY_DAYS)
    while t < n_days:
        d = int(t)
        weight_kg = float(np.clip(weight_kg + rng.normal(0.0, WEIGHT_DRIFT_SIGMA_KG), *WEIGHT_RANGE_KG))
        epoch_s = (
            epoch0_s
            + d * 86400
            + ATHLETE_RECORD_LOCAL_TIME_S
            + int(rng.integers(0, ATHLETE_UPDATE_JITTER_S))
            - int(day_offsets_min[d]) * 60
        )
        lines.append((d, epoch_s, _athlete_line(athlete_id, profile, start_date, weight_kg, epoch_s)))
        t = d + rng.uniform(*ATHLETE_UPDATE_EVERY_DAYS)
    return lines


@dataclass
class SessionValues:
    """The measured values of each session as JSON-ready Python objects (lists in session
    order); dirt overwrites some of them in place."""

    duration_s: list
    distance_m: list
    avg_hr_bpm: list
    max_hr_bpm: list
    start_time: list[str]  # local ISO-8601 with offset


def session_values(
    sessions: Sessions,
    duration_s: np.ndarray,
    distance_m: np.ndarray,
    local_start_epoch_s: np.ndarray,
    utc_offset_min: np.ndarray,
    offset_texts: dict[int, str],
) -> SessionValues:
    """The values of every session, start times as local time with the UTC offset of the day."""
    start_local = iso_seconds(local_start_epoch_s)
    return SessionValues(
        duration_s=duration_s.tolist(),
        distance_m=distance_m.tolist(),
        avg_hr_bpm=sessions.avg_hr_bpm.tolist(),
        max_hr_bpm=sessions.max_hr_bpm.tolist(),
        start_time=[s + offset_texts[int(o)] for s, o in zip(start_local, utc_offset_min.tolist(), strict=True)],
    )


def generic_notes(sessions: Sessions, calendar: TrainingCalendar) -> list[str]:
    """The short generic note of every session (what it was: "tempo run", "race: 10K"), from the
    note draws of the training stream; `notes.session_notes` replaces some with state notes."""
    kind_l, u_note_l, u_suffix_l = sessions.kind.tolist(), sessions.u_note.tolist(), sessions.u_note_suffix.tolist()
    sport_names = [SPORTS[k] for k in sessions.sport.tolist()]
    race_label = {int(s): RACE_LABELS[int(calendar.race_distance_idx[p])] for p, s in enumerate(sessions.race_index)}
    notes = []
    for s, kind in enumerate(kind_l):
        if kind == KIND_RACE:
            label = race_label[s]
            notes.append(pick((f"race: {label}", f"{label} race", f"race day - {label}"), u_note_l[s]))
        else:
            notes.append(pick(_NOTES[(sport_names[s], kind)], u_note_l[s]) + pick(_NOTE_SUFFIXES, u_suffix_l[s]))
    return notes


def session_records(
    session_ids: list[str],
    athlete_id: str,
    sessions: Sessions,
    values: SessionValues,
    elevation_gain_m: np.ndarray,
    updated_at: list[str],
    notes: list[str],
    splits: dict[int, list[dict]] | None = None,
) -> list[dict]:
    """The first version of every session record, in session order; a race carries its
    per-km `splits` (by session position) as its last field."""
    splits = splits or {}
    kind_l, rpe_l, elev_l = sessions.kind.tolist(), sessions.rpe.tolist(), elevation_gain_m.tolist()
    sport_names = [SPORTS[k] for k in sessions.sport.tolist()]
    records = []
    for s, sid in enumerate(session_ids):
        records.append(
            {
                "record_type": "session",
                "session_id": sid,
                "athlete_id": athlete_id,
                "sport": sport_names[s],
                "start_time": values.start_time[s],
                "duration_s": values.duration_s[s],
                "distance_m": values.distance_m[s],
                "elevation_gain_m": elev_l[s],
                "avg_hr": values.avg_hr_bpm[s],
                "max_hr": values.max_hr_bpm[s],
                "rpe": rpe_l[s],
                "notes": notes[s],
                "is_race": kind_l[s] == KIND_RACE,
                "source": "app",
                "updated_at": updated_at[s],
            }
        )
        if s in splits:
            records[-1]["splits"] = splits[s]
    return records
