"""The serving API's inference log: the line format, and the step that flushes it into Delta.

The API must not touch Spark per request, so every prediction it makes is appended as one JSON
line to a local file (`serving.inference_log`, one file per process and UTC hour,
`inference-<YYYYMMDDHH>-<pid>.jsonl`) and this step, run on a schedule, moves the lines into
`gold.online_inference_log`, one row per predicted distance. `ab-report` scores those rows
against the races that followed.

The flush loses nothing and duplicates nothing, whatever crashes when:
- rows are inserted by key (`request_id`, `prediction_index`) only when missing, so a line read
  twice (a re-run, a crash before the file was moved) is stored once;
- a file of a past hour is complete (its writer has moved on to the next hour's file): after its
  lines are in Delta it moves to `flushed/<YYYY-MM-DD>/`, so later runs do not re-read it. A
  file of the current hour is still being appended to: its complete lines are flushed, it stays;
- a line that is not a log record (not JSON, a field missing or of the wrong type, or cut off
  by a crash at the end of a closed file) goes to `bronze.quarantine` (source `inference_log`)
  with the reason, so in = rows' lines + quarantined lines for every file read.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.step import Step, StepContext, wall_clock

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from athlete_platform.config import Settings

log = logging.getLogger(__name__)

#: One inference-log line: field -> JSON type (and what it holds). Every line has every field.
#:
#: - request_id: uuid4 hex, also returned to the caller (response body and `X-Request-ID`)
#: - logged_at: ISO-8601 UTC with microseconds and "Z", e.g. "2025-01-12T08:30:00.123456Z"
#: - route: "race-predictions" | "live-coaching" | "v2-infer"
#: - athlete_id: the athlete of a v1 request; null for v2-infer
#: - variant: the registry alias that served it (A/B variant)
#: - model_name, model_version: the registered model and version that predicted
#: - feature_date: "YYYY-MM-DD" of the online row used; null for v2-infer
#: - race_date: "YYYY-MM-DD" the prediction is for; null for v2-infer
#: - inputs: the request's passed features and parameters (v2-infer: its tensors)
#: - outputs: one object per prediction; race-predictions:
#:   [{"race_distance_m": float, "predicted_finish_time_s": float}]
#: - latency_ms: time in the service from the route's start to the response, milliseconds
RECORD_SCHEMA: dict[str, str] = {
    "request_id": "string",
    "logged_at": "string",
    "route": "string",
    "athlete_id": "string|null",
    "variant": "string",
    "model_name": "string",
    "model_version": "string",
    "feature_date": "string|null",
    "race_date": "string|null",
    "inputs": "object",
    "outputs": "array",
    "latency_ms": "number",
}
ROUTES = ("race-predictions", "live-coaching", "v2-infer")
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "object": (dict,),
    "array": (list,),
}
#: The same schema as the reader checks it: field -> (Python types, may be null).
LOG_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    name: (_JSON_TYPES[kind.split("|")[0]], kind.endswith("|null")) for name, kind in RECORD_SCHEMA.items()
}
FILE_PATTERN = re.compile(r"^inference-(\d{10})-(\d+)\.jsonl$")
FLUSHED_FOLDER = "flushed"
QUARANTINE_SOURCE = "inference_log"
#: A request of many distances is fine; a "line" past this is not one of ours.
MAX_LINE_CHARS = 1_000_000


def log_folder(settings: Settings) -> Path:
    """Where the API writes its log files (`serving.inference_log_dir`; per schema prefix)."""
    return settings.inference_log_path


def log_file_name(moment: datetime, pid: int) -> str:
    """The file a process appends to in the UTC hour of `moment` (aware or naive UTC)."""
    hour = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"inference-{hour:%Y%m%d%H}-{pid}.jsonl"


class LineRejected(ValueError):
    """A line that is not an inference log record; the message is the quarantine reason."""


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise LineRejected(f"{name}_format") from None


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise LineRejected("logged_at_format") from None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_line(text: str) -> list[dict[str, Any]]:
    """One log line -> its rows of `gold.online_inference_log` (one per output), in output order.

    Raises:
        LineRejected: the line is not a record; the message is the reason (`line_unparseable`,
            `<field>_missing`, `<field>_type`, `<field>_format`, `outputs_empty`, ...).
    """
    if len(text) > MAX_LINE_CHARS:
        raise LineRejected("line_too_long")
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        raise LineRejected("line_unparseable") from None
    if not isinstance(record, dict):
        raise LineRejected("line_not_an_object")
    for name, (types, nullable) in LOG_FIELDS.items():
        if name not in record:
            raise LineRejected(f"{name}_missing")
        value = record[name]
        if value is None and nullable:
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            raise LineRejected(f"{name}_type")
    if record["route"] not in ROUTES:
        raise LineRejected("route_unknown")
    if not record["outputs"]:
        raise LineRejected("outputs_empty")
    logged_at = _moment(record["logged_at"])
    feature_date = _day(record["feature_date"], "feature_date")
    race_date = _day(record["race_date"], "race_date")
    inputs = record["inputs"]
    rows = []
    for index, output in enumerate(record["outputs"]):
        if not isinstance(output, dict):
            raise LineRejected("outputs_type")
        distance = _number(output.get("race_distance_m", inputs.get("race_distance_m")))
        rows.append(
            {
                "request_id": record["request_id"],
                "prediction_index": index,
                "logged_at": logged_at,
                "route": record["route"],
                "athlete_id": record["athlete_id"],
                "variant": record["variant"],
                "model_name": record["model_name"],
                "model_version": record["model_version"],
                "feature_date": feature_date,
                "race_date": race_date,
                "race_distance_m": distance,
                "predicted_finish_time_s": _number(output.get("predicted_finish_time_s")),
                "inputs_json": json.dumps(inputs, sort_keys=True, separators=(",", ":")),
                "output_json": json.dumps(output, sort_keys=True, separators=(",", ":")),
                "latency_ms": float(record["latency_ms"]),
            }
        )
    return rows


@dataclass
class FileLines:
    """What one read of a log file gave."""

    path: Path
    closed: bool  # a past hour's file: nothing will be appended to it any more
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (file:line, text, reason)
    lines: int = 0


def is_closed(path: Path, now: datetime) -> bool:
    """A file of an hour before `now`'s (naive UTC) hour; a name without an hour counts as open."""
    match = FILE_PATTERN.match(path.name)
    return bool(match) and match.group(1) < f"{now:%Y%m%d%H}"


def read_file(path: Path, closed: bool) -> FileLines:
    """Parse a log file's complete lines. In an open file an unterminated last line is being
    written and is left for the next flush; in a closed one it was cut by a crash (quarantined)."""
    data = path.read_bytes()
    complete = data.endswith(b"\n")
    lines = data.split(b"\n")
    if not complete and not closed:
        lines = lines[:-1]  # being written: the next flush reads it whole
    result = FileLines(path, closed)
    cut = len(lines) - 1 if closed and not complete else None  # index of a line a crash cut off
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        result.lines += 1
        text = raw.decode("utf-8", "replace")
        where = f"{path.name}:{number}"
        if number - 1 == cut:
            result.rejected.append((where, text, "line_truncated"))
            continue
        try:
            rows = parse_line(text)
        except LineRejected as reason:
            result.rejected.append((where, text, str(reason)))
            continue
        result.rows.extend({**row, "source_file": str(path)} for row in rows)
    return result


@dataclass(frozen=True)
class FlushInputs:
    files: list[FileLines]
    folder: Path


@dataclass(frozen=True)
class FlushResult:
    files: int
    lines: int
    rows_read: int
    rows_inserted: int
    quarantined: int
    files_moved: int

    def __str__(self) -> str:
        return (
            f"{self.lines} log lines from {self.files} files: {self.rows_read} predictions "
            f"({self.rows_inserted} new in gold.online_inference_log), {self.quarantined} lines quarantined, "
            f"{self.files_moved} closed files moved to {FLUSHED_FOLDER}/"
        )


class InferenceLogFlushStep(Step[FlushInputs, FlushInputs, FlushResult]):
    """The API's inference log files -> gold.online_inference_log (see the module docstring)."""

    def extract(self, ctx: StepContext, params: Mapping[str, Any]) -> FlushInputs:
        folder = log_folder(ctx.settings)
        now = wall_clock()
        paths = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
        return FlushInputs([read_file(path, is_closed(path, now)) for path in paths], folder)

    def transform(self, inputs: FlushInputs) -> FlushInputs:
        return inputs

    def load(self, ctx: StepContext, inputs: FlushInputs) -> FlushResult:
        from athlete_platform.lakehouse.ddl import ensure_table
        from athlete_platform.lakehouse.writes import insert_missing

        spark, names = ctx.spark, ctx.names
        stamp = wall_clock()
        rows = [row for f in inputs.files for row in f.rows]
        rejected = [(str(f.path), *entry) for f in inputs.files for entry in f.rejected]
        table = ensure_table(spark, names, tables.ONLINE_INFERENCE_LOG)
        inserted = 0
        if rows:
            frame = log_frame(spark, rows, ctx.run_id, stamp)
            inserted = insert_missing(spark, table, frame, tables.ONLINE_INFERENCE_LOG.keys)
        if rejected:
            quarantine(ctx, rejected, stamp)
        moved = sum(move_flushed(f.path, inputs.folder) for f in inputs.files if f.closed)
        result = FlushResult(
            len(inputs.files), sum(f.lines for f in inputs.files), len(rows), inserted, len(rejected), moved
        )
        log.info("flush-inference-log: %s", result)
        return result


def log_frame(spark, rows: Sequence[Mapping[str, Any]], run_id: str, flushed_at: datetime) -> DataFrame:
    """Rows for gold.online_inference_log; dates and times travel as text and are cast (in UTC)."""
    from pyspark.sql import functions as F

    from athlete_platform.lakehouse.writes import utc_timestamp

    spec = tables.ONLINE_INFERENCE_LOG
    carried = [c for c in spec.columns if c.name not in ("_ingested_at", "_run_id")]
    as_text = {"TIMESTAMP", "DATE"}
    text_schema = ", ".join(f"`{c.name}` {'STRING' if c.type in as_text else c.type}" for c in carried)
    records = [tuple(_text(row[c.name]) if c.type in as_text else row[c.name] for c in carried) for row in rows]
    frame = spark.createDataFrame(records, text_schema)
    return frame.select(
        *[F.col(c.name).cast(c.type).alias(c.name) if c.type in as_text else F.col(c.name) for c in carried],
        utc_timestamp(flushed_at).alias("_ingested_at"),
        F.lit(run_id).alias("_run_id"),
    )


def _text(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value.isoformat()


def quarantine(ctx: StepContext, rejected: Sequence[tuple[str, str, str, str]], stamp: datetime) -> None:
    """Rejected lines -> bronze.quarantine, keyed by file, line number, text and reason (a line
    re-read from a file still being written is stored once)."""
    from athlete_platform.ingestion.quarantine import quarantine_rows
    from athlete_platform.lakehouse.ddl import ensure_table
    from athlete_platform.lakehouse.writes import insert_missing

    spark = ctx.spark
    frame = spark.createDataFrame(
        [(source, where, text[:65536], reason) for source, where, text, reason in rejected],
        "source_file string, record_key string, payload string, reason string",
    )
    table = ensure_table(spark, ctx.names, tables.QUARANTINE)
    insert_missing(spark, table, quarantine_rows(frame, QUARANTINE_SOURCE, ctx.run_id, stamp), ("quarantine_id",))


def move_flushed(path: Path, folder: Path) -> bool:
    """Move a closed, flushed file to `flushed/<day>/` (same file system: an atomic rename)."""
    match = FILE_PATTERN.match(path.name)
    day = f"{match.group(1)[:4]}-{match.group(1)[4:6]}-{match.group(1)[6:8]}" if match else "unnamed"
    target = folder / FLUSHED_FOLDER / day
    target.mkdir(parents=True, exist_ok=True)
    os.replace(path, target / path.name)
    return True
