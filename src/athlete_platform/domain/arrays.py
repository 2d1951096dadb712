"""Array coercion shared by the vectorised domain and metric functions."""

from __future__ import annotations

import datetime as dt
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd


def as_float_array(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def maybe_scalar(result: np.ndarray) -> np.ndarray | float:
    return float(result) if result.ndim == 0 else result


def as_days(day: Any) -> np.ndarray:
    """Convert dates / datetimes / strings to a 1-D ``datetime64[D]`` array."""
    arr = np.asarray(day)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype.kind == "M":
        out = arr.astype("datetime64[D]")
    else:
        idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(arr, dtype=object)))
        if idx.tz is not None:
            raise ValueError("timezone-aware timestamps are ambiguous; pass local calendar dates")
        out = idx.to_numpy().astype("datetime64[D]")
    if np.any(np.isnat(out)):
        raise ValueError("session days must not contain missing values (NaT)")
    return out


def as_numbers(values: Any) -> np.ndarray | float:
    """Numbers as float64, missing (None, NaN, pd.NA) as NaN: a float for a scalar, else an array.

    A pandas Series is read with ``pd.to_numeric(errors="coerce")`` (an unparseable entry is NaN,
    as a table column with a stray value would be); a scalar must be a number or None.
    """
    if isinstance(values, pd.Series):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if values is None:
        return math.nan
    return maybe_scalar(np.asarray(values, dtype=np.float64))


# Object arrays longer than this are converted per distinct value (see calendar_days).
_FACTORIZE_FROM = 256


def calendar_days(values: Any) -> np.ndarray:
    """Calendar days (``datetime64[D]``, NaT where missing) of dates, datetimes or ISO strings.

    Works on one value (a 0-d array) and on arrays / pandas Series alike. A timezone-aware
    datetime or ISO string with an offset counts as its UTC day; a naive one as its own day.
    """
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[D]")
    if arr.dtype == object and arr.ndim == 1 and arr.size > _FACTORIZE_FROM:
        # Python date objects (as Arrow hands DateType columns to pandas) convert one by one at
        # ~2 µs each; a column repeats few days (birth dates, race dates, the run date), so
        # convert each distinct value once and spread them back (about 10x faster on scoring rows).
        codes, uniques = pd.factorize(arr, use_na_sentinel=True)
        if len(uniques) * 2 < arr.size:
            days = np.append(calendar_days(np.asarray(uniques, dtype=object)), np.datetime64("NaT", "D"))
            return days[codes]  # code -1 (missing) picks the NaT appended last
    try:
        # Fast path for dates, naive datetimes, None and ISO dates. numpy warns on (deprecated)
        # offsets in strings and raises on aware datetimes: those go one by one below.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return arr.astype("datetime64[D]")
    except (ValueError, TypeError, DeprecationWarning, UserWarning):
        pass
    days = [_calendar_day(v) for v in arr.reshape(-1)]
    return np.array(days, dtype="datetime64[D]").reshape(arr.shape)


def _calendar_day(value: Any) -> np.datetime64:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return np.datetime64("NaT", "D")
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{str(value)!r} is not an ISO-8601 date or date-time (e.g. 2025-01-12)") from None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dt.datetime):
        value = value.date()
    return np.datetime64(value, "D")


# --- one value at a time (the serving path), equal to the array functions above ------------

#: Days from 0001-01-01 (`date.toordinal`) to 1970-01-01, numpy's day 0.
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def one_number(value: Any) -> float:
    """`as_numbers` of one value, without numpy's per-call cost for the plain kinds.

    A float is itself, None is NaN and an int is `float(int)` (both round to nearest, as numpy's
    int -> float64 conversion does); anything else (numpy scalars, bools, strings, pd.NA ...) is
    read by `as_numbers` itself, so the answer is the array code's by construction.
    """
    kind = type(value)
    if kind is float:
        return value
    if value is None:
        return math.nan
    if kind is int and -(2**63) <= value < 2**63:
        return float(value)
    return float(as_numbers(value))


def one_day(value: Any) -> int | float | None:
    """Days since 1970-01-01 of one date value as `calendar_days` reads it: an int, NaN where
    missing, or None when the value is not one of the plain kinds read here (the caller then
    asks `calendar_days`, so an unusual value is never read differently).

    Plain kinds: None; an ISO date string ``YYYY-MM-DD``; a `datetime.date`; a naive or aware
    `datetime.datetime` (an aware one counts as its UTC day, as in `calendar_days`); a
    `numpy.datetime64` that converts to a date or naive datetime. `calendar_days` costs ~3 us
    per value through numpy; this ~0.2 us.
    """
    kind = type(value)
    if kind is str:
        if len(value) == 10 and value[4] == "-" and value[7] == "-" and value.isascii():
            year, month, day = value[:4], value[5:7], value[8:]
            if year.isdigit() and month.isdigit() and day.isdigit():
                try:
                    return dt.date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
                except ValueError:
                    return None  # not a real day: calendar_days gives the error
        return None
    if value is None:
        return math.nan
    if kind is np.datetime64:
        value = value.item()  # a date, a naive datetime, None for NaT, an int beyond datetime's range
        kind = type(value)
        if value is None:
            return math.nan
    if kind is dt.date:
        return value.toordinal() - _EPOCH_ORDINAL
    if kind is dt.datetime:
        if value.tzinfo is not None:
            try:
                value = value.astimezone(dt.UTC)
            except OverflowError:  # the UTC day is before year 1 or after 9999
                return None
        return value.toordinal() - _EPOCH_ORDINAL
    return None


def one_day_count(later: Any, earlier: Any) -> float:
    """Whole days from `earlier` to `later` (NaN where either is missing), as
    ``(calendar_days(later) - calendar_days(earlier)) / 1 day`` gives for one pair."""
    later_day, earlier_day = one_day(later), one_day(earlier)
    if later_day is None or earlier_day is None:
        difference = (calendar_days(later) - calendar_days(earlier)) / np.timedelta64(1, "D")
        return float(difference)
    return float(later_day - earlier_day)
