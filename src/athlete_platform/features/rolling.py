"""Daily rolling features of one athlete (DESIGN.md section 4), pure pandas/numpy.

The core is :func:`daily_feature_arrays`: numpy arrays of one athlete in, one array per feature
out. The feature pipeline calls it once per athlete on slices of Arrow record batches
(`features.athlete_batches`, Spark ``mapInArrow``); :func:`athlete_daily_features` is the same
computation on pandas frames (tests, notebooks). It is incremental: the load states are resumed from the athlete's
already-computed rows of the 27 days before ``start_date``, and the session windows
(7, 28 and 90 days) are rebuilt from the sessions and races of ``start_date - 89`` onwards,
so a run only needs about three months of input whatever the athlete's history length.
Splitting a date range anywhere and resuming gives the same rows as one full recompute.

Speed: every window is a numpy reduction over a dense per-day grid (no per-day Python
loop); the only sequential loops are the EWMA recursions inside :mod:`metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from athlete_platform.features import metrics
from athlete_platform.lakehouse.tables import ATHLETE_ROLLING_FEATURES

__all__ = [
    "AthleteInputs",
    "FEATURE_COLUMNS",
    "INT_COLUMNS",
    "LOOKBACK_DAYS",
    "PRIOR_DAYS",
    "PRIOR_COLUMNS",
    "RACE_COLUMNS",
    "SESSION_COLUMNS",
    "athlete_daily_features",
    "daily_feature_arrays",
]

_NOT_FEATURES = frozenset({"athlete_id", "computed_at", "_run_id"})
#: Columns of :func:`daily_feature_arrays` and :func:`athlete_daily_features`, in table order
#: (``feature_date`` first).
FEATURE_COLUMNS: list[str] = [c for c in ATHLETE_ROLLING_FEATURES.column_names if c not in _NOT_FEATURES]
#: Feature columns returned as int32 (Spark INT); every other feature is float64 (NaN = null).
INT_COLUMNS: tuple[str, ...] = (
    "sessions_7d",
    "sessions_28d",
    "days_since_last_session",
    "history_days",
    "runs_with_hr_42d",
)

#: Columns read from ``sessions`` / ``races`` / ``prior`` (others are ignored).
SESSION_COLUMNS: tuple[str, ...] = (
    "session_date",
    "sport",
    "duration_s",
    "distance_m",
    "avg_hr",
    "session_load",
    "is_race",
)
RACE_COLUMNS: tuple[str, ...] = ("race_date", "vdot")
PRIOR_COLUMNS: tuple[str, ...] = (
    "feature_date",
    "daily_load",
    "atl",
    "ctl",
    "ewma_acute_load",
    "ewma_chronic_load",
    "days_since_last_session",
)

#: Bumped whenever a feature is added or its formula changes: the pipeline then recomputes
#: every stored day once (`features.pipeline`), so no row keeps an old definition.
DEFINITION_VERSION = "2"  # 2: the heart-rate/speed line (issue 14)

SHORT_WINDOW_DAYS = 7
LONG_WINDOW_DAYS = 28
VDOT_WINDOW_DAYS = 90
#: The heart-rate/speed relation of training runs: six weeks, long enough for a stable line,
#: short enough to follow fitness (the CTL time constant is 42 days too).
HR_SPEED_WINDOW_DAYS = 42
#: Fewer runs, or a narrower heart-rate spread, leave the slope undefined (a line through a
#: cluster of easy runs says nothing about speed at another heart rate).
HR_SPEED_MIN_RUNS = 5
HR_SPEED_MIN_SD_BPM = 2.0
#: Days of sessions and races before ``start_date`` the caller passes: day ``start - 89``
#: is the oldest day any window of ``start_date`` reaches.
LOOKBACK_DAYS: int = VDOT_WINDOW_DAYS - 1
#: Days of prior feature rows needed to resume the load states (the carried daily loads).
PRIOR_DAYS: int = metrics.ACWR_CHRONIC_DAYS - 1

_M_PER_KM = 1000.0


@dataclass(frozen=True)
class AthleteInputs:
    """One athlete's input rows as arrays, in any order.

    Days are day numbers (days since 1970-01-01, int64). Floats are float64 with NaN for null.
    """

    session_day: np.ndarray
    session_is_run: np.ndarray  # bool: sport == "run"
    duration_s: np.ndarray
    distance_m: np.ndarray
    avg_hr: np.ndarray
    session_load: np.ndarray
    session_is_race: np.ndarray  # bool
    race_day: np.ndarray
    race_vdot: np.ndarray
    prior_day: np.ndarray
    #: The stored feature rows of ``prior_day``: every name of :data:`PRIOR_COLUMNS` but ``feature_date``.
    prior: dict[str, np.ndarray]


def athlete_daily_features(
    sessions: pd.DataFrame,
    races: pd.DataFrame,
    prior: pd.DataFrame,
    start_date: date,
    end_date: date,
    first_session_date: date,
) -> pd.DataFrame:
    """Daily features of ONE athlete for ``start_date .. end_date`` (both inclusive).

    The pandas form of :func:`daily_feature_arrays` (same rules, same values).

    Args:
        sessions: The athlete's sessions (:data:`SESSION_COLUMNS`): ``session_date`` (date,
            datetime or datetime64), ``sport``, ``duration_s``, ``distance_m``, ``avg_hr``
            (NaN when not recorded) and the final ``session_load`` (finite, >= 0). Must cover
            ``start_date - 89 .. end_date``; rows outside that range are ignored. A missing
            ``duration_s`` / ``distance_m`` counts as 0.
        races: The athlete's races (:data:`RACE_COLUMNS`): ``race_date``, ``vdot``; same range
            rule as ``sessions``; a NaN ``vdot`` is ignored.
        prior: The athlete's stored feature rows (:data:`PRIOR_COLUMNS` at least) of days
            ``start_date - 27 .. start_date - 1`` that exist (none before
            ``first_session_date``); rows outside that range are ignored. Empty means a full recompute,
            which must start at ``first_session_date``.
        start_date: First day to compute (>= ``first_session_date``).
        end_date: Last day to compute; before ``start_date`` gives an empty frame.
        first_session_date: Day of the athlete's first session ever (history day 0).

    Returns:
        One row per day with :data:`FEATURE_COLUMNS`: ``feature_date`` as ``datetime.date``
        objects, :data:`INT_COLUMNS` as int32, the rest float64 with NaN for null.

    Raises:
        ValueError: for missing columns, and as :func:`daily_feature_arrays`.
    """
    start, end, first = _day_number(start_date), _day_number(end_date), _day_number(first_session_date)
    _check_span(start, end, first)
    if end < start:
        return _frame(_empty_columns())
    return _frame(daily_feature_arrays(_inputs_of_frames(sessions, races, prior), start, end, first))


def daily_feature_arrays(inputs: AthleteInputs, start: int, end: int, first: int) -> dict[str, np.ndarray]:
    """Daily features of ONE athlete for the days ``start .. end`` (day numbers, inclusive).

    ``first`` is the day of the athlete's first session ever (history day 0). The rows of
    ``inputs`` must cover the sessions and races of ``start - 89 .. end`` (rows outside are
    ignored) and the stored feature rows of ``start - 27 .. start - 1`` that exist (none before
    ``first``; none at all means a full recompute, which must start at ``first``).

    Returns:
        One array per name of :data:`FEATURE_COLUMNS`, one value per day: ``feature_date`` as
        ``datetime64[D]``, :data:`INT_COLUMNS` as int32, the rest float64 with NaN for null.

    Definitions beyond DESIGN.md section 4 (``d`` = the row's day, windows include ``d``):

    * ``longest_session_28d_m``: NaN when there is no session in ``d-27..d``.
    * ``avg_pace_28d_s_per_km``: runs with distance > 0 only; NaN when there is none.
    * ``avg_hr_28d``: duration-weighted over sessions with HR; NaN when there is none.
    * ``days_since_last_session``: from the sessions passed, else carried from the prior
      rows' last (the last session is older than ``start - 89``).
    * ``vdot_best_90d``: best race VDOT on ``d-89..d`` (a race on ``d`` counts); NaN if none.
    * ``runs_with_hr_42d``, ``run_hr_mean_42d``, ``run_log_speed_mean_42d``,
      ``run_log_speed_per_bpm_42d``: the least-squares line of log speed (m/s) on avg_hr over the
      training runs of ``d-41..d`` (sport run, distance and duration > 0, heart rate recorded,
      not a race; each run one point). Means are NaN without such a run; the slope is NaN with
      fewer than 5 runs or a heart-rate standard deviation under 2 bpm. The line gives the
      athlete's speed at any heart rate (`on_demand.aerobic_vdot` reads it at 75 % of the
      heart-rate reserve).

    The load states resume from the prior rows as stored (their ``daily_load``, ``atl``,
    ``ctl`` and EWMA columns), not from the sessions before ``start``: a session that arrives
    late for an already-computed day is only reflected after recomputing from that day.

    Raises:
        ValueError: for sessions before ``first``, a negative or missing ``session_load``, no
            prior rows with ``start`` other than ``first``, or prior rows that are not exactly
            one per day ``max(first, start - 27) .. start - 1``.
    """
    _check_span(start, end, first)
    if end < start:
        return _empty_columns()
    state, carried_days_since = _resume_state(inputs, start, first)
    grid = _DayGrid(start - LOOKBACK_DAYS, end)
    daily = _daily_session_totals(inputs, grid, first)
    loads = daily["load"][LOOKBACK_DAYS:]
    load_features, _ = metrics.compute(loads, state)
    # compute() keeps only the final EWMA states; the table stores them per day.
    ewma_acute, ewma_chronic = metrics.acwr_ewma_states(loads, state.e7, state.e28)

    columns: dict[str, np.ndarray] = {
        "feature_date": grid.output_days(),
        "daily_load": loads,
        **{name: load_features[name] for name in ("atl", "ctl", "tsb", "acwr_rolling", "acwr_ewma")},
        "ewma_acute_load": ewma_acute,
        "ewma_chronic_load": ewma_chronic,
        "monotony_7d": load_features["monotony_7d"],
        "strain_7d": load_features["strain_7d"],
        **_volume_features(daily),
        "days_since_last_session": _days_since_last_session(daily["count"], grid, first, carried_days_since),
        "vdot_best_90d": _best_vdot(inputs, grid, first),
        "history_days": grid.output_day_numbers() - first,
        **_hr_speed_features(daily),
    }
    return {name: _typed(name, columns[name]) for name in FEATURE_COLUMNS}


def _check_span(start: int, end: int, first: int) -> None:
    if start < first:
        raise ValueError(
            f"start_date {np.datetime64(start, 'D')} is before first_session_date {np.datetime64(first, 'D')}: "
            "features start on the athlete's first session day."
        )


# --------------------------------------------------------------------------
# Day grid and input handling
# --------------------------------------------------------------------------


class _DayGrid:
    """Dense calendar ``base .. end`` (day numbers since 1970-01-01); outputs start at index 89."""

    def __init__(self, base: int, end: int) -> None:
        self.base = base
        self.size = end - base + 1

    def index(self, day_numbers: np.ndarray) -> np.ndarray:
        return day_numbers - self.base

    def contains(self, day_numbers: np.ndarray) -> np.ndarray:
        offset = day_numbers - self.base
        return (offset >= 0) & (offset < self.size)

    def output_day_numbers(self) -> np.ndarray:
        return self.base + np.arange(LOOKBACK_DAYS, self.size, dtype=np.int64)

    def output_days(self) -> np.ndarray:
        return self.output_day_numbers().astype("datetime64[D]")


def _day_number(value: Any) -> int:
    """Days since 1970-01-01 of a date, datetime, Timestamp or ISO string."""
    return int(pd.Timestamp(value).to_datetime64().astype("datetime64[D]").astype(np.int64))


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _day_numbers(values: pd.Series, column: str) -> np.ndarray:
    """Days since 1970-01-01 of a column of dates / datetimes (any time of day is dropped)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"{column} is timezone-aware; pass UTC calendar dates")
    raw = values.to_numpy()
    if raw.dtype == object and not values.isna().any():
        try:  # date objects (what Arrow gives for a DATE column): 20x faster than numpy's parser
            return np.fromiter((v.toordinal() for v in raw), dtype=np.int64, count=len(raw)) - _EPOCH_ORDINAL
        except AttributeError:
            pass  # e.g. ISO strings
    days = np.asarray(raw, dtype="datetime64[D]")
    if np.isnat(days).any():
        raise ValueError(f"{column} has missing values")
    return days.astype(np.int64)


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing the columns {missing}; it has {list(frame.columns)}")


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=np.float64, na_value=np.nan)


def _flags(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype=bool, na_value=False)


def _inputs_of_frames(sessions: pd.DataFrame, races: pd.DataFrame, prior: pd.DataFrame | None) -> AthleteInputs:
    """The arrays of the pandas inputs (columns checked, dates as day numbers)."""
    _require_columns(sessions, SESSION_COLUMNS, "sessions")
    _require_columns(races, RACE_COLUMNS, "races")
    if prior is None or len(prior) == 0:
        prior_day, prior_values = np.array([], dtype=np.int64), {c: np.array([]) for c in PRIOR_COLUMNS[1:]}
    else:
        _require_columns(prior, PRIOR_COLUMNS, "prior")
        prior_day = _day_numbers(prior["feature_date"], "prior.feature_date")
        prior_values = {c: _floats(prior, c) for c in PRIOR_COLUMNS[1:]}
    return AthleteInputs(
        session_day=_day_numbers(sessions["session_date"], "sessions.session_date"),
        session_is_run=_flags(sessions["sport"].eq("run")),
        duration_s=_floats(sessions, "duration_s"),
        distance_m=_floats(sessions, "distance_m"),
        avg_hr=_floats(sessions, "avg_hr"),
        session_load=_floats(sessions, "session_load"),
        session_is_race=_flags(sessions["is_race"]),
        race_day=_day_numbers(races["race_date"], "races.race_date"),
        race_vdot=_floats(races, "vdot"),
        prior_day=prior_day,
        prior=prior_values,
    )


def _rows_in_grid(
    days: np.ndarray, grid: _DayGrid, first: int, what: str, ties: tuple[np.ndarray, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Grid positions of the rows dated inside the grid and their row positions, in date order.

    Rows of one day are ordered by the values in ``ties``: the order of a day's sums then does
    not depend on the order the rows came in, so the same sessions give the same bits (Spark
    delivers an athlete's rows in any order, and a re-run must find nothing changed).
    """
    if len(days) and days.min() < first:
        raise ValueError(
            f"{what} has rows dated before first_session_date "
            f"({np.datetime64(int(days.min()), 'D')}); pass the athlete's true first session date."
        )
    keep = np.flatnonzero(grid.contains(days))
    order = keep[np.lexsort((*(values[keep] for values in reversed(ties)), days[keep]))]
    return grid.index(days[order]), order


def _resume_state(inputs: AthleteInputs, start: int, first: int) -> tuple[metrics.LoadState, int | None]:
    """LoadState at the end of day ``start - 1`` and that day's days_since_last_session."""
    days = inputs.prior_day
    if len(days) == 0:
        if start != first:
            raise ValueError(
                f"prior is empty, which means a full recompute, but start_date "
                f"{np.datetime64(start, 'D')} is not first_session_date {np.datetime64(first, 'D')}: "
                f"pass the athlete's feature rows of the {PRIOR_DAYS} days before start_date, "
                "or start at first_session_date."
            )
        return metrics.LoadState.initial(), None
    keep = np.flatnonzero((days >= start - PRIOR_DAYS) & (days < start))
    order = keep[np.argsort(days[keep], kind="stable")]
    expected = np.arange(max(first, start - PRIOR_DAYS), start, dtype=np.int64)
    if not np.array_equal(days[order], expected):
        raise ValueError(
            f"prior must hold exactly one row per day {_span(expected)} (the days before start_date "
            f"{np.datetime64(start, 'D')} since the first session, at most {PRIOR_DAYS}); it holds "
            f"{_span(days[order])} ({len(order)} rows). Recompute the missing days first or run a full recompute."
        )
    if len(order) == 0:  # start == first and only rows outside the window: a full recompute
        return metrics.LoadState.initial(), None
    recent_loads = np.zeros(PRIOR_DAYS, dtype=np.float64)  # days before the first session count as 0
    recent_loads[PRIOR_DAYS - len(order) :] = inputs.prior["daily_load"][order]
    last = order[-1]
    state = metrics.LoadState(
        atl=inputs.prior["atl"][last],
        ctl=inputs.prior["ctl"][last],
        e7=inputs.prior["ewma_acute_load"][last],
        e28=inputs.prior["ewma_chronic_load"][last],
        recent_loads=tuple(recent_loads),
        days_processed=start - first,
    )
    return state, int(inputs.prior["days_since_last_session"][last])


def _span(days: np.ndarray) -> str:
    if len(days) == 0:
        return "no days"
    return f"{np.datetime64(int(days[0]), 'D')}..{np.datetime64(int(days[-1]), 'D')}"


# --------------------------------------------------------------------------
# Per-day totals and windows
# --------------------------------------------------------------------------


def _daily_session_totals(inputs: AthleteInputs, grid: _DayGrid, first: int) -> dict[str, np.ndarray]:
    """Per-day sums (and the longest distance) of the sessions inside the grid."""
    ties = (inputs.session_load, inputs.duration_s, inputs.distance_m, inputs.avg_hr)
    idx, order = _rows_in_grid(inputs.session_day, grid, first, "sessions", ties)
    load = inputs.session_load[order]
    if not (np.isfinite(load) & (load >= 0)).all():
        raise ValueError("sessions.session_load must be finite and >= 0 (impute missing loads first)")
    duration_s = np.nan_to_num(inputs.duration_s[order], nan=0.0)
    distance_m = np.nan_to_num(inputs.distance_m[order], nan=0.0)
    avg_hr = inputs.avg_hr[order]
    is_run = inputs.session_is_run[order] & (distance_m > 0)
    has_hr = np.isfinite(avg_hr)
    is_race = inputs.session_is_race[order]
    line_point = is_run & has_hr & (duration_s > 0) & ~is_race
    with np.errstate(divide="ignore", invalid="ignore"):
        log_speed = np.where(line_point, np.log(distance_m / duration_s), 0.0)
    hr = np.where(line_point, avg_hr, 0.0)

    def per_day(weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(idx, weights=weights, minlength=grid.size).astype(np.float64)

    longest = np.full(grid.size, -np.inf)
    np.maximum.at(longest, idx, distance_m)
    return {
        "load": per_day(load),
        "count": per_day(),
        "distance_m": per_day(distance_m),
        "duration_s": per_day(duration_s),
        "longest_m": longest,
        "run_duration_s": per_day(np.where(is_run, duration_s, 0.0)),
        "run_distance_m": per_day(np.where(is_run, distance_m, 0.0)),
        "hr_weight_s": per_day(np.where(has_hr, duration_s, 0.0)),
        "hr_weighted_bpm_s": per_day(np.where(has_hr, avg_hr * duration_s, 0.0)),
        "line_runs": per_day(line_point.astype(np.float64)),
        "line_hr": per_day(hr),
        "line_log_speed": per_day(log_speed),
        "line_hr_squared": per_day(hr * hr),
        "line_hr_log_speed": per_day(hr * log_speed),
    }


def _windows(per_day: np.ndarray, days: int) -> np.ndarray:
    """Views of ``days`` consecutive values ending on each output day, shape (outputs, days).

    Each window is reduced on its own, so a value never depends on where the grid starts
    (what makes incremental and full runs agree to the last bit).
    """
    return sliding_window_view(per_day[LOOKBACK_DAYS - days + 1 :], days)


def _volume_features(daily: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    short, long = SHORT_WINDOW_DAYS, LONG_WINDOW_DAYS
    count_28d = _windows(daily["count"], long).sum(axis=1)
    longest = _windows(daily["longest_m"], long).max(axis=1)
    run_km = _windows(daily["run_distance_m"], long).sum(axis=1) / _M_PER_KM
    run_s = _windows(daily["run_duration_s"], long).sum(axis=1)
    hr_weight = _windows(daily["hr_weight_s"], long).sum(axis=1)
    hr_weighted = _windows(daily["hr_weighted_bpm_s"], long).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pace = np.where(run_km > 0, run_s / run_km, np.nan)
        avg_hr = np.where(hr_weight > 0, hr_weighted / hr_weight, np.nan)
    return {
        "distance_7d_m": _windows(daily["distance_m"], short).sum(axis=1),
        "distance_28d_m": _windows(daily["distance_m"], long).sum(axis=1),
        "duration_7d_s": _windows(daily["duration_s"], short).sum(axis=1),
        "duration_28d_s": _windows(daily["duration_s"], long).sum(axis=1),
        "sessions_7d": _windows(daily["count"], short).sum(axis=1),
        "sessions_28d": count_28d,
        "longest_session_28d_m": np.where(count_28d > 0, longest, np.nan),
        "avg_pace_28d_s_per_km": pace,
        "avg_hr_28d": avg_hr,
    }


def _hr_speed_features(daily: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The least-squares line of log speed on heart rate over each 42-day window (sums of the
    window's per-day sums, each window on its own)."""
    n, hr, speed, hr2, hr_speed = (
        _windows(daily[k], HR_SPEED_WINDOW_DAYS).sum(axis=1)
        for k in ("line_runs", "line_hr", "line_log_speed", "line_hr_squared", "line_hr_log_speed")
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        hr_mean = np.where(n > 0, hr / n, np.nan)
        speed_mean = np.where(n > 0, speed / n, np.nan)
        sxx = hr2 - hr * hr_mean  # n * variance of the heart rates
        sxy = hr_speed - hr * speed_mean
        spread_ok = (n >= HR_SPEED_MIN_RUNS) & (sxx >= n * HR_SPEED_MIN_SD_BPM**2)
        slope = np.where(spread_ok, sxy / sxx, np.nan)
    return {
        "runs_with_hr_42d": n,
        "run_hr_mean_42d": hr_mean,
        "run_log_speed_mean_42d": speed_mean,
        "run_log_speed_per_bpm_42d": slope,
    }


def _days_since_last_session(count_per_day: np.ndarray, grid: _DayGrid, first: int, carried: int | None) -> np.ndarray:
    """Days since the latest session on or before each output day."""
    positions = np.arange(grid.size, dtype=np.int64)
    last_session = np.maximum.accumulate(np.where(count_per_day > 0, positions, -1))[LOOKBACK_DAYS:]
    out_positions = positions[LOOKBACK_DAYS:]
    if carried is not None:
        # Last session older than the sessions passed: prior's last row (day start-1) knows it.
        fallback = carried + (out_positions - (LOOKBACK_DAYS - 1))
    else:
        # Full recompute: the first session day is by definition a session day.
        fallback = grid.output_day_numbers() - first
    return np.where(last_session >= 0, out_positions - last_session, fallback)


def _best_vdot(inputs: AthleteInputs, grid: _DayGrid, first: int) -> np.ndarray:
    """Best race VDOT over ``d-89 .. d`` for each output day (NaN when no race)."""
    idx, order = _rows_in_grid(inputs.race_day, grid, first, "races")
    vdot = inputs.race_vdot[order]
    ok = np.isfinite(vdot)
    best_per_day = np.full(grid.size, -np.inf)
    np.maximum.at(best_per_day, idx[ok], vdot[ok])
    best = _windows(best_per_day, VDOT_WINDOW_DAYS).max(axis=1)
    return np.where(np.isfinite(best), best, np.nan)


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def _empty_columns() -> dict[str, np.ndarray]:
    return {name: _typed(name, np.array([], dtype=np.int64)) for name in FEATURE_COLUMNS}


def _typed(name: str, values: np.ndarray) -> np.ndarray:
    """A column as the table stores it: dates, int32 counts, float64 features."""
    if name == "feature_date":
        return np.asarray(values).astype("datetime64[D]")
    if name in INT_COLUMNS:
        return np.asarray(values).astype(np.int32)
    return np.asarray(values, dtype=np.float64)


def _frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The output frame: table column order, date objects for ``feature_date``."""
    data = {name: columns[name].astype(object) if name == "feature_date" else columns[name] for name in FEATURE_COLUMNS}
    return pd.DataFrame(data, columns=FEATURE_COLUMNS)
