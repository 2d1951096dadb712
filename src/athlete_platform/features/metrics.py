"""Reference implementations of endurance training-load metrics.

Pure numpy/pandas code (no Spark, no I/O) meant to be called per athlete from a
Spark ``mapInArrow`` feature job (`features.athlete_batches`).

Conventions (per athlete, per calendar day ``d``):

* Days without sessions have load 0.  History starts the day *before* the
  athlete's first session with every state at 0; a window that reaches back
  before the first session counts those days as load 0.
* Index 0 of a full daily-load array is the athlete's first-session day.
* Session load is Banister TRIMP; sessions without heart rate get an imputed
  load (see :func:`impute_missing_loads`).
* ``atl``/``ctl``: ``X(d) = X(d-1) + k*(load(d) - X(d-1))``, ``k = 1 - exp(-1/N)``.
* ``tsb(d) = ctl(d-1) - atl(d-1)`` (form on the morning of ``d``).
* ``acwr_rolling``/``acwr_ewma`` are NaN while ``d - first_session_day < 27``
  or when the chronic value is 0.
* ``monotony_7d``/``strain_7d`` use the last 7 daily loads (population std).

Incremental computation is supported through :class:`LoadState` and
:func:`compute`; splitting a series at any point and resuming from the
carried state gives bit-for-bit the same output as a full recompute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from athlete_platform.domain.arrays import as_days, as_float_array

__all__ = [
    "ATL_DAYS",
    "CTL_DAYS",
    "ACWR_ACUTE_DAYS",
    "ACWR_CHRONIC_DAYS",
    "MONOTONY_DAYS",
    "K_ATL",
    "K_CTL",
    "LAMBDA_ACUTE",
    "LAMBDA_CHRONIC",
    "FEATURE_NAMES",
    "to_daily_load",
    "banister_k",
    "ewma_lambda",
    "ewma_states",
    "atl",
    "ctl",
    "acwr_ewma_states",
    "LoadState",
    "compute",
]

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

#: Time constant (days) of the acute training load (fatigue).
ATL_DAYS: int = 7
#: Time constant (days) of the chronic training load (fitness).
CTL_DAYS: int = 42
#: Acute window / EWMA span (days) of the acute:chronic workload ratio.
ACWR_ACUTE_DAYS: int = 7
#: Chronic window / EWMA span (days) of the acute:chronic workload ratio.
ACWR_CHRONIC_DAYS: int = 28
#: Window (days) for training monotony and strain.
MONOTONY_DAYS: int = 7
#: Number of past daily loads a :class:`LoadState` carries (chronic window - 1).
_CARRIED_LOADS: int = ACWR_CHRONIC_DAYS - 1

#: Names of the arrays returned by :func:`compute`, in a stable order.
FEATURE_NAMES: tuple[str, ...] = (
    "atl",
    "ctl",
    "tsb",
    "acwr_rolling",
    "acwr_ewma",
    "monotony_7d",
    "strain_7d",
)


def banister_k(n_days: float) -> float:
    """Return the Banister impulse-response gain ``k = 1 - exp(-1/N)``."""
    if not n_days > 0:
        raise ValueError(f"n_days must be > 0, got {n_days!r}")
    return 1.0 - math.exp(-1.0 / n_days)


def ewma_lambda(n_days: float) -> float:
    """Return the span-style EWMA smoothing factor ``lambda = 2 / (N + 1)``."""
    if not n_days > 0:
        raise ValueError(f"n_days must be > 0, got {n_days!r}")
    return 2.0 / (n_days + 1.0)


#: ``k`` for ATL (N=7).
K_ATL: float = banister_k(ATL_DAYS)
#: ``k`` for CTL (N=42).
K_CTL: float = banister_k(CTL_DAYS)
#: ``lambda`` of the acute ACWR EWMA (N=7): 0.25.
LAMBDA_ACUTE: float = ewma_lambda(ACWR_ACUTE_DAYS)
#: ``lambda`` of the chronic ACWR EWMA (N=28): 2/29.
LAMBDA_CHRONIC: float = ewma_lambda(ACWR_CHRONIC_DAYS)


# --------------------------------------------------------------------------
# Session load
# --------------------------------------------------------------------------


def to_daily_load(
    day: Any,
    load: Any,
    start_day: Any | None = None,
    end_day: Any | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Densify session loads into a gap-free daily series (sum per day).

    The calendar runs from ``start_day`` (default: first session day) to
    ``max(last session day, end_day)``; days without sessions get 0.

    Returns:
        ``(days, daily_load)``: a ``datetime64[D]`` calendar and float64 loads.

    Raises:
        ValueError: if a session falls before ``start_day``.
    """
    days = as_days(day)
    values = as_float_array(load).reshape(-1)
    if days.shape != values.shape:
        raise ValueError("day and load must have the same length")
    first = as_days([start_day])[0] if start_day is not None else None
    last = as_days([end_day])[0] if end_day is not None else None
    if days.size:
        first = days.min() if first is None else first
        last = days.max() if last is None else max(last, days.max())
        if days.min() < first:
            raise ValueError("a session falls before start_day")
    if first is None or last is None or last < first:
        return np.array([], dtype="datetime64[D]"), np.array([], dtype=np.float64)
    n = int((last - first).astype(np.int64)) + 1
    daily = np.zeros(n, dtype=np.float64)
    np.add.at(daily, (days - first).astype(np.int64), values)
    return first + np.arange(n), daily


# --------------------------------------------------------------------------
# Exponentially weighted states
# --------------------------------------------------------------------------


def ewma_states(daily_load: np.ndarray, k: float, initial: float = 0.0) -> np.ndarray:
    """Run ``X(d) = X(d-1) + k * (load(d) - X(d-1))`` starting from ``X(-1) = initial``.

    The recursion is inherently sequential; it is evaluated with a tight
    float loop so that resuming from a carried-forward ``initial`` reproduces a
    full recompute bit for bit.  Also used (with ``k = lambda``) for the ACWR
    EWMA ``E(d) = lambda*load(d) + (1-lambda)*E(d-1)`` (algebraically identical).

    Returns:
        ``X(0..n-1)`` as float64 (the state *after* each day's load).
    """
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k must be in (0, 1], got {k!r}")
    loads = as_float_array(daily_load)
    if loads.ndim != 1:
        raise ValueError("daily_load must be one-dimensional")
    out = []
    x = float(initial)
    for value in loads.tolist():
        x = x + k * (value - x)
        out.append(x)
    return np.asarray(out, dtype=np.float64)


def atl(daily_load: np.ndarray, initial: float = 0.0) -> np.ndarray:
    """Acute training load (fatigue), ``N = ATL_DAYS`` (7)."""
    return ewma_states(daily_load, K_ATL, initial)


def ctl(daily_load: np.ndarray, initial: float = 0.0) -> np.ndarray:
    """Chronic training load (fitness), ``N = CTL_DAYS`` (42)."""
    return ewma_states(daily_load, K_CTL, initial)


def acwr_ewma_states(
    daily_load: np.ndarray, e7_initial: float = 0.0, e28_initial: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Acute (``lambda = 2/8``) and chronic (``lambda = 2/29``) EWMA states for ACWR."""
    return (
        ewma_states(daily_load, LAMBDA_ACUTE, e7_initial),
        ewma_states(daily_load, LAMBDA_CHRONIC, e28_initial),
    )


# --------------------------------------------------------------------------
# Incremental daily features
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadState:
    """State of one athlete at the end of a day ``d-1``.

    Attributes:
        atl: ATL(d-1).
        ctl: CTL(d-1).
        e7: Acute ACWR EWMA E7(d-1).
        e28: Chronic ACWR EWMA E28(d-1).
        recent_loads: Daily loads of days ``d-27 .. d-1`` (oldest first, 27
            values); days before the first session are 0.
        days_processed: Number of days processed so far, i.e.
            ``d - first_session_day`` (0 for a fresh athlete).
    """

    atl: float = 0.0
    ctl: float = 0.0
    e7: float = 0.0
    e28: float = 0.0
    recent_loads: tuple[float, ...] = field(default=(0.0,) * _CARRIED_LOADS)
    days_processed: int = 0

    def __post_init__(self) -> None:
        loads = tuple(float(v) for v in self.recent_loads)
        if len(loads) != _CARRIED_LOADS:
            raise ValueError(f"recent_loads must hold {_CARRIED_LOADS} values, got {len(loads)}")
        if not all(math.isfinite(v) and v >= 0.0 for v in loads):
            raise ValueError("recent_loads must be finite and non-negative")
        if int(self.days_processed) != self.days_processed or self.days_processed < 0:
            raise ValueError("days_processed must be a non-negative integer")
        object.__setattr__(self, "recent_loads", loads)
        object.__setattr__(self, "days_processed", int(self.days_processed))
        for name in ("atl", "ctl", "e7", "e28"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def initial(cls) -> LoadState:
        """State of the day before an athlete's first session (all zeros)."""
        return cls()


def _shifted_sum(padded: np.ndarray, start: int, stop: int, n: int) -> np.ndarray:
    """Sum ``padded[j:j+n]`` for ``j in start..stop-1``, in a fixed order."""
    total = np.zeros(n, dtype=np.float64)
    for j in range(start, stop):
        total += padded[j : j + n]
    return total


def compute(daily_load: np.ndarray, state: LoadState | None = None) -> tuple[dict[str, np.ndarray], LoadState]:
    """Compute daily features for consecutive days, resuming from ``state``.

    ``daily_load[0]`` is the day right after the day described by ``state``
    (for a fresh athlete, ``state=None``: the first-session day).  The days
    must be consecutive (densify with :func:`to_daily_load`).

    Returned arrays (float64, NaN = null), one value per input day:

    * ``atl``, ``ctl``: Banister states after the day's load.
    * ``tsb``: ``ctl(d-1) - atl(d-1)``.
    * ``acwr_rolling``: ``mean(load d-6..d) / mean(load d-27..d)``.
    * ``acwr_ewma``: ``E7(d) / E28(d)``.
      Both ACWRs are NaN while ``d - first_session_day < 27`` or when the
      chronic value is 0.
    * ``monotony_7d``: mean / population std of loads ``d-6..d``; NaN when
      the 7 loads are all equal (zero variance, tested exactly as max == min
      to avoid round-off).
    * ``strain_7d``: sum of loads ``d-6..d`` times ``monotony_7d``.

    Args:
        daily_load: Finite, non-negative daily loads.
        state: Carried state at the end of the previous day, or None.

    Returns:
        ``(features, new_state)``; ``compute(a + b, s)`` equals
        ``compute(b, compute(a, s)[1])`` appended to ``compute(a, s)`` exactly.
    """
    state = LoadState.initial() if state is None else state
    load = as_float_array(daily_load)
    if load.ndim != 1:
        raise ValueError("daily_load must be one-dimensional")
    if not np.all(np.isfinite(load)) or np.any(load < 0):
        raise ValueError("daily_load must be finite and non-negative")
    n = load.size

    atl_x = atl(load, state.atl)
    ctl_x = ctl(load, state.ctl)
    e7, e28 = acwr_ewma_states(load, state.e7, state.e28)

    prev_atl = np.concatenate(([state.atl], atl_x[:-1])) if n else atl_x
    prev_ctl = np.concatenate(([state.ctl], ctl_x[:-1])) if n else ctl_x
    tsb = prev_ctl - prev_atl

    # padded[j] is the load of day (first new day - 27 + j).
    padded = np.concatenate((np.asarray(state.recent_loads, dtype=np.float64), load))
    w_c, w_a, w_m = ACWR_CHRONIC_DAYS, ACWR_ACUTE_DAYS, MONOTONY_DAYS
    sum_chronic = _shifted_sum(padded, 0, w_c, n)
    sum_acute = _shifted_sum(padded, w_c - w_a, w_c, n)
    days_since_first = state.days_processed + np.arange(n)
    enough_history = days_since_first >= w_c - 1

    with np.errstate(divide="ignore", invalid="ignore"):
        acute_mean = sum_acute / w_a
        chronic_mean = sum_chronic / w_c
        acwr_rolling = np.where(enough_history & (chronic_mean > 0), acute_mean / chronic_mean, np.nan)
        acwr_ewma = np.where(enough_history & (e28 > 0), e7 / e28, np.nan)

        window = [padded[j : j + n] for j in range(w_c - w_m, w_c)]
        sum_week = _shifted_sum(padded, w_c - w_m, w_c, n)
        mean_week = sum_week / w_m
        sq_dev = np.zeros(n, dtype=np.float64)
        for values in window:
            sq_dev += (values - mean_week) ** 2
        std_week = np.sqrt(sq_dev / w_m)
        constant = np.maximum.reduce(window) == np.minimum.reduce(window)
        monotony = np.where(constant, np.nan, mean_week / std_week)
        strain = sum_week * monotony

    features = {
        "atl": atl_x,
        "ctl": ctl_x,
        "tsb": tsb,
        "acwr_rolling": acwr_rolling,
        "acwr_ewma": acwr_ewma,
        "monotony_7d": monotony,
        "strain_7d": strain,
    }
    if n == 0:
        return features, state
    new_state = LoadState(
        atl=float(atl_x[-1]),
        ctl=float(ctl_x[-1]),
        e7=float(e7[-1]),
        e28=float(e28[-1]),
        recent_loads=tuple(padded[-_CARRIED_LOADS:].tolist()),
        days_processed=state.days_processed + n,
    )
    return features, new_state
