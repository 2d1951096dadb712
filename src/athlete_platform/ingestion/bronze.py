"""Bronze ingestion: landing folder -> bronze.sessions_raw, bronze.device_files, bronze.quarantine.

Landing layout (under `<data_dir>/landing/`):
  app_export/*.jsonl            app exports, one JSON record per line
  devices/<athlete_id>/*.fit|tcx|gpx   device files, the folder names the athlete

Incremental like a file-notification loader: an app-export file is ingested once (by path,
logged in bronze.landing_files); a device file once (by sha256, in bronze.device_files).
Writes are keyed on the source file, so a run that dies half-way is simply run again.
Every line or file goes somewhere: in = accepted + quarantined, per file and per run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from athlete_platform.ingestion.device_files import (
    SUPPORTED_FORMATS,
    DeviceFileError,
    DeviceSession,
    parse_device_file,
    sha256_of,
)
from athlete_platform.lakehouse import schemas
from athlete_platform.lakehouse.writes import (
    insert_missing,
    merge_upsert,
    replace_slice,
    sql_string_list,
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
    """Pure transform: (path, line_number, line) -> + record_type, reason (null when accepted).

    A line is accepted when it is one complete JSON object with a known `record_type`.
    """
    from pyspark.sql import functions as F

    parsed = F.from_json(
        "line",
        "record_type STRING, _corrupt STRING",
        {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"},
    )
    with_parse = lines.withColumn("_parsed", parsed)
    first_char = F.substring(F.ltrim("line"), 1, 1)
    reason = (
        F.when(
            (first_char != "{") | F.col("_parsed").isNull() | F.col("_parsed._corrupt").isNotNull(),
            F.lit("malformed_json: not one complete JSON object"),
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


def quarantine_rows(frame: DataFrame, source: str, run_id: str, rejected_at: datetime) -> DataFrame:
    """Shape rejected rows (source_file, record_key, payload, reason) as bronze.quarantine."""
    from pyspark.sql import functions as F

    key = F.sha2(F.concat_ws("\u0001", F.lit(source), "source_file", "record_key", "payload", "reason"), 256)
    return frame.select(
        key.alias("quarantine_id"),
        F.lit(source).alias("source"),
        "source_file",
        "record_key",
        "payload",
        "reason",
        utc_timestamp(rejected_at).alias("rejected_at"),
        F.lit(run_id).alias("_run_id"),
    )


def _uri_to_path(uri):
    """`file:///a%20b/c+d.jsonl` (what `_metadata.file_path` holds) -> `/a b/c+d.jsonl`.

    The URI is percent-encoded; `url_decode` is form decoding, which would also turn a
    literal `+` into a space, so `+` is protected first (percent-encoding never emits it).
    """
    from pyspark.sql import functions as F

    local = F.regexp_replace(uri, "^file:(//)?", "")
    return F.url_decode(F.regexp_replace(local, "\\+", "%2B"))


def ingest_app_exports(
    spark: SparkSession, names: TableNames, landing: Path, run_id: str, ingested_at: datetime
) -> IngestCounts:
    """Ingest app-export files not seen before."""
    from pyspark.sql import functions as F

    files_table = schemas.ensure_table(spark, names, schemas.LANDING_FILES)
    raw_table = schemas.ensure_table(spark, names, schemas.SESSIONS_RAW)
    quarantine_table = schemas.ensure_table(spark, names, schemas.QUARANTINE)

    seen = {row.path for row in spark.table(files_table).select("path").collect()}
    new_files = sorted(
        str(p.resolve()) for p in (landing / APP_EXPORT_DIR).glob("*.jsonl") if str(p.resolve()) not in seen
    )
    if not new_files:
        return IngestCounts()

    # wholetext keeps one row per file, so line numbers are exact; files are one day each.
    texts = spark.read.text(new_files, wholetext=True).select(F.col("_metadata.file_path").alias("uri"), "value")
    lines = (
        texts.select("uri", F.posexplode(F.split("value", "\n")).alias("index", "line"))
        .where(F.trim("line") != "")
        .select(
            _uri_to_path(F.col("uri")).alias("path"),
            (F.col("index") + 1).cast("bigint").alias("line_number"),
            "line",
        )
    )
    classified = classify_lines(lines).cache()

    in_files = sql_string_list(new_files)
    accepted = classified.where("reason IS NULL").select(
        "record_type",
        F.col("line").alias("payload"),
        F.col("path").alias("_source_file"),
        F.col("line_number").alias("_line_number"),
        utc_timestamp(ingested_at).alias("_ingested_at"),
        F.lit(run_id).alias("_run_id"),
    )
    replace_slice(accepted, raw_table, f"_source_file IN ({in_files})")

    rejected = classified.where("reason IS NOT NULL").select(
        F.col("path").alias("source_file"),
        F.concat(F.lit("line "), F.col("line_number").cast("string")).alias("record_key"),
        F.col("line").alias("payload"),
        "reason",
    )
    insert_missing(
        spark, quarantine_table, quarantine_rows(rejected, "landing", run_id, ingested_at), ["quarantine_id"]
    )

    per_file = classified.groupBy("path").agg(
        F.count("*").alias("lines"),
        F.count(F.when(F.col("reason").isNull(), 1)).alias("accepted"),
        F.count(F.when(F.col("reason").isNotNull(), 1)).alias("quarantined"),
    )
    sizes = spark.createDataFrame([(p, Path(p).stat().st_size) for p in new_files], "path string, size_bytes bigint")
    manifest = sizes.join(per_file, "path", "left").select(
        "path",
        "size_bytes",
        F.coalesce("lines", F.lit(0)).cast("bigint").alias("lines"),
        F.coalesce("accepted", F.lit(0)).cast("bigint").alias("accepted"),
        F.coalesce("quarantined", F.lit(0)).cast("bigint").alias("quarantined"),
        utc_timestamp(ingested_at).alias("_ingested_at"),
        F.lit(run_id).alias("_run_id"),
    )
    # Written last: a file counts as ingested only once its records are in.
    merge_upsert(spark, files_table, manifest, ["path"])
    totals = manifest.agg(F.sum("lines"), F.sum("accepted"), F.sum("quarantined")).first()
    classified.unpersist()
    counts = IngestCounts(len(new_files), int(totals[0] or 0), int(totals[1] or 0), int(totals[2] or 0))
    _log_counts("app exports", counts)
    return counts


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


def ingest_device_files(
    spark: SparkSession, names: TableNames, landing: Path, run_id: str, ingested_at: datetime
) -> IngestCounts:
    """Parse device files not seen before (by path, then by content hash) on the driver."""
    devices_table = schemas.ensure_table(spark, names, schemas.DEVICE_FILES)
    raw_table = schemas.ensure_table(spark, names, schemas.SESSIONS_RAW)
    quarantine_table = schemas.ensure_table(spark, names, schemas.QUARANTINE)

    known = spark.table(devices_table).select("sha256", "path", "status").collect()
    known_paths = {row.path for row in known}
    # A quarantined file may be fixed (e.g. moved into an athlete folder) and dropped again.
    known_hashes = {row.sha256 for row in known if row.status == "ingested"}
    candidates = sorted(
        p.resolve() for p in (landing / DEVICES_DIR).rglob("*") if p.is_file() and str(p.resolve()) not in known_paths
    )
    device_rows, raw_rows, rejected_rows = [], [], []
    hashes_this_run: set[str] = set()
    for path in candidates:
        digest = sha256_of(path)
        if digest in known_hashes or digest in hashes_this_run:
            log.info("device file %s: same content as an ingested file (sha256 %s), skipped", path, digest[:12])
            continue
        hashes_this_run.add(digest)
        athlete_id = path.parent.name if path.parent != (landing / DEVICES_DIR).resolve() else None
        fmt = path.suffix.lower().lstrip(".")
        error = None
        try:
            if athlete_id is None:
                raise DeviceFileError(f"{fmt}: no athlete folder: put device files under landing/devices/<athlete_id>/")
            session = parse_device_file(path)
            raw_rows.append(("session", device_session_payload(athlete_id, session), str(path), 0))
        except DeviceFileError as exc:
            error = str(exc)
            rejected_rows.append((str(path), digest, json.dumps({"path": str(path), "sha256": digest}), error))
        device_rows.append(
            (
                digest,
                str(path),
                fmt if fmt in SUPPORTED_FORMATS else "unknown",
                athlete_id,
                "quarantined" if error else "ingested",
                error,
                path.stat().st_size,
            )
        )
    if not device_rows:
        return IngestCounts()

    from pyspark.sql import functions as F

    stamp = [utc_timestamp(ingested_at).alias("_ingested_at"), F.lit(run_id).alias("_run_id")]
    if raw_rows:
        raw = spark.createDataFrame(
            raw_rows, "record_type string, payload string, _source_file string, _line_number bigint"
        )
        paths = sql_string_list(r[2] for r in raw_rows)
        replace_slice(raw.select("*", *stamp), raw_table, f"_source_file IN ({paths})")
    if rejected_rows:
        rejected = spark.createDataFrame(
            rejected_rows, "source_file string, record_key string, payload string, reason string"
        )
        insert_missing(
            spark, quarantine_table, quarantine_rows(rejected, "device_file", run_id, ingested_at), ["quarantine_id"]
        )
    devices = spark.createDataFrame(
        device_rows,
        "sha256 string, path string, file_format string, athlete_id string, status string, error string, "
        "size_bytes bigint",
    )
    merge_upsert(spark, devices_table, devices.select("*", *stamp), ["sha256"])
    counts = IngestCounts(len(device_rows), len(device_rows), len(raw_rows), len(rejected_rows))
    _log_counts("device files", counts)
    return counts


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


def run_bronze(
    spark: SparkSession, names: TableNames, landing: Path, run_id: str, ingested_at: datetime
) -> IngestCounts:
    """Ingest everything new in the landing folder; returns the run's counts."""
    if not landing.exists():
        from athlete_platform.errors import SetupError

        raise SetupError(
            f"The landing folder {landing} does not exist. Generate sample data with "
            "`athlete-platform generate` or drop app exports into landing/app_export/."
        )
    return ingest_app_exports(spark, names, landing, run_id, ingested_at) + ingest_device_files(
        spark, names, landing, run_id, ingested_at
    )
