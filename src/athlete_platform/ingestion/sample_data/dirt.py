"""Realistic dirt in the export: invalid values, missing heart rate, late arrivals, exact and
updated duplicates, and malformed lines. Dirt comes from its own random streams, so changing
a dirt rate never changes the underlying training or the latent truth."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from athlete_platform.ingestion.sample_data.config import (
    FUTURE_MAX_DAYS,
    FUTURE_MIN_DAYS,
    INVALID_RULES,
    GeneratorConfig,
)
from athlete_platform.ingestion.sample_data.records import Line, SessionValues, pick, to_json_line
from athlete_platform.ingestion.sample_data.timezones import EPOCH_DATE, iso_seconds, offset_str, utc_offset_minutes
from athlete_platform.ingestion.sample_data.training import Sessions

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

# INVALID_RULES positions: speed_plausible (3) only applies to runs, other sports draw one of 4
_RULE_OF_DRAW_RUN = np.array([0, 1, 2, 3, 4])
_RULE_OF_DRAW_OTHER = np.array([0, 1, 2, 4, 4])
_HR_RANGE_RULE = 2


@dataclass(frozen=True)
class SessionDirt:
    """Per session (arrays in session order): which dirt it gets, and the draws that shape it."""

    invalid: np.ndarray  # carries one impossible value
    rule: np.ndarray  # index into INVALID_RULES (meaningful where invalid)
    u_invalid_value: np.ndarray
    missing_hr: np.ndarray
    late: np.ndarray  # first record lands in a later day's file
    late_lag_days: np.ndarray
    u_late_arrival: np.ndarray  # local arrival time on the later day
    exact_duplicate: np.ndarray
    updated_duplicate: np.ndarray
    duplicate_lag_days: np.ndarray  # second copy lands 0-2 days after the first
    u_update_delay: np.ndarray
    u_reorder: np.ndarray
    u_edit: np.ndarray
    u_edit_2: np.ndarray


def draw_session_dirt(
    rng: np.random.Generator, config: GeneratorConfig, sessions: Sessions, day_abs: np.ndarray
) -> SessionDirt:
    """Draw the dirt of an athlete's sessions from the athlete's dirt stream (fixed draw order)."""
    n = len(day_abs)
    u_inv, u_rule, u_inv_p = rng.random(n), rng.random(n), rng.random(n)
    u_miss = rng.random(n)
    u_late, late_lag, u_arr = rng.random(n), rng.integers(1, 4, n), rng.random(n)
    u_dup, u_dtype, dup_lag, u_ddelay = rng.random(n), rng.random(n), rng.integers(0, 3, n), rng.random(n)
    u_reorder, u_edit, u_edit2 = rng.random(n), rng.random(n), rng.random(n)

    is_run = sessions.sport == 0
    invalid = (u_inv < config.invalid_rate) & ~sessions.is_race
    n_rules = np.where(is_run, 5, 4)
    rule_pos = np.minimum((u_rule * n_rules).astype(np.int64), n_rules - 1)
    rule = np.where(is_run, _RULE_OF_DRAW_RUN[rule_pos], _RULE_OF_DRAW_OTHER[rule_pos])
    missing = (u_miss < config.missing_hr_rate) & ~(invalid & (rule == _HR_RANGE_RULE))
    late = (u_late < config.late_rate) & (day_abs + late_lag <= config.n_days - 1)
    dup = u_dup < config.duplicate_rate
    exact = dup & (u_dtype < 0.5)
    return SessionDirt(
        invalid=invalid,
        rule=rule,
        u_invalid_value=u_inv_p,
        missing_hr=missing,
        late=late,
        late_lag_days=late_lag,
        u_late_arrival=u_arr,
        exact_duplicate=exact,
        updated_duplicate=dup & ~exact,
        duplicate_lag_days=dup_lag,
        u_update_delay=u_ddelay,
        u_reorder=u_reorder,
        u_edit=u_edit,
        u_edit_2=u_edit2,
    )


@dataclass(frozen=True)
class Arrivals:
    """When and where each session's record arrives (arrays in session order)."""

    local_start_epoch_s: np.ndarray  # session start as local wall-clock seconds since 1970
    utc_offset_min: np.ndarray  # UTC offset of the session day
    first_epoch_s: np.ndarray  # updated_at of the first version = its arrival
    second_epoch_s: np.ndarray  # updated_at of an updated duplicate
    first_file_day: np.ndarray
    second_file_day: np.ndarray


def schedule_arrivals(
    sessions: Sessions,
    dirt: SessionDirt,
    duration_s: np.ndarray,
    day_abs: np.ndarray,
    day_offsets_min: np.ndarray,
    epoch0_s: int,
    as_of_epoch_s: int,
    n_days: int,
) -> Arrivals:
    """Records are uploaded 2-120 min after the session ends, into the file of the session day;
    late ones arrive 06:00-23:00 local 1-3 days later, into that day's file; nothing arrives
    after as_of. An updated duplicate is stamped 10 min to 2 days after the first version."""
    off = day_offsets_min[day_abs]
    local_epoch = epoch0_s + day_abs * 86400 + sessions.start_of_day_s
    utc_start = local_epoch - off * 60
    upd0 = utc_start + duration_s + 120 + np.rint(sessions.u_upload_delay * 7080).astype(np.int64)
    late_day = day_abs + dirt.late_lag_days
    arr_local = epoch0_s + late_day * 86400 + np.rint((6.0 + 17.0 * dirt.u_late_arrival) * 3600).astype(np.int64)
    late_off = day_offsets_min[np.minimum(late_day, n_days - 1)]
    upd0 = np.where(dirt.late, arr_local - late_off * 60, upd0)
    upd0 = np.minimum(upd0, as_of_epoch_s - 3600)
    upd1 = np.minimum(upd0 + 600 + np.rint(dirt.u_update_delay * 172800).astype(np.int64), as_of_epoch_s - 60)
    file0 = np.where(dirt.late, late_day, day_abs)
    return Arrivals(
        local_start_epoch_s=local_epoch,
        utc_offset_min=off,
        first_epoch_s=upd0,
        second_epoch_s=upd1,
        first_file_day=file0,
        second_file_day=np.minimum(file0 + dirt.duplicate_lag_days, n_days - 1),
    )


def apply_invalid_values(
    values: SessionValues, dirt: SessionDirt, start_of_day_s: np.ndarray, tz_name: str, as_of_epoch_s: int
) -> dict[str, list[int]]:
    """Give every invalid session one impossible value (in place); session positions by rule."""
    positions: dict[str, list[int]] = {r: [] for r in INVALID_RULES}
    for s in np.nonzero(dirt.invalid)[0].tolist():
        r = int(dirt.rule[s])
        up = float(dirt.u_invalid_value[s])
        if r == 0:  # duration_positive
            values.duration_s[s] = 0 if up < 0.3 else -values.duration_s[s]
        elif r == 1:  # distance_non_negative
            values.distance_m[s] = -max(values.distance_m[s], 100.0)
        elif r == 2:  # hr_range
            values.max_hr_bpm[s] = 300
            if up < 0.4:
                values.avg_hr_bpm[s] = 300
        elif r == 3:  # speed_plausible (run)
            values.distance_m[s] = max(values.distance_m[s], 1000.0)
            values.duration_s[s] = max(1, int(math.floor(values.distance_m[s] / (13.0 + 17.0 * up))))
        else:  # start_not_in_future
            future_day = as_of_epoch_s // 86400 + FUTURE_MIN_DAYS + int(up * (FUTURE_MAX_DAYS - FUTURE_MIN_DAYS))
            offset_min = utc_offset_minutes(tz_name, EPOCH_DATE + timedelta(days=future_day))
            local_epoch_s = future_day * 86400 + int(start_of_day_s[s])
            values.start_time[s] = iso_seconds([local_epoch_s])[0] + offset_str(offset_min)
        positions[INVALID_RULES[r]].append(s)
    return positions


def apply_missing_hr(values: SessionValues, missing_hr: np.ndarray) -> None:
    """Null the heart rates of the sessions without HR (in place)."""
    for s in np.nonzero(missing_hr)[0].tolist():
        values.avg_hr_bpm[s] = None
        values.max_hr_bpm[s] = None


def _edited(record: dict, u_edit: float, u_edit_2: float, updated_at: str) -> dict:
    """A later version of a session record: notes amended, RPE perhaps one off."""
    new = dict(record)
    old_rpe = record["rpe"]
    if u_edit < 0.5:
        new["rpe"] = old_rpe + 1 if (old_rpe < 10 and (u_edit_2 < 0.5 or old_rpe == 1)) else old_rpe - 1
    new["notes"] = record["notes"] + pick(_EDIT_SUFFIXES, float(u_edit_2))
    new["updated_at"] = updated_at
    return new


def session_lines(
    record: dict, s: int, dirt: SessionDirt, first_file_day: int, second_file_day: int, arrival_s: int, edit_at: str
) -> list[Line]:
    """The line(s) of session ``s``: one, or an exact duplicate, or a stale and an updated
    version (the stale one sometimes arriving last). A second copy arrives 1 s plus its
    file-day lag after the first."""
    line = to_json_line(record)
    f0, f1 = first_file_day, second_file_day
    second_arrival_s = arrival_s + 1 + (f1 - f0) * 86400
    if dirt.exact_duplicate[s]:
        return [(f0, arrival_s, line), (f1, second_arrival_s, line)]
    if dirt.updated_duplicate[s]:
        new_line = to_json_line(_edited(record, dirt.u_edit[s], dirt.u_edit_2[s], edit_at))
        if dirt.u_reorder[s] < 0.3:  # the stale version arrives after the newer one
            return [(f0, arrival_s, new_line), (f1, second_arrival_s, line)]
        return [(f0, arrival_s, line), (f1, second_arrival_s, new_line)]
    return [(f0, arrival_s, line)]


def with_malformed_lines(
    rng: np.random.Generator, record_lines: list[str], malformed_rate: float
) -> tuple[list[str], int]:
    """A day's lines with malformed lines inserted at random places: per record line, chance
    ``malformed_rate`` of one more (a truncated copy of a record, or non-JSON garbage).
    Returns the lines and how many are malformed."""
    lines = list(record_lines)
    n_records = len(record_lines)
    n_malformed = int(rng.binomial(n_records, malformed_rate)) if n_records else 0
    for _ in range(n_malformed):
        if rng.random() < 0.7:
            src = record_lines[int(rng.integers(0, n_records))]
            bad = src[: int(rng.integers(1, len(src)))]
        else:
            bad = _GARBAGE_LINES[int(rng.integers(0, len(_GARBAGE_LINES)))]
        lines.insert(int(rng.integers(0, len(lines) + 1)), bad)
    return lines, n_malformed
