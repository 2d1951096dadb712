"""Bronze ingestion: landing folder -> bronze.sessions_raw, bronze.device_files, bronze.quarantine.

Landing layout (under `<data_dir>/landing/`):
  app_export/*.jsonl            app exports, one JSON record per line
  devices/<athlete_id>/*.fit|tcx|gpx   device files, the folder names the athlete

Incremental like a file-notification loader: an app-export file is ingested once (by path,
logged in bronze.landing_files); a device file once (by sha256, in bronze.device_files).
Writes are keyed on the source file, so a run that dies half-way is simply run again.
Every line or file goes somewhere: in = accepted + quarantined, per file and per run.

Bronze lists and reads landing files itself (`landing.py`): paths are literal (never a Hadoop
glob or URI), no symlink leads out of the landing folder (such a file is quarantined whole, as
line 0, and never opened), and lines are checked as bytes (BOM dropped; too long or not UTF-8:
quarantined). Spark reads only the lines bronze staged under `<data_dir>/staging/`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from athlete_platform.errors import SetupError
from athlete_platform.ingestion.device_files import (
    SUPPORTED_FORMATS,
    DeviceFileError,
    DeviceSession,
    parse_device_bytes,
)
from athlete_platform.ingestion.landing import (
    LandingEntry,
    LandingRefused,
    list_landing,
    open_confined,
    read_lines,
)
from athlete_platform.ingestion.quarantine import quarantine_rows
from athlete_platform.ingestion.record_keys import landed_keys
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.ddl import ensure_table
from athlete_platform.lakehouse.sql import sql_escape, sql_string_list
from athlete_platform.lakehouse.step import Step, StepContext, wall_clock
from athlete_platform.lakehouse.writes import (
    insert_missing,
    merge_upsert,
    replace_slice,
    utc_timestamp,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from athlete_platform.lakehouse.tables import TableNames

log = logging.getLogger(__name__)

APP_EXPORT_DIR = "app_export"
DEVICES_DIR = "devices"
RECORD_TYPES = ("athlete", "session")


@dataclass(frozen=True)
class IngestCounts:
    """What one run read and where it went (in = accepted + quarantined)."""

    files: int = 0
    records_in: int = 0
    accepted: int = 0
    quarantined: int = 0

    def __add__(self, other: IngestCounts) -> IngestCounts:
        return IngestCounts(
            self.files + other.files,
            self.records_in + other.records_in,
            self.accepted + other.accepted,
            self.quarantined + other.quarantined,
        )

    @property
    def reconciles(self) -> bool:
        return self.records_in == self.accepted + self.quarantined


def classify_lines(lines: DataFrame) -> DataFrame:
    """Pure transform: (path, line_number, line[, read_error]) -> + record_type, reason (null when accepted).

    A line is accepted only when it is exactly one JSON object (strict JSON, nothing after it)
    with no key twice and a known `record_type`. The first rule a line breaks is its reason:
    `read_error` (set by extract: too long, not UTF-8, a file refused whole), raw control
    characters, not a JSON object, a duplicate key, text after the object, then record_type.
    """
    from pyspark.sql import functions as F

    read_error = F.col("read_error") if "read_error" in lines.columns else F.lit(None).cast("string")
    parsed = F.from_json(
        "line",
        "record_type STRING, _corrupt STRING",
        {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"},
    )
    with_parse = lines.withColumn("_parsed", parsed).withColumn("_keys", F.json_object_keys("line"))
    first_char = F.substring(F.ltrim("line"), 1, 1)
    # JSON needs control characters escaped; tab, CR and LF may only separate tokens.
    control = F.col("line").rlike("[\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F]")
    # Spark's JSON readers stop after the first value and ignore what follows. Wrapping the line
    # exposes any tail: after the object, `[line]` needs `,` or `]` and `{"_": line}` needs `,` or
    # `}`, so only whitespace passes both (`, ...` makes the array longer than 1). The variant
    # parser is strict JSON and refuses duplicate keys at any depth.
    array_of_one = F.json_array_length(F.concat(F.lit("["), "line", F.lit("]"))) == 1  # null if invalid
    in_object = F.try_parse_json(F.concat(F.lit('{"_":'), "line", F.lit("}"))).isNotNull()
    exactly_one = F.coalesce(array_of_one, F.lit(False)) & in_object
    # A duplicate is named from the sorted keys (neighbours equal), in one linear pass: the
    # sorted array is the fold's input, evaluated once (an index lambda would sort per element).
    first_repeat = F.aggregate(
        F.array_sort("_keys"),
        F.struct(F.lit(None).cast("string").alias("prev"), F.lit(None).cast("string").alias("dup")),
        lambda acc, k: F.struct(k.alias("prev"), F.coalesce(acc["dup"], F.when(acc["prev"] == k, k)).alias("dup")),
        lambda acc: acc["dup"],
    )
    reason = (
        F.when(read_error.isNotNull(), read_error)
        .when(control, F.lit("control_character: a raw control character (JSON needs them escaped)"))
        .when(
            (first_char != "{") | F.col("_parsed").isNull() | F.col("_parsed._corrupt").isNotNull(),
            F.lit("malformed_json: not one complete JSON object"),
        )
        .when(
            F.size(F.array_distinct("_keys")) < F.size("_keys"),
            F.concat(
                F.lit('duplicate_key: "'),
                first_repeat,
                F.lit('" appears more than once (ambiguous record)'),
            ),
        )
        .when(
            ~exactly_one & F.try_parse_json("line").isNotNull(),
            F.lit("malformed_json: text after the JSON object"),
        )
        .when(
            ~exactly_one,
            F.lit("malformed_json: not strict JSON (a nested duplicate key, single quotes, NaN or similar)"),
        )
        .when(F.col("_parsed.record_type").isNull(), F.lit("missing_record_type"))
        .when(
            ~F.col("_parsed.record_type").isin(*RECORD_TYPES),
            F.concat(F.lit("unknown_record_type: "), F.col("_parsed.record_type")),
        )
    )
    return with_parse.select(
        "path", "line_number", "line", F.col("_parsed.record_type").alias("record_type"), reason.alias("reason")
    )


def device_session_payload(athlete_id: str, session: DeviceSession) -> str:
    """The session record a parsed device file becomes (the same shape as app exports)."""
    start = session.start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {
        "record_type": "session",
        "session_id": f"dev-{session.sha256[:24]}",
        "athlete_id": athlete_id,
        "sport": session.sport,
        "start_time": start,
        "duration_s": session.duration_s,
        "distance_m": session.distance_m,
        "elevation_gain_m": session.elevation_gain_m,
        "avg_hr": session.avg_hr,
        "max_hr": session.max_hr,
        "rpe": None,
        "notes": None,
        "is_race": False,
        "source": f"device:{session.file_format}",
        # Deterministic so re-ingesting the same file yields the same record.
        "updated_at": start,
    }
    return json.dumps(record, sort_keys=True)


@dataclass(frozen=True)
class BronzeInputs:
    """What is new in the landing folder: app-export lines and parsed device files."""

    app_files: list[str]
    lines: DataFrame | None  # (path, line_number, line, read_error) of the new app-export files
    file_sizes: DataFrame | None  # (path, size_bytes) of the new app-export files
    devices: DataFrame | None  # one row per new device file, DEVICE_ROW_SCHEMA
    run_id: str
    ingested_at: datetime
    staging: Path | None = None  # the staged lines `lines` reads; removed by load


@dataclass(frozen=True)
class BronzeOutputs:
    raw: DataFrame | None  # bronze.sessions_raw rows of every new file
    raw_files: list[str]  # the files those rows come from (the slice they replace)
    quarantine: DataFrame | None
    landing_files: DataFrame | None
    device_files: DataFrame | None
    classified: DataFrame | None  # cached; released by load
    staging: Path | None = None  # removed by load, once the writes are done


DEVICE_ROW_SCHEMA = (
    "sha256 string, path string, file_format string, athlete_id string, status string, error string, "
    "size_bytes bigint, payload string"
)


STAGED_LINES_SCHEMA = "path string, line_number bigint, line string, read_error string"
MAX_DEVICE_FILE_BYTES = 64 << 20  # 64 MiB: a day's FIT file is a few MiB; a bigger one is not read


def stage_new_app_exports(landing: Path, seen: set[str], staging: Path) -> list[tuple[str, int | None]]:
    """Read the app-export files not ingested yet and stage their lines for Spark.

    Returns (path, size_bytes) per new file. Each file's non-blank lines go to one JSON-lines file
    in `staging` as (path, line_number, line, read_error) rows: Spark then reads only this folder
    (a name bronze chose, not globbed), never a landing path. A file refused whole (a link out
    of landing, not a regular file) is one row with line_number 0, its reason and a description,
    and is never opened. A file that cannot be opened or read now (vanished, permissions) is left
    for the next run, with a warning.
    """
    entries = [e for e in list_landing(landing, APP_EXPORT_DIR, recursive=False, suffix=".jsonl") if e.path not in seen]
    staging.mkdir(parents=True, exist_ok=True)
    files: list[tuple[str, int | None]] = []
    for index, entry in enumerate(entries):
        staged = staging / f"{index:06d}.jsonl"
        try:
            with open(staged, "w", encoding="utf-8") as sink:
                if entry.refusal:
                    sink.write(_staged_row(entry.path, 0, _describe(entry), entry.refusal))
                    files.append((entry.path, None))
                    continue
                try:
                    handle = open_confined(entry, landing)
                except LandingRefused as exc:
                    sink.write(_staged_row(entry.path, 0, _describe(entry), str(exc)))
                    files.append((entry.path, None))
                    continue
                with handle:
                    size = os.fstat(handle.fileno()).st_size
                    for line in read_lines(handle):
                        sink.write(_staged_row(entry.path, line.line_number, line.line, line.read_error))
                files.append((entry.path, size))
        except OSError as exc:
            staged.unlink(missing_ok=True)
            log.warning("app export %s not read this run (%s); it is tried again next run", entry.path, exc)
    return files


def _staged_row(path: str, line_number: int, line: str, read_error: str | None) -> str:
    # ensure_ascii: the staged file is plain ASCII, whatever the line holds.
    record = {"path": path, "line_number": line_number, "line": line, "read_error": read_error}
    return json.dumps(record, ensure_ascii=True) + "\n"


def _describe(entry: LandingEntry) -> str:
    """What bronze.quarantine keeps of a file it did not read: where it is and where it points."""
    return json.dumps({"path": entry.path, "link_target": entry.link_target}, ensure_ascii=False)


def read_staged_lines(spark: SparkSession, staging: Path) -> DataFrame:
    """The staged lines as a DataFrame (path, line_number, line, read_error)."""
    # __globPaths__ = false: the folder is taken literally, whatever the data folder's name
    # (`[`, `*`, `:` ...); its files have names bronze chose.
    return (
        spark.read.schema(STAGED_LINES_SCHEMA)
        .option("mode", "FAILFAST")
        .option("__globPaths__", "false")
        .json(str(staging))
    )


# Where bronze remembers the landing folder it last ran with (under the data folder).
LANDING_ROOT_MARKER = "bronze_landing_root.txt"
# Columns that hold a landing path, per table (rewritten when the data folder moves).
LANDING_PATH_COLUMNS = (
    (tables.LANDING_FILES, "path"),
    (tables.DEVICE_FILES, "path"),
    (tables.SESSIONS_RAW, "_source_file"),
    (tables.QUARANTINE, "source_file"),
)


def follow_moved_landing(spark: SparkSession, names: TableNames, data_path: Path, landing: Path) -> bool:
    """When the data folder moved since bronze last ran, rewrite the manifests' paths to the new
    landing folder (so no file is read twice); True when it did.

    `<data>/LANDING_ROOT_MARKER` holds the landing folder bronze last ran with: it moves with
    the data folder, so after a move it names the old place. A data folder without it (new, or
    from before this rule) only gets it written."""
    marker, current = data_path / LANDING_ROOT_MARKER, os.path.realpath(landing)
    recorded = marker.read_text() if marker.is_file() else None
    moved = recorded is not None and recorded != current
    if moved:
        relocate_landing_paths(spark, names, recorded, current)
    if recorded != current:
        marker.write_text(current)
    return moved


def relocate_landing_paths(spark: SparkSession, names: TableNames, old_root: str, new_root: str) -> None:
    """Rewrite every recorded landing path under `old_root` to `new_root` (one UPDATE per table)."""
    old, new = sql_escape(old_root), sql_escape(new_root)
    for table, column in LANDING_PATH_COLUMNS:
        name = names(table)
        if not spark.catalog.tableExists(name):
            continue
        spark.sql(
            f"UPDATE {name} SET {column} = concat('{new}', substr({column}, {len(old_root) + 1})) "
            f"WHERE {column} = '{old}' OR startswith({column}, '{old}/')"
        )
    log.warning("The data folder moved: bronze's landing paths under %s now name %s", old_root, new_root)


def parse_new_device_files(landing: Path, known: list) -> list[tuple]:
    """Parse device files not seen before (by path, then by content hash) on the driver.

    Returns one DEVICE_ROW_SCHEMA tuple per new file: status `ingested` with the session
    payload, or `quarantined` with the reason and a payload describing the file. The athlete is
    the name of the file's own folder as listed (a link's folder, not its target's). A file
    refused without being read (a link out of landing) is keyed by the hash of its path, as it
    has no content bronze may read.
    """
    known_paths = {row.path for row in known}
    # A quarantined file may be fixed (e.g. moved into an athlete folder) and dropped again.
    known_hashes = {row.sha256 for row in known if row.status == "ingested"}
    devices_root = str(Path(os.path.realpath(landing)) / DEVICES_DIR)
    entries = [e for e in list_landing(landing, DEVICES_DIR, recursive=True) if e.path not in known_paths]
    rows: list[tuple] = []
    hashes_this_run: set[str] = set()
    for entry in entries:
        fmt = Path(entry.path).suffix.lower().lstrip(".")
        athlete_id = entry.folder if os.path.dirname(entry.path) != devices_root else None
        try:
            digest, size, content = _read_device_file(entry, landing)
        except LandingRefused as exc:
            digest = hashlib.sha256(f"unread:{entry.path}".encode()).hexdigest()
            rows.append((digest, entry.path, _format(fmt), athlete_id, "quarantined", str(exc), None, _describe(entry)))
            continue
        except OSError as exc:
            log.warning("device file %s not read this run (%s); it is tried again next run", entry.path, exc)
            continue
        if digest in known_hashes or digest in hashes_this_run:
            log.info("device file %s: same content as an ingested file (sha256 %s), skipped", entry.path, digest[:12])
            continue
        hashes_this_run.add(digest)
        error = payload = None
        try:
            if athlete_id is None:
                raise DeviceFileError(f"{fmt}: no athlete folder: put device files under landing/devices/<athlete_id>/")
            if content is None:
                raise DeviceFileError(f"{fmt}: file too large: {size} bytes, over the limit of {MAX_DEVICE_FILE_BYTES}")
            payload = device_session_payload(athlete_id, parse_device_bytes(content, entry.path))
        except DeviceFileError as exc:
            error = str(exc)
            payload = json.dumps({"path": entry.path, "sha256": digest})  # what bronze.quarantine keeps
        status = "quarantined" if error else "ingested"
        rows.append((digest, entry.path, _format(fmt), athlete_id, status, error, size, payload))
    return rows


def _format(fmt: str) -> str:
    return fmt if fmt in SUPPORTED_FORMATS else "unknown"


def _read_device_file(entry: LandingEntry, landing: Path) -> tuple[str, int, bytes | None]:
    """(sha256, size, bytes) of a device file, read once; bytes is None over MAX_DEVICE_FILE_BYTES
    (the hash is still taken, in chunks, so the file is known by its content)."""
    with open_confined(entry, landing) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size <= MAX_DEVICE_FILE_BYTES:
            content = handle.read(MAX_DEVICE_FILE_BYTES + 1)
            if len(content) <= MAX_DEVICE_FILE_BYTES:  # it may have grown since fstat
                return hashlib.sha256(content).hexdigest(), len(content), content
            digest = hashlib.sha256(content)
        else:
            digest = hashlib.sha256()
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
        return digest.hexdigest(), size, None


def app_export_outputs(
    classified: DataFrame, file_sizes: DataFrame, run_id: str, ingested_at: datetime
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Pure transform: classified lines -> (sessions_raw rows, rejected rows, landing_files rows)."""
    from pyspark.sql import functions as F

    stamp = [utc_timestamp(ingested_at).alias("_ingested_at"), F.lit(run_id).alias("_run_id")]
    accepted = classified.where("reason IS NULL").select(
        "record_type",
        F.col("line").alias("payload"),
        F.col("path").alias("_source_file"),
        F.col("line_number").alias("_line_number"),
        *stamp,
    )
    accepted = accepted.select("*", *landed_keys())
    rejected = classified.where("reason IS NOT NULL").select(
        F.col("path").alias("source_file"),
        # line 0 stands for the file as a whole (refused without being read)
        F.when(F.col("line_number") == 0, F.lit("file"))
        .otherwise(F.concat(F.lit("line "), F.col("line_number").cast("string")))
        .alias("record_key"),
        F.col("line").alias("payload"),
        "reason",
    )
    per_file = classified.groupBy("path").agg(
        F.count("*").alias("lines"),
        F.count(F.when(F.col("reason").isNull(), 1)).alias("accepted"),
        F.count(F.when(F.col("reason").isNotNull(), 1)).alias("quarantined"),
    )
    manifest = file_sizes.join(per_file, "path", "left").select(
        "path",
        "size_bytes",
        F.coalesce("lines", F.lit(0)).cast("bigint").alias("lines"),
        F.coalesce("accepted", F.lit(0)).cast("bigint").alias("accepted"),
        F.coalesce("quarantined", F.lit(0)).cast("bigint").alias("quarantined"),
        *stamp,
    )
    return accepted, rejected, manifest


def device_file_outputs(
    devices: DataFrame, run_id: str, ingested_at: datetime
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Pure transform: parsed device files -> (sessions_raw rows, rejected rows, device_files rows)."""
    from pyspark.sql import functions as F

    stamp = [utc_timestamp(ingested_at).alias("_ingested_at"), F.lit(run_id).alias("_run_id")]
    raw = devices.where("status = 'ingested'").select(
        F.lit("session").alias("record_type"),
        "payload",
        F.col("path").alias("_source_file"),
        F.lit(0).cast("bigint").alias("_line_number"),
        *stamp,
    )
    raw = raw.select("*", *landed_keys())
    rejected = devices.where("status = 'quarantined'").select(
        F.col("path").alias("source_file"),
        F.col("sha256").alias("record_key"),
        "payload",
        F.col("error").alias("reason"),
    )
    manifest = devices.drop("payload").select("*", *stamp)
    return raw, rejected, manifest


class BronzeStep(Step[BronzeInputs, BronzeOutputs, IngestCounts]):
    """landing/ -> bronze.sessions_raw, bronze.landing_files, bronze.device_files, bronze.quarantine."""

    def extract(self, ctx: StepContext, params: Mapping[str, Any]) -> BronzeInputs:
        spark, landing = ctx.spark, ctx.settings.landing_path
        if not landing.exists():
            raise SetupError(
                f"The landing folder {landing} does not exist. Generate sample data with "
                "`athlete-platform generate` or drop app exports into landing/app_export/."
            )
        files_table, devices_table = (
            ensure_table(spark, ctx.names, t) for t in (tables.LANDING_FILES, tables.DEVICE_FILES)
        )
        seen = {row.path for row in spark.table(files_table).select("path").collect()}
        if follow_moved_landing(spark, ctx.names, ctx.settings.data_path, landing):
            seen = {row.path for row in spark.table(files_table).select("path").collect()}
        known = spark.table(devices_table).select("sha256", "path", "status").collect()
        staging = _staging_folder(ctx.settings.data_path)
        try:
            app_files = stage_new_app_exports(landing, seen, staging)
            lines = read_staged_lines(spark, staging) if app_files else None
            sizes = spark.createDataFrame(app_files, "path string, size_bytes bigint") if app_files else None
            device_rows = parse_new_device_files(landing, known)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        devices = spark.createDataFrame(device_rows, DEVICE_ROW_SCHEMA) if device_rows else None
        paths = [path for path, _ in app_files]
        return BronzeInputs(paths, lines, sizes, devices, ctx.run_id, wall_clock(), staging)

    def transform(self, inputs: BronzeInputs) -> BronzeOutputs:
        raw_parts, rejected_parts, sources = [], [], []
        landing_manifest = device_manifest = classified = None
        if inputs.lines is not None:
            classified = classify_lines(inputs.lines).cache()
            accepted, rejected, landing_manifest = app_export_outputs(
                classified, inputs.file_sizes, inputs.run_id, inputs.ingested_at
            )
            raw_parts.append(accepted)
            rejected_parts.append(quarantine_rows(rejected, "landing", inputs.run_id, inputs.ingested_at))
            sources += inputs.app_files
        if inputs.devices is not None:
            raw, rejected, device_manifest = device_file_outputs(inputs.devices, inputs.run_id, inputs.ingested_at)
            raw_parts.append(raw)
            rejected_parts.append(quarantine_rows(rejected, "device_file", inputs.run_id, inputs.ingested_at))
            sources += [r.path for r in inputs.devices.where("status = 'ingested'").select("path").collect()]
        return BronzeOutputs(
            raw=_union(raw_parts),
            raw_files=sources,
            quarantine=_union(rejected_parts),
            landing_files=landing_manifest,
            device_files=device_manifest,
            classified=classified,
            staging=inputs.staging,
        )

    def load(self, ctx: StepContext, outputs: BronzeOutputs) -> IngestCounts:
        try:
            return self._write(ctx, outputs)
        finally:
            if outputs.classified is not None:
                outputs.classified.unpersist()
            if outputs.staging is not None:
                shutil.rmtree(outputs.staging, ignore_errors=True)

    def _write(self, ctx: StepContext, outputs: BronzeOutputs) -> IngestCounts:
        from pyspark.sql import functions as F

        spark, names = ctx.spark, ctx.names
        if outputs.raw is not None and outputs.raw_files:
            raw_table = ensure_table(spark, names, tables.SESSIONS_RAW)
            replace_slice(outputs.raw, raw_table, f"_source_file IN ({sql_string_list(outputs.raw_files)})")
        if outputs.quarantine is not None:
            quarantine = ensure_table(spark, names, tables.QUARANTINE)
            insert_missing(spark, quarantine, outputs.quarantine, tables.QUARANTINE.keys)
        # The manifests go last: a file counts as ingested only once its records are in.
        counts = IngestCounts()
        if outputs.landing_files is not None:
            merge_upsert(spark, names(tables.LANDING_FILES), outputs.landing_files, tables.LANDING_FILES.keys)
            totals = outputs.landing_files.agg(F.count("*"), F.sum("lines"), F.sum("accepted"), F.sum("quarantined"))
            app = IngestCounts(*(int(v or 0) for v in totals.first()))
            _log_counts("app exports", app)
            counts += app
        if outputs.device_files is not None:
            merge_upsert(spark, names(tables.DEVICE_FILES), outputs.device_files, tables.DEVICE_FILES.keys)
            row = outputs.device_files.agg(F.count("*"), F.count(F.when(F.col("status") == "ingested", 1))).first()
            device = IngestCounts(int(row[0]), int(row[0]), int(row[1]), int(row[0]) - int(row[1]))
            _log_counts("device files", device)
            counts += device
        return counts


STAGING_DIR = "staging"
_STALE_STAGING_S = 24 * 3600


def _staging_folder(data_path: Path) -> Path:
    """A fresh folder for this run's staged lines under <data_dir>/staging/ (inside the data
    folder, like everything bronze writes); a crashed run's folder is removed after a day."""
    parent = data_path / STAGING_DIR
    if parent.is_dir():
        for old in parent.glob("bronze-*"):
            try:
                if time.time() - old.stat().st_mtime > _STALE_STAGING_S:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
    return parent / f"bronze-{uuid.uuid4().hex}"


def _union(parts: list[DataFrame]) -> DataFrame | None:
    if not parts:
        return None
    frame = parts[0]
    for part in parts[1:]:
        frame = frame.unionByName(part)
    return frame


def _log_counts(what: str, counts: IngestCounts) -> None:
    log.info(
        "bronze %s: %d files, %d in = %d accepted + %d quarantined%s",
        what,
        counts.files,
        counts.records_in,
        counts.accepted,
        counts.quarantined,
        "" if counts.reconciles else "  (DOES NOT RECONCILE)",
    )
