"""`POST /v1/events/sessions`: check posted sessions, then append them to `bronze.session_events`.

The write goes through the event writer of the ingestion layer (`ingestion.events`, delta-rs,
no Spark), so the API, `athlete-platform ingest-events` and the streaming job share one table
and one payload format. Before writing, each event is read with silver's own field reader
(`ingestion.fields.read_record`: wrong JSON types, non-finite numbers, unparseable times, bad
ids) and checked against the record rules that need nothing but the event itself
(`required_fields`, `sport_known`, `duration_positive`, `duration_plausible`,
`distance_non_negative`, `elevation_plausible`, `hr_range`, `hr_order`, `rpe_range`, with the
limits of `domain.limits`), so the app gets a 422 naming the field instead of a silent
quarantine. The rules that need more than the event (the athlete exists, the start is not in
the future relative to arrival, the speed is plausible) stay with the streaming job, which
judges every event with all of silver's rules and quarantines what breaks them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from athlete_platform.domain import limits
from athlete_platform.errors import InvalidRequest
from athlete_platform.ingestion.events import append_session_events
from athlete_platform.ingestion.fields import (
    FIRST_YEAR,
    LAST_YEAR,
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    SESSION_FIELDS,
    read_record,
)

if TYPE_CHECKING:
    from athlete_platform.config import Settings

#: Most events one post may carry.
MAX_EVENTS_PER_POST = 1000
#: silver's `required_fields` rule for sessions.
REQUIRED_FIELDS = ("session_id", "athlete_id", "start_time", "duration_s", "distance_m")
_FIELD_NAMES = tuple(sorted((f.name for f in SESSION_FIELDS), key=len, reverse=True))
_BROKEN = {
    "type": "has the wrong JSON type (numbers as numbers, not text; booleans as true/false; RPE an integer)",
    "not_finite": "must be a finite number",
    "unparseable": "must be an ISO-8601 date-time such as 2025-01-12T07:30:00Z",
    "out_of_range": f"must be a date-time between the years {FIRST_YEAR} and {LAST_YEAR}",
    "format": "must be a non-empty id without surrounding blanks or control characters",
    "too_long": f"is too long (ids up to {MAX_ID_CHARS} characters, notes up to {MAX_TEXT_CHARS})",
    "invalid_unicode": "holds text that is not valid Unicode",
}
_Rule = tuple[str, str, Callable[[dict[str, Any]], bool]]
# (rule, field it blames, passes?) -- silver's rule names; an absent optional value passes.
_RULES: tuple[_Rule, ...] = (
    ("sport_known", "sport", lambda v: v["sport"] in limits.SPORTS),
    ("duration_positive", "duration_s", lambda v: v["duration_s"] > 0),
    ("duration_plausible", "duration_s", lambda v: v["duration_s"] <= limits.MAX_SESSION_DURATION_S),
    ("distance_non_negative", "distance_m", lambda v: v["distance_m"] >= 0),
    (
        "elevation_plausible",
        "elevation_gain_m",
        lambda v: v["elevation_gain_m"] is None or 0 <= v["elevation_gain_m"] <= limits.MAX_ELEVATION_GAIN_M,
    ),
    ("hr_range", "avg_hr", lambda v: v["avg_hr"] is None or limits.HR_MIN_BPM <= v["avg_hr"] <= limits.HR_MAX_BPM),
    ("hr_range", "max_hr", lambda v: v["max_hr"] is None or limits.HR_MIN_BPM <= v["max_hr"] <= limits.HR_MAX_BPM),
    ("hr_order", "avg_hr", lambda v: v["avg_hr"] is None or v["max_hr"] is None or v["avg_hr"] <= v["max_hr"]),
    ("rpe_range", "rpe", lambda v: v["rpe"] is None or limits.RPE_MIN <= v["rpe"] <= limits.RPE_MAX),
)
_RULE_TEXT = {
    "sport_known": f"must be one of {', '.join(limits.SPORTS)}",
    "duration_positive": "must be > 0 seconds",
    "duration_plausible": f"must be at most {limits.MAX_SESSION_DURATION_S} seconds (48 h)",
    "distance_non_negative": "must be >= 0 metres",
    "elevation_plausible": f"must be between 0 and {limits.MAX_ELEVATION_GAIN_M:.0f} metres",
    "hr_range": f"must be between {limits.HR_MIN_BPM} and {limits.HR_MAX_BPM} bpm",
    "hr_order": "must not be above max_hr",
    "rpe_range": f"must be between {limits.RPE_MIN} and {limits.RPE_MAX}",
}


def check_events(body: Any) -> list[dict[str, Any]]:
    """The posted events (one object or a list of them), each checked; `InvalidRequest` naming
    the first field at fault (`events[2].duration_s`, or `duration_s` for a single event)."""
    single = isinstance(body, Mapping)
    events = [body] if single else body
    if not isinstance(events, list) or not events:
        raise InvalidRequest("Post one session event (a JSON object) or a non-empty list of them.", field="body")
    if len(events) > MAX_EVENTS_PER_POST:
        raise InvalidRequest(
            f"{len(events)} events in one post; post at most {MAX_EVENTS_PER_POST} at a time.", field="body"
        )
    for position, event in enumerate(events):
        prefix = "" if single else f"events[{position}]."
        if not isinstance(event, Mapping):
            raise InvalidRequest(
                f"events[{position}] must be a JSON object (a session record), got {type(event).__name__}.",
                field=f"events[{position}]",
            )
        check_event(event, prefix)
    return [dict(e) for e in events]


def check_event(event: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """One session record through silver's field reader and the self-contained rules; returns
    the typed values."""
    try:
        payload = json.dumps(event)
    except (TypeError, ValueError, RecursionError):
        where = prefix.rstrip(".") or "body"
        raise InvalidRequest(f"{where} cannot be written as JSON.", field=where) from None
    values, broken = read_record(payload, SESSION_FIELDS)
    if broken:
        rule = broken.split(",")[0]
        name = next((n for n in _FIELD_NAMES if rule.startswith(n + "_")), rule)
        why = _BROKEN.get(rule[len(name) + 1 :], f"breaks the rule {rule}")
        raise InvalidRequest(f"Field {prefix}{name} {why}; got {_short(event.get(name))}.", field=prefix + name)
    missing = [name for name in REQUIRED_FIELDS if values[name] is None]
    if missing:
        raise InvalidRequest(
            f"Field {prefix}{missing[0]} is required (a session needs {', '.join(REQUIRED_FIELDS)}).",
            field=prefix + missing[0],
        )
    if values["sport"] is None:  # silver's sport_known fails a missing sport too
        raise InvalidRequest(
            f"Field {prefix}sport is required: one of {', '.join(limits.SPORTS)}.", field=prefix + "sport"
        )
    for rule, name, passes in _RULES:
        if not passes(values):
            raise InvalidRequest(
                f"Field {prefix}{name} {_RULE_TEXT[rule]} (rule {rule}); got {_short(event.get(name))}.",
                field=prefix + name,
            )
    return values


def post_events(settings: Settings, body: Any) -> dict[str, Any]:
    """Check, then append as one commit; the 202 body."""
    events = check_events(body)
    result = append_session_events(settings, events, source="api")
    return {
        "accepted": result.accepted,
        "event_ids": result.event_ids,
        "table_version": result.table_version,
        "received_at": result.received_at.isoformat(timespec="microseconds") + "Z",
    }


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
