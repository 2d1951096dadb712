"""Field-by-field reading of a bronze JSON record, before any cast can fail.

Spark's `from_json` + casts turn a wrongly typed field into a silent null and an
unparseable date into a job-killing `CAST_INVALID_INPUT`; a year-1 date overflows Arrow. So
silver reads each record here, in plain Python, with explicit rules: a field has one JSON
type (a number is not a string of digits, a boolean is not "yes"), numbers are finite,
timestamps are ISO 8601 and within years 1900-2199 (the window of plausible dates is judged
in silver, against when the record landed). Free text (notes) is kept as written, emoji,
any script and up to MAX_TEXT_CHARS characters, except control characters: JSON lets a record
carry them escaped (a NUL as backslash-u0000), no reader of a note wants them (a NUL ends C strings, breaks
terminals and some text indexes), so `clean_text` drops them, keeping tab and newline, with
Windows line ends (CR LF) and a lone CR read as a newline. Every broken rule is named
(`<field>_type`, `<field>_not_finite`, `<field>_unparseable`, ...); the record then goes to
quarantine instead of stopping the pipeline. Nothing here raises on any input.

Timestamps leave as microseconds since the epoch (UTC), dates as days since the epoch, so
no value outside pandas' nanosecond range ever reaches Arrow.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from athlete_platform.errors import InvalidRequest

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Anything outside these years is a corrupt value, not history (and would overflow casts).
FIRST_YEAR, LAST_YEAR = 1900, 2199
MAX_ID_CHARS = 128
MAX_TEXT_CHARS = 10_000
# C0 and C1 control characters except tab and newline (and DEL).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # string | id | text | number | integer | boolean | timestamp | date | timezone


SESSION_FIELDS: tuple[Field, ...] = (
    Field("session_id", "id"),
    Field("athlete_id", "id"),
    Field("sport", "string"),
    Field("start_time", "timestamp"),
    Field("duration_s", "number"),
    Field("distance_m", "number"),
    Field("elevation_gain_m", "number"),
    Field("avg_hr", "number"),
    Field("max_hr", "number"),
    Field("rpe", "integer"),
    Field("notes", "text"),
    Field("is_race", "boolean"),
    Field("source", "string"),
    Field("updated_at", "timestamp"),
)
ATHLETE_FIELDS: tuple[Field, ...] = (
    Field("athlete_id", "id"),
    Field("sex", "string"),
    Field("birth_date", "date"),
    Field("weight_kg", "number"),
    Field("hr_rest", "number"),
    Field("hr_max", "number"),
    Field("lthr", "number"),
    Field("timezone", "timezone"),
    Field("updated_at", "timestamp"),
)

#: One element of a race record's `splits` list (see `ingestion.race_splits`).
SPLIT_FIELDS: tuple[Field, ...] = (
    Field("km", "integer"),
    Field("distance_m", "number"),
    Field("time_s", "number"),
    Field("avg_hr", "number"),
)

_SPARK_TYPES = {
    "string": "string",
    "id": "string",
    "text": "string",
    "number": "double",
    "integer": "int",
    "boolean": "boolean",
    "timestamp": "bigint",  # microseconds since the epoch, UTC
    "date": "int",  # days since the epoch
    "timezone": "string",
}


def spark_schema(fields: tuple[Field, ...], passthrough: str = "") -> str:
    """DDL of what `read_records` returns: the typed fields, `field_reason`, the passed-through columns."""
    typed = ", ".join(f"{f.name} {_SPARK_TYPES[f.kind]}" for f in fields)
    return f"{typed}, field_reason string" + (f", {passthrough}" if passthrough else "")


class _Broken(Exception):
    """A field breaks a rule; the message is the rule's name suffix."""


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Broken("type")
    try:
        number = float(value)
    except OverflowError:  # an integer literal with hundreds of digits
        raise _Broken("not_finite") from None
    if not math.isfinite(number):
        raise _Broken("not_finite")
    return number


def _integer(value: object) -> int:
    number = _number(value)
    if not number.is_integer():
        raise _Broken("type")
    return int(number)


def _string(value: object, max_chars: int = MAX_ID_CHARS) -> str:
    if not isinstance(value, str):
        raise _Broken("type")
    if len(value) > max_chars:
        raise _Broken("too_long")
    try:  # a JSON escape may name a lone surrogate ("\ud800"): no UTF-8 text can hold it
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Broken("invalid_unicode") from None
    return value


def clean_text(text: str) -> str:
    """Free text without control characters: CR LF and a lone CR become a newline, tab and newline
    stay, every other C0/C1 control character (NUL, bell, escape, ...) is removed; all else is kept."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _text(value: object) -> str:
    return clean_text(_string(value, MAX_TEXT_CHARS))


def _identifier(value: object) -> str:
    text = _string(value)
    # Keys join tables and name quarantine rows: no blanks, padding or control characters.
    if not text or text != text.strip() or not text.isprintable():
        raise _Broken("format")
    return text


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):  # not "yes", not 1
        raise _Broken("type")
    return value


def _in_years(moment: datetime) -> datetime:
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise _Broken("out_of_range")
    return moment


def _timestamp(value: object) -> int:
    text = _string(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Broken("unparseable") from None
    if moment.tzinfo is None:  # no offset: the export's convention is UTC
        moment = moment.replace(tzinfo=UTC)
    moment = _in_years(moment.astimezone(UTC))
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _date(value: object) -> int:
    text = _string(value)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise _Broken("unparseable") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise _Broken("out_of_range")
    return (day - EPOCH.date()).days


def _timezone(value: object) -> str:
    name = _string(value)
    try:
        ZoneInfo(name)
    except Exception:  # ValueError for malformed keys, ZoneInfoNotFoundError for unknown ones
        raise _Broken("unknown") from None
    return name


_READERS: dict[str, Callable[[object], object]] = {
    "string": _string,
    "id": _identifier,
    "text": _text,
    "number": _number,
    "integer": _integer,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "date": _date,
    "timezone": _timezone,
}


def read_record(payload: str, fields: tuple[Field, ...]) -> tuple[dict[str, object], str | None]:
    """One JSON record -> (typed values, null where absent or broken; names of broken rules).

    JSON `null` and a missing field are both "absent" (whether a field is required is a rule
    of silver). A payload that is not a JSON object breaks `record_not_an_object`.
    """
    values: dict[str, object] = dict.fromkeys(f.name for f in fields)
    try:
        record = json.loads(payload)
    except (ValueError, RecursionError):
        return values, "record_unparseable"
    if not isinstance(record, dict):
        return values, "record_not_an_object"
    values, broken = read_fields(record, fields)
    return values, ",".join(broken) or None


def read_fields(record: dict, fields: tuple[Field, ...]) -> tuple[dict[str, object], list[str]]:
    """An already-decoded JSON object -> (typed values, null where absent or broken; the broken
    rules as `<field>_<rule>`). For objects nested in a record, e.g. a race's splits."""
    values: dict[str, object] = dict.fromkeys(f.name for f in fields)
    broken = []
    for field in fields:
        raw = record.get(field.name)
        if raw is None:
            continue
        try:
            values[field.name] = _READERS[field.kind](raw)
        except _Broken as rule:
            broken.append(f"{field.name}_{rule}")
    return values, broken


def read_records(batches: Iterator, fields: tuple[Field, ...], passthrough: tuple[str, ...] = ()) -> Iterator:
    """`mapInPandas` body: frames with a `payload` column -> typed fields, `field_reason`, and
    the `passthrough` columns unchanged."""
    import pandas as pd

    names = [f.name for f in fields]
    for batch in batches:
        rows = [read_record(p, fields) for p in batch["payload"]]
        out = pd.DataFrame([values for values, _ in rows], columns=names)
        for field in fields:  # nullable dtypes: an all-null column must not turn into float
            if field.kind in ("integer", "date", "timestamp"):
                out[field.name] = out[field.name].astype("Int64")
            elif field.kind == "boolean":
                out[field.name] = out[field.name].astype("boolean")
            elif field.kind == "number":
                out[field.name] = out[field.name].astype("float64")
        out["field_reason"] = [reason for _, reason in rows]
        for column in passthrough:
            out[column] = batch[column].to_numpy()
        yield out


def check_athlete_id(athlete_id: str) -> str:
    """An athlete id from a caller (API path, CLI): 1 to MAX_ID_CHARS printable characters,
    no surrounding blanks; else an InvalidRequest naming the field."""
    plain = athlete_id == athlete_id.strip() and athlete_id.isprintable()
    if not athlete_id or len(athlete_id) > MAX_ID_CHARS or not plain:
        raise InvalidRequest(
            f"athlete_id must be 1 to {MAX_ID_CHARS} printable characters without surrounding blanks, "
            f"got {athlete_id[:40]!r}.",
            field="athlete_id",
        )
    return athlete_id
