"""Intraday features: the online row's view of sessions the nightly batch has not seen yet.

Pure functions (no Spark, no I/O), called by the streaming job's `foreachBatch`
(`online.streaming`) and unit-tested on tiny data. The numbers come from the batch pipeline's
own functions: TRIMP from `domain.physiology.trimp` (imputed without heart rate by
`physiology.impute_missing_loads` over the athlete's previous 28 days), daily loads from
`features.metrics.to_daily_load`, and ATL / CTL / TSB / ACWR (EWMA) from `features.metrics.compute`
resumed from the athlete's latest batch feature row. So the intraday values of day D equal what
the nightly batch will compute for day D from the same sessions.

State and exactly-once. The online row carries, in `intraday_state` (JSON), every streamed
session newer than its batch row, keyed by `session_id`: a re-posted session replaces its
earlier version (the latest `updated_at`, then the latest arrival wins, as in silver), never
counts twice, and processing the same events again (a micro-batch replayed after a crash)
gives the same row. The intraday columns are recomputed from that state every time.

Reset rule. The batch stays the source of truth. Intraday values are valid only while they were
projected from the row's current batch row (`intraday_base_date == feature_date`) and describe
a later day (`intraday_date > feature_date`); once materialization writes a newer batch row,
`current_intraday` returns None, the streaming job drops the sessions the batch now covers
(date <= feature_date) at the athlete's next event, and its periodic sweep re-projects them
from the new batch row, or clears them (`reproject_updates`). So after the nightly run, online = offline again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from athlete_platform.domain import physiology
from athlete_platform.features import metrics

PREFIX = "intraday_"
DATE = "intraday_date"  # the day the values describe (UTC date of the latest streamed session)
BASE_DATE = "intraday_base_date"  # feature_date of the batch row they were projected from
LOAD = "intraday_load"  # that day's load so far (sum of TRIMP), TRIMP units
SESSIONS = "intraday_sessions"  # sessions that day
DURATION = "intraday_duration_s"
DISTANCE = "intraday_distance_m"
ATL = "intraday_atl"
CTL = "intraday_ctl"
TSB = "intraday_tsb"  # form on the morning of intraday_date: ctl(d-1) - atl(d-1)
ACWR_EWMA = "intraday_acwr_ewma"
LAST_SESSION_ID = "intraday_last_session_id"
LAST_SESSION_START = "intraday_last_session_start"  # ISO-8601 UTC
LAST_RECEIVED_AT = "intraday_last_received_at"  # arrival of the newest event counted, ISO-8601 UTC
STATE = "intraday_state"  # JSON: session_id -> StreamedSession fields, sessions after the base date
UPDATED_AT = "intraday_updated_at"  # when the streaming job wrote the row, ISO-8601 UTC

#: Every field the streaming job owns in an online row (materialization owns the others).
INTRADAY_COLUMNS: tuple[str, ...] = (
    DATE,
    BASE_DATE,
    LOAD,
    SESSIONS,
    DURATION,
    DISTANCE,
    ATL,
    CTL,
    TSB,
    ACWR_EWMA,
    LAST_SESSION_ID,
    LAST_SESSION_START,
    LAST_RECEIVED_AT,
    STATE,
    UPDATED_AT,
)

#: Batch-row fields the projection resumes from (all owned by materialization).
BASE_FIELDS = ("feature_date", "atl", "ctl", "ewma_acute_load", "ewma_chronic_load", "history_days")
#: Profile fields TRIMP needs.
PROFILE_FIELDS = ("sex", "hr_rest", "hr_max")


@dataclass(frozen=True)
class StreamedSession:
    """One valid streamed session, as kept in `intraday_state`."""

    session_id: str
    session_date: str  # ISO date (UTC)
    start_time: str  # ISO-8601 UTC
    duration_s: float
    distance_m: float
    avg_hr: float | None
    load: float  # TRIMP (imputed when avg_hr is None)
    load_imputed: bool
    updated_at: str | None  # the record's own version stamp, ISO-8601 UTC
    event_id: str  # time-ordered: later arrival sorts later
    received_at: str  # ISO-8601 UTC

    @property
    def version(self) -> tuple[str, str]:
        """Silver's order: the latest updated_at wins, then the latest arrival ('' sorts first)."""
        return (self.updated_at or "", self.event_id)


@dataclass(frozen=True)
class BatchBase:
    """What the projection resumes from: the athlete's latest batch feature row (end of `feature_date`)."""

    feature_date: date
    atl: float
    ctl: float
    ewma_acute_load: float
    ewma_chronic_load: float
    history_days: int  # feature_date - first session day; -1 before the first session

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | None) -> BatchBase | None:
        """From an online row or a feature-table row; None when it lacks a base field."""
        if row is None or any(row.get(name) is None for name in BASE_FIELDS):
            return None
        return cls(
            feature_date=_as_date(row["feature_date"]),
            atl=float(row["atl"]),
            ctl=float(row["ctl"]),
            ewma_acute_load=float(row["ewma_acute_load"]),
            ewma_chronic_load=float(row["ewma_chronic_load"]),
            history_days=int(row["history_days"]),
        )

    @classmethod
    def before_first_session(cls, first_day: date) -> BatchBase:
        """An athlete without batch rows: every state is 0 on the day before the first session."""
        return cls(first_day - timedelta(days=1), 0.0, 0.0, 0.0, 0.0, -1)

    def load_state(self) -> metrics.LoadState:
        """The `metrics.LoadState` at the end of `feature_date`. The online row has no daily loads
        of the last 27 days, so the window features (acwr_rolling, monotony) are not projected."""
        return metrics.LoadState(
            atl=self.atl,
            ctl=self.ctl,
            e7=self.ewma_acute_load,
            e28=self.ewma_chronic_load,
            days_processed=self.history_days + 1,
        )


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


# --------------------------------------------------------------------------------------------
# Session loads
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadPoolSession:
    """An earlier session with heart rate: feeds the TRIMP-per-minute median for imputation."""

    session_date: date
    duration_s: float
    load: float


def session_loads(
    sessions: Sequence[Mapping[str, Any]], profile: Mapping[str, Any], pool: Iterable[LoadPoolSession] = ()
) -> list[tuple[float, bool]]:
    """(load, imputed) per session (fields session_date, duration_s, avg_hr), as silver computes
    session_load: Banister TRIMP with the athlete's profile; without heart rate, minutes x the
    median TRIMP/min of the athlete's sessions with heart rate in the previous 28 days (`pool`
    plus these sessions), 0 when there are none."""
    if not sessions:
        return []
    pool = list(pool)
    duration = np.array([float(s["duration_s"]) for s in sessions], dtype=float)
    hr = np.array([np.nan if s.get("avg_hr") is None else float(s["avg_hr"]) for s in sessions], dtype=float)
    trimp = np.asarray(
        physiology.trimp(duration, hr, float(profile["hr_rest"]), float(profile["hr_max"]), profile["sex"]), dtype=float
    ).reshape(-1)
    days = [_as_date(s["session_date"]) for s in sessions] + [p.session_date for p in pool]
    durations = np.concatenate((duration, [p.duration_s for p in pool]))
    loads = np.concatenate((trimp, [p.load for p in pool]))
    final, imputed = physiology.impute_missing_loads(np.array(days, dtype="datetime64[D]"), durations, loads)
    return [(float(final[i]), bool(imputed[i])) for i in range(len(sessions))]


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


def read_state(row: Mapping[str, Any] | None) -> dict[str, StreamedSession]:
    """The streamed sessions an online row carries (none when it has no state)."""
    text = (row or {}).get(STATE)
    if not text:
        return {}
    return {key: StreamedSession(**value) for key, value in json.loads(text).items()}


def write_state(state: Mapping[str, StreamedSession]) -> str:
    return json.dumps({key: asdict(state[key]) for key in sorted(state)}, sort_keys=True, separators=(",", ":"))


def merge_sessions(state: Mapping[str, StreamedSession], new: Iterable[StreamedSession]) -> dict[str, StreamedSession]:
    """Add `new` to `state` keyed by session_id; of two versions of one session the later
    (`StreamedSession.version`) stays. Order-independent and idempotent."""
    merged = dict(state)
    for session in new:
        kept = merged.get(session.session_id)
        if kept is None or session.version > kept.version:
            merged[session.session_id] = session
    return merged


def prune(state: Mapping[str, StreamedSession], base: BatchBase) -> dict[str, StreamedSession]:
    """Drop the sessions the batch row already covers (dated on or before its feature_date)."""
    cutoff = base.feature_date.isoformat()
    return {key: s for key, s in state.items() if s.session_date > cutoff}


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def intraday_fields(state: Mapping[str, StreamedSession], base: BatchBase, updated_at: str) -> dict[str, Any]:
    """The intraday columns for `state` (already pruned to sessions after `base.feature_date`).

    The values describe the end of the latest day D with a streamed session: the day's load so far,
    sessions, volume, the last session, and ATL / CTL / TSB / ACWR-EWMA of day D by
    `metrics.compute` from the batch row's state, with the days between at load 0 unless
    they have streamed sessions too. An empty state clears every intraday column.
    """
    if not state:
        return {**dict.fromkeys(INTRADAY_COLUMNS), UPDATED_AT: updated_at}
    sessions = sorted(state.values(), key=lambda s: (s.session_date, s.start_time, s.session_id))
    first_day = base.feature_date + timedelta(days=1)
    days, daily = metrics.to_daily_load(
        [s.session_date for s in sessions], [s.load for s in sessions], start_day=first_day
    )
    features, _ = metrics.compute(daily, base.load_state())
    day = days[-1].astype(object)
    today = [s for s in sessions if s.session_date == day.isoformat()]
    last = max(sessions, key=lambda s: (s.start_time, s.session_id))
    return {
        DATE: day.isoformat(),
        BASE_DATE: base.feature_date.isoformat(),
        LOAD: float(daily[-1]),
        SESSIONS: len(today),
        DURATION: float(sum(s.duration_s for s in today)),
        DISTANCE: float(sum(s.distance_m for s in today)),
        ATL: _finite(features["atl"][-1]),
        CTL: _finite(features["ctl"][-1]),
        TSB: _finite(features["tsb"][-1]),
        ACWR_EWMA: _finite(features["acwr_ewma"][-1]),
        LAST_SESSION_ID: last.session_id,
        LAST_SESSION_START: last.start_time,
        LAST_RECEIVED_AT: max(s.received_at for s in sessions),
        STATE: write_state(state),
        UPDATED_AT: updated_at,
    }


def update_row(
    row: Mapping[str, Any] | None, base: BatchBase, new: Iterable[StreamedSession], updated_at: str
) -> dict[str, Any]:
    """The intraday fields to upsert for one athlete: the row's state, pruned to after the batch
    row, merged with `new`, recomputed. Replaying the same `new` gives the same fields."""
    state = merge_sessions(prune(read_state(row), base), new)
    return intraday_fields(prune(state, base), base, updated_at)


def is_current(row: Mapping[str, Any]) -> bool:
    """The reset rule: intraday values count only while projected from the row's current batch row
    and about a later day."""
    day, base, feature_date = row.get(DATE), row.get(BASE_DATE), row.get("feature_date")
    if day is None:
        return False
    if feature_date is None:  # no batch row yet: a new athlete's first sessions
        return base is not None
    return base == str(feature_date) and day > str(feature_date)


def current_intraday(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The row's intraday columns when they are current (see `is_current`), else None."""
    if row is None or not is_current(row):
        return None
    return {name: row.get(name) for name in INTRADAY_COLUMNS if name != STATE}


def reproject_updates(rows: Mapping[str, Mapping[str, Any]], updated_at: str) -> list[dict[str, Any]]:
    """Upserts for rows whose intraday values are no longer current (a newer batch row landed):
    the sessions the batch now covers are dropped and the rest re-projected from the new batch
    row; with none left, the intraday columns are cleared."""
    updates = []
    for key, row in rows.items():
        if row.get(DATE) is None or is_current(row):
            continue
        base = BatchBase.from_row(row)
        fields = (
            intraday_fields(prune(read_state(row), base), base, updated_at)
            if base is not None
            else intraday_fields({}, BatchBase.before_first_session(date.today()), updated_at)
        )
        updates.append({"athlete_id": key, **fields})
    return updates
