"""Time zones of the simulated athletes: UTC offsets with EU/US daylight-saving rules, and
the ISO-8601 text of timestamps (epoch seconds)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from numpy.typing import ArrayLike

EPOCH_DATE = date(1970, 1, 1)

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
TIMEZONE_NAMES: tuple[str, ...] = tuple(t[0] for t in _TIMEZONES)
TIMEZONE_WEIGHTS = np.array([t[3] for t in _TIMEZONES]) / sum(t[3] for t in _TIMEZONES)


def _nth_sunday(year: int, month: int, n: int) -> date:
    """n-th Sunday of a month (n=-1: the last one)."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 6) % 7)


def _dst_window(rule: str, year: int) -> tuple[date, date]:
    """First local day with summer time and first local day without it again."""
    if rule == "eu":
        return _nth_sunday(year, 3, -1), _nth_sunday(year, 10, -1)
    return _nth_sunday(year, 3, 2), _nth_sunday(year, 11, 1)


def utc_offset_minutes(tz_name: str, local_day: date) -> int:
    """UTC offset (minutes) of a generator timezone on a local date, for local times from
    05:00 on (DST switches happen earlier in the night). Current EU/US rules for all years."""
    for name, std_offset_min, rule, _ in _TIMEZONES:
        if name == tz_name:
            if rule is None:
                return std_offset_min
            start, end = _dst_window(rule, local_day.year)
            return std_offset_min + 60 if start <= local_day < end else std_offset_min
    raise ValueError(f"unknown generator timezone {tz_name!r}")


def offset_minutes_table(days: list[date]) -> np.ndarray:
    """UTC offsets (minutes) as an int64 array [timezone index, day index]."""
    return np.array([[utc_offset_minutes(name, d) for d in days] for name in TIMEZONE_NAMES], dtype=np.int64)


def offset_str(offset_min: int) -> str:
    """An offset in minutes as ISO-8601 text: 60 -> '+01:00', -210 -> '-03:30'."""
    sign = "+" if offset_min >= 0 else "-"
    m = abs(offset_min)
    return f"{sign}{m // 60:02d}:{m % 60:02d}"


def iso_seconds(epoch_s: ArrayLike) -> list[str]:
    """Epoch seconds (array-like) as ISO-8601 text without an offset: '2024-01-01T07:30:00'."""
    arr = np.asarray(epoch_s, dtype=np.int64).astype("datetime64[s]")
    return np.datetime_as_string(arr, unit="s").tolist()


def iso_z(epoch_s: ArrayLike) -> list[str]:
    """Epoch seconds (array-like) as ISO-8601 UTC text: '2024-01-01T07:30:00Z'."""
    return [s + "Z" for s in iso_seconds(epoch_s)]
