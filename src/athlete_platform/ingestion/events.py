"""Session events: sessions the app posts one by one, appended to `bronze.session_events`.

The write path of the streaming features (README "Streaming features"). It is called from the
serving API's request path (`POST /v1/events/sessions`) and by `athlete-platform ingest-events`,
so it stays lean: no Spark, no validation beyond "is it JSON-able". Each call appends the events
it is given as ONE Delta commit through the Delta Python writer (`lakehouse.delta_rs`), stamped
with `event_id` (time-ordered, unique) and `_received_at`. It is safe to call from several
threads and processes at once (concurrent appends; see `lakehouse.delta_rs`).

Nothing is lost at this door: a malformed line is stored as received (its raw text in
`payload`), and the streaming job quarantines it with its reason (`record_unparseable`, ...),
as silver does for landed files. A payload over `MAX_PAYLOAD_CHARS` is kept cut to
`KEPT_PAYLOAD_CHARS` and flagged, and quarantined as `payload_too_large`.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from athlete_platform.errors import PlatformError
from athlete_platform.ingestion.fields import MAX_ID_CHARS
from athlete_platform.lakehouse import delta_rs
from athlete_platform.lakehouse.tables import SESSION_EVENTS

if TYPE_CHECKING:
    from athlete_platform.config import Settings

#: A posted session is a few hundred bytes; anything past this is not a session record.
MAX_PAYLOAD_CHARS = 64 * 1024
#: What is kept of an oversized payload (enough to see what it was).
KEPT_PAYLOAD_CHARS = 4 * 1024
#: Lines per commit when a file is ingested (one commit per call otherwise).
FILE_BATCH_EVENTS = 1000


class EventError(PlatformError):
    """An event cannot be stored at all (not JSON-able); the message names it."""


@dataclass(frozen=True)
class AppendResult:
    """What one append stored."""

    accepted: int
    event_ids: list[str]
    received_at: datetime  # naive UTC: the `_received_at` every event of the commit carries
    table_version: int | None  # the Delta version committed (None when nothing was written)
    location: str

    def __str__(self) -> str:
        if not self.accepted:
            return "no events to append"
        return f"{self.accepted} events appended to bronze.session_events (v{self.table_version}) at {self.location}"


def event_ids(received_at_us: int, count: int) -> list[str]:
    """Time-ordered unique ids: `<received µs, hex>-<index in the commit>-<random>`. Sorting by id
    sorts by arrival (ties in one microsecond across writers break at random), which is how a
    re-posted session's latest version is chosen."""
    salt = secrets.token_hex(4)
    return [f"{received_at_us:014x}-{index:06x}-{salt}" for index in range(count)]


def payload_text(event: Mapping[str, Any] | str, position: int) -> str:
    """The payload as stored: a mapping as JSON (non-finite numbers kept as `NaN`/`Infinity`, so
    the stream names them), a string as given (a raw line, possibly malformed)."""
    if isinstance(event, str):
        return event.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate cannot be stored
    if not isinstance(event, Mapping):
        raise EventError(
            f"event {position} is a {type(event).__name__}; post a JSON object (a session record) or its raw text."
        )
    try:
        return json.dumps(event, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise EventError(f"event {position} cannot be written as JSON ({exc}); post plain JSON values.") from None


def _key_field(record: object, name: str) -> str | None:
    value = record.get(name) if isinstance(record, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS else None


def event_rows(events: Sequence[Mapping[str, Any] | str], source: str, received_at: datetime) -> dict[str, list]:
    """Pure: the columns of `bronze.session_events` for these events (ids from `received_at`)."""
    micros = int(received_at.replace(tzinfo=UTC).timestamp() * 1_000_000)
    columns: dict[str, list] = {name: [] for name in SESSION_EVENTS.column_names}
    for position, event in enumerate(events):
        text = payload_text(event, position)
        truncated = len(text) > MAX_PAYLOAD_CHARS
        if truncated:
            text = text[:KEPT_PAYLOAD_CHARS]
        record: object = event if isinstance(event, Mapping) else None
        if record is None and not truncated:
            try:
                record = json.loads(text)
            except (ValueError, RecursionError):
                record = None
        columns["session_id"].append(_key_field(record, "session_id"))
        columns["athlete_id"].append(_key_field(record, "athlete_id"))
        columns["payload"].append(text)
        columns["payload_truncated"].append(truncated)
    count = len(columns["payload"])
    columns["event_id"] = event_ids(micros, count)
    columns["source"] = [source] * count
    columns["_received_at"] = [received_at.replace(tzinfo=UTC)] * count
    return columns


def events_location(settings: Settings) -> Path:
    return delta_rs.table_location(settings, SESSION_EVENTS)


def append_session_events(
    settings: Settings, events: Sequence[Mapping[str, Any] | str], source: str = "api"
) -> AppendResult:
    """Append `events` (session records as mappings, or raw JSON text) to bronze.session_events
    as one commit; returns their ids. Creates the table on first use. No Spark.

    Raises `EventError` for an event that is not JSON-able, `ConcurrencyError` when the commit
    keeps losing to concurrent writers (then nothing was written).
    """
    import pyarrow as pa

    location = events_location(settings)
    received_at = datetime.now(UTC).replace(tzinfo=None)
    if not events:
        return AppendResult(0, [], received_at, None, str(location))
    columns = event_rows(events, source, received_at)
    data = pa.table(columns, schema=delta_rs.arrow_schema(SESSION_EVENTS))
    delta_rs.create_if_missing(location, SESSION_EVENTS)
    version = delta_rs.append(location, data, "append to bronze.session_events")
    return AppendResult(len(events), columns["event_id"], received_at, version, str(location))


def read_lines(stream: IO[bytes]) -> Iterator[str]:
    """Non-blank lines of a JSON-lines stream as text (BOM and CR stripped; bytes that are not
    UTF-8 replaced, so the line still reaches quarantine)."""
    for number, raw in enumerate(stream):
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if number == 0:
            line = line.removeprefix("\ufeff")
        if line.strip():
            yield line


def batched(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def ingest_event_file(settings: Settings, path: str, batch_size: int = FILE_BATCH_EVENTS) -> tuple[int, int, float]:
    """`athlete-platform ingest-events FILE|-`: every non-blank line as one event, appended in
    commits of `batch_size` lines. Returns (events, commits, seconds)."""
    started = time.perf_counter()
    source = "cli:stdin" if path == "-" else f"cli:{Path(path).name}"
    if path == "-":
        handle = sys.stdin.buffer
    else:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise EventError(
                f"Cannot read {path}: {exc.strerror}. Pass a JSON-lines file or - for standard input."
            ) from None
    events = commits = 0
    try:
        for batch in batched(read_lines(handle), batch_size):
            append_session_events(settings, batch, source)
            events += len(batch)
            commits += 1
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()
    return events, commits, time.perf_counter() - started
