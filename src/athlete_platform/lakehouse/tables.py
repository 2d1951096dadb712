"""The one table registry: every table's name, schema, keys, columns (with comments and units),
properties and CHECK constraints, and the one place that renders three-level names.

Jobs name a table by its `Table` constant; `TableNames` renders it for the configured catalog:
`uc_athlete_data.gold.athlete_predictions` on the embedded and Unity backends,
`gold.athlete_predictions` on the `session` backend. `lakehouse.ddl.ensure_table` creates or
evolves a table from its entry here. Column names carry units (`_m`, `_s`, `_s_per_km`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

    from athlete_platform.config import CatalogSettings

SCHEMAS: dict[str, str] = {
    "bronze": "Raw records and device files as landed, plus quarantine.",
    "silver": "Typed, validated, deduplicated athletes, sessions and races.",
    "feature_store": "Daily per-athlete training-load features and document embeddings (offline store).",
    "gold": "Predictions and reports that users query.",
    "ml": "Models registered in MLflow.",
}

CDF_PROPERTY = "delta.enableChangeDataFeed"
CDF = {CDF_PROPERTY: "true"}
#: Delta collects min/max/null counts for the first 32 columns of every file it writes. On a wide
#: table whose readers filter only on the key, stats on the other columns skip nothing and cost
#: the writer (0.5-1 s of the 4-5 s it takes to write the feature table's 1M rows).
STATS_ON_KEYS_ONLY = "delta.dataSkippingStatsColumns"


class Named(Protocol):
    """Anything registered under the catalog: a table or a model."""

    schema: str
    name: str


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str


@dataclass(frozen=True, eq=False)  # identity: each table is one registry entry (and a dict key)
class Table:
    """A Delta table: where it lives, its key, its columns and its rules."""

    schema: str
    name: str
    keys: tuple[str, ...]
    comment: str
    columns: tuple[Column, ...]
    properties: dict[str, str] = field(default_factory=dict)
    constraints: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column_types(self) -> dict[str, str]:
        return {c.name: c.type for c in self.columns}

    def struct(self) -> StructType:
        from pyspark.sql.types import StructType

        return StructType.fromDDL(", ".join(f"{c.name} {c.type}" for c in self.columns))


@dataclass(frozen=True)
class RegisteredModel:
    """A model registered in MLflow under the catalog's `ml` schema."""

    schema: str
    name: str


@dataclass(frozen=True)
class TableNames:
    """Renders names for one catalog; `catalog=None` means two-level names.

    `schema_prefix` gives a whole set of tables of its own (e.g. per test module): `gold` becomes
    `<prefix>gold`.
    """

    catalog: str | None
    schema_prefix: str = ""

    @classmethod
    def from_settings(cls, catalog: CatalogSettings) -> TableNames:
        return cls(None if catalog.backend == "session" else catalog.name, catalog.schema_prefix)

    def schema(self, schema: str) -> str:
        schema = self.schema_prefix + schema
        return f"{self.catalog}.{schema}" if self.catalog else schema

    def __call__(self, entry: Named) -> str:
        return f"{self.schema(entry.schema)}.{entry.name}"


def _c(name: str, type_: str, comment: str) -> Column:
    return Column(name, type_, comment)


_LINEAGE = (_c("_run_id", "STRING", "Id of the job run that wrote the row"),)

SESSIONS_RAW = Table(
    "bronze",
    "sessions_raw",
    keys=("_source_file", "_line_number"),
    comment="Every well-formed record as landed (app exports and parsed device files).",
    columns=(
        _c("record_type", "STRING", "athlete or session"),
        _c("payload", "STRING", "The record exactly as landed (JSON)"),
        _c("_source_file", "STRING", "Landing file the record came from"),
        _c("_line_number", "BIGINT", "1-based line in the source file (0 for device files)"),
        _c("_ingested_at", "TIMESTAMP", "When the record was ingested (UTC)"),
        *_LINEAGE,
        # Keys as landed (JSON text, not validated): silver finds every record of an athlete by
        # them without parsing history. Null in rows written before they existed (silver then
        # reads them from the payload).
        _c("athlete_id", "STRING", "athlete_id as written in the payload (unvalidated; null when absent)"),
        _c("session_id", "STRING", "session_id as written in the payload (unvalidated; null for athletes)"),
    ),
    # Silver reads the records added since its last run from the Change Data Feed.
    properties=CDF,
)

LANDING_FILES = Table(
    "bronze",
    "landing_files",
    keys=("path",),
    comment="One row per app-export file ingested; a file is ingested once (by path).",
    columns=(
        _c("path", "STRING", "Absolute path of the landing file"),
        _c("size_bytes", "BIGINT", "File size when ingested, bytes"),
        _c("lines", "BIGINT", "Non-empty lines read"),
        _c("accepted", "BIGINT", "Lines written to bronze.sessions_raw"),
        _c("quarantined", "BIGINT", "Lines written to bronze.quarantine"),
        _c("_ingested_at", "TIMESTAMP", "When the file was ingested (UTC)"),
        *_LINEAGE,
    ),
    constraints={"lines_reconcile": "lines = accepted + quarantined"},
)

DEVICE_FILES = Table(
    "bronze",
    "device_files",
    keys=("sha256",),
    comment="One row per device file (FIT, TCX, GPX), keyed by content hash; ingested once.",
    columns=(
        _c("sha256", "STRING", "SHA-256 of the file content (hex)"),
        _c("path", "STRING", "Landing path when first seen"),
        _c("file_format", "STRING", "fit, tcx or gpx"),
        _c("athlete_id", "STRING", "Athlete, from the landing folder name"),
        _c("status", "STRING", "ingested or quarantined"),
        _c("error", "STRING", "Parser's reason when quarantined"),
        _c("size_bytes", "BIGINT", "File size, bytes"),
        _c("_ingested_at", "TIMESTAMP", "When the file was processed (UTC)"),
        *_LINEAGE,
    ),
    constraints={"device_status": "status IN ('ingested', 'quarantined')"},
)

QUARANTINE = Table(
    "bronze",
    "quarantine",
    keys=("quarantine_id",),
    comment="Every rejected record or file, with the reason; nothing bad is dropped silently.",
    columns=(
        _c("quarantine_id", "STRING", "Stable key: hash of source, payload and reason"),
        _c("source", "STRING", "Stage that rejected it: landing, device_file, silver, stream or inference_log"),
        _c("source_file", "STRING", "File the record came from"),
        _c("record_key", "STRING", "session_id / athlete_id / sha256 when known"),
        _c("payload", "STRING", "The rejected record or a file description"),
        _c("reason", "STRING", "Rule or parser message that rejected it"),
        _c("rejected_at", "TIMESTAMP", "When it was rejected (UTC)"),
        *_LINEAGE,
    ),
)

SESSION_EVENTS = Table(
    "bronze",
    "session_events",
    keys=("event_id",),
    comment="Sessions posted by the app as events, appended in small batches by the Delta Python writer "
    "(ingestion.events, no Spark); the source of the streaming features job. Payload kept as received.",
    columns=(
        _c("event_id", "STRING", "Event key, stamped by the writer (uuid4 hex)"),
        _c("session_id", "STRING", "session_id of the payload when it is a JSON object with a string one, else null"),
        _c("athlete_id", "STRING", "athlete_id of the payload when it is a JSON object with a string one, else null"),
        _c("payload", "STRING", "The event as received: a JSON session record, or the raw line when malformed"),
        _c("payload_truncated", "BOOLEAN", "True when the payload exceeded the size limit and was cut"),
        _c("source", "STRING", "Who posted it: api, or cli:<file name>"),
        _c("_received_at", "TIMESTAMP", "When the writer accepted the event (UTC)"),
    ),
)

ATHLETES = Table(
    "silver",
    "athletes",
    keys=("athlete_id",),
    comment="Athletes, latest profile per athlete_id.",
    columns=(
        _c("athlete_id", "STRING", "Athlete key"),
        _c("sex", "STRING", "F or M"),
        _c("birth_date", "DATE", "Date of birth"),
        _c("weight_kg", "DOUBLE", "Body mass, kg"),
        _c("hr_rest", "DOUBLE", "Resting heart rate, bpm"),
        _c("hr_max", "DOUBLE", "Maximum heart rate, bpm"),
        _c("lthr", "DOUBLE", "Lactate-threshold heart rate, bpm"),
        _c("timezone", "STRING", "IANA time zone of the athlete"),
        _c("updated_at", "TIMESTAMP", "Profile version time (UTC)"),
        *_LINEAGE,
    ),
    properties=CDF,
    constraints={
        "sex_valid": "sex IN ('F', 'M')",
        "hr_order": "hr_rest > 0 AND hr_max > hr_rest",
    },
)


ATHLETE_PROFILE_HISTORY = Table(
    "silver",
    "athlete_profile_history",
    keys=("athlete_id", "profile_version"),
    comment=(
        "Every valid profile version per athlete (SCD type 2): valid from its updated_at to the next version's. "
        "Training joins the version valid at the start of the race day, so a later change never leaks into it."
    ),
    columns=(
        _c("athlete_id", "STRING", "Athlete key"),
        _c("profile_version", "INT", "1 for the athlete's first valid profile, then 2, 3, ... by updated_at"),
        _c("valid_from", "TIMESTAMP", "Start of validity (UTC); null for version 1: it stands for all time before"),
        _c("valid_to", "TIMESTAMP", "End of validity, exclusive (the next version's updated_at); null: current"),
        _c("is_current", "BOOLEAN", "True for the version silver.athletes holds"),
        # The profile's own columns, as silver.athletes has them (updated_at: the version's time).
        *(c for c in ATHLETES.columns if c.name not in ("athlete_id", "_run_id")),
        *_LINEAGE,
    ),
)

SESSIONS = Table(
    "silver",
    "sessions",
    keys=("session_id",),
    comment="Training sessions: typed, validated, deduplicated (latest record per session_id wins), UTC, SI units.",
    columns=(
        _c("session_id", "STRING", "Session key"),
        _c("athlete_id", "STRING", "Athlete key"),
        _c("sport", "STRING", "run, ride, swim or other"),
        _c("start_time", "TIMESTAMP", "Session start (UTC)"),
        _c("session_date", "DATE", "UTC calendar date of the start"),
        _c("duration_s", "DOUBLE", "Moving duration, s"),
        _c("distance_m", "DOUBLE", "Distance, m"),
        _c("elevation_gain_m", "DOUBLE", "Total ascent, m"),
        _c("avg_hr", "DOUBLE", "Average heart rate, bpm (null when not recorded)"),
        _c("max_hr", "DOUBLE", "Maximum heart rate, bpm"),
        _c("rpe", "INT", "Rating of perceived exertion, 1-10"),
        _c("notes", "STRING", "Athlete's free-text note"),
        _c("source", "STRING", "app or device:<format>"),
        _c("is_race", "BOOLEAN", "True for race results"),
        _c("session_load", "DOUBLE", "Banister TRIMP, arbitrary units (imputed when no HR)"),
        _c("load_imputed", "BOOLEAN", "True when session_load was imputed (no heart rate)"),
        _c("updated_at", "TIMESTAMP", "Record version time (UTC); the latest wins"),
        *_LINEAGE,
    ),
    properties=CDF,
    constraints={
        "duration_positive": "duration_s > 0",
        "distance_non_negative": "distance_m >= 0",
        "hr_range": "(avg_hr IS NULL OR avg_hr BETWEEN 25 AND 250) AND (max_hr IS NULL OR max_hr BETWEEN 25 AND 250)",
        "load_non_negative": "session_load >= 0",
    },
)

RACES = Table(
    "silver",
    "races",
    keys=("session_id",),
    comment="Race results (labels for the time estimator).",
    columns=(
        _c("session_id", "STRING", "Session key of the race"),
        _c("athlete_id", "STRING", "Athlete key"),
        _c("race_date", "DATE", "UTC date of the race start"),
        _c("distance_m", "DOUBLE", "Race distance, m"),
        _c("finish_time_s", "DOUBLE", "Finish time, s"),
        _c("vdot", "DOUBLE", "Daniels VDOT of the result"),
        *_LINEAGE,
    ),
    properties=CDF,
    constraints={"finish_positive": "finish_time_s > 0 AND distance_m > 0"},
)

RACE_SPLITS = Table(
    "silver",
    "race_splits",
    keys=("session_id", "km"),
    comment="Per-kilometre splits of races (the last one partial), from the race record's splits list; "
    "a race whose splits break a rule keeps its silver.races row, its splits go to quarantine.",
    columns=(
        _c("session_id", "STRING", "Session key of the race"),
        _c("km", "INT", "Split number, 1-based, in race order"),
        _c("athlete_id", "STRING", "Athlete key"),
        _c("race_date", "DATE", "UTC date of the race start"),
        _c("split_distance_m", "DOUBLE", "Distance of this split, m (1000 except the last)"),
        _c("split_time_s", "DOUBLE", "Time of this split, s"),
        _c("split_avg_hr", "DOUBLE", "Mean heart rate over this split, bpm (null when not recorded)"),
        _c("cumulative_distance_m", "DOUBLE", "Distance from the start to the end of this split, m"),
        _c("cumulative_time_s", "DOUBLE", "Elapsed time at the end of this split, s"),
        *_LINEAGE,
    ),
    properties=CDF,
    constraints={"split_positive": "split_time_s > 0 AND split_distance_m > 0 AND km >= 1"},
)


def _plain_encoded_doubles(columns: tuple[Column, ...]) -> dict[str, str]:
    """Table properties that turn off Parquet's dictionary for the DOUBLE columns.

    Parquet tries a dictionary for every column and gives it up only once it has filled it
    (1 MB) with distinct values: for features, whose doubles are almost all distinct, that is
    wasted work in every write (0.5-0.8 s of writing 1M feature rows, for files 4 % smaller).
    Delta hands table properties to the Parquet writer; keys and counts keep their dictionaries.
    """
    return {f"parquet.enable.dictionary#{c.name}": "false" for c in columns if c.type == "DOUBLE"}


_ROLLING_FEATURE_COLUMNS = (
    _c("athlete_id", "STRING", "Athlete key"),
    _c("feature_date", "DATE", "Calendar day d (UTC) the features describe, end of day"),
    _c("daily_load", "DOUBLE", "Sum of session_load on day d, TRIMP units"),
    _c("atl", "DOUBLE", "Acute training load: 7-day Banister EWMA of daily_load, TRIMP units"),
    _c("ctl", "DOUBLE", "Chronic training load: 42-day Banister EWMA of daily_load, TRIMP units"),
    _c("tsb", "DOUBLE", "Training stress balance ctl(d-1) - atl(d-1), TRIMP units"),
    _c("acwr_rolling", "DOUBLE", "Acute:chronic ratio, mean load d-6..d / d-27..d; null < 28 days"),
    _c("acwr_ewma", "DOUBLE", "Acute:chronic ratio of EWMA7 / EWMA28 (lambda 2/(N+1)); null < 28 days"),
    _c("ewma_acute_load", "DOUBLE", "EWMA7 of daily_load (lambda 0.25), carried state, TRIMP units"),
    _c("ewma_chronic_load", "DOUBLE", "EWMA28 of daily_load (lambda 2/29), carried state, TRIMP units"),
    _c("monotony_7d", "DOUBLE", "Mean / population std of daily_load d-6..d; null when std is 0"),
    _c("strain_7d", "DOUBLE", "Sum of daily_load d-6..d times monotony_7d"),
    _c("distance_7d_m", "DOUBLE", "Distance over d-6..d, m"),
    _c("distance_28d_m", "DOUBLE", "Distance over d-27..d, m"),
    _c("duration_7d_s", "DOUBLE", "Duration over d-6..d, s"),
    _c("duration_28d_s", "DOUBLE", "Duration over d-27..d, s"),
    _c("sessions_7d", "INT", "Sessions over d-6..d"),
    _c("sessions_28d", "INT", "Sessions over d-27..d"),
    _c("longest_session_28d_m", "DOUBLE", "Longest session distance over d-27..d, m"),
    _c("avg_pace_28d_s_per_km", "DOUBLE", "Running pace over d-27..d: run duration / run km, s/km"),
    _c("avg_hr_28d", "DOUBLE", "Duration-weighted mean avg_hr of sessions with HR over d-27..d, bpm"),
    _c("days_since_last_session", "INT", "Days since the latest session on or before d (0 = today)"),
    _c("vdot_best_90d", "DOUBLE", "Best Daniels VDOT of races on d-89..d"),
    _c("history_days", "INT", "Days since the athlete's first session (0 on that day)"),
    _c("computed_at", "TIMESTAMP", "When the row was computed (UTC)"),
    *_LINEAGE,
    # Added by schema evolution (ALTER TABLE ADD COLUMNS appends): the heart-rate/speed line.
    _c("runs_with_hr_42d", "INT", "Training runs with heart rate over d-41..d (races excluded)"),
    _c("run_hr_mean_42d", "DOUBLE", "Mean avg_hr of those runs, bpm"),
    _c("run_log_speed_mean_42d", "DOUBLE", "Mean ln(speed in m/s) of those runs"),
    _c(
        "run_log_speed_per_bpm_42d",
        "DOUBLE",
        "Least-squares slope of ln(speed in m/s) on avg_hr, per bpm; null under 5 runs or a heart-rate SD under 2 bpm",
    ),
)


ATHLETE_ROLLING_FEATURES = Table(
    "feature_store",
    "athlete_rolling_features",
    keys=("athlete_id", "feature_date"),
    comment="Daily training-load features per athlete (DESIGN.md section 4); one row per athlete per day "
    "from the first session to the run date. Features of day d include sessions of day d.",
    columns=_ROLLING_FEATURE_COLUMNS,
    properties={
        **CDF,
        STATS_ON_KEYS_ONLY: "athlete_id,feature_date",
        **_plain_encoded_doubles(_ROLLING_FEATURE_COLUMNS),
    },
)

DOCUMENT_CHUNKS = Table(
    "feature_store",
    "document_chunks",
    keys=("chunk_id",),
    comment="Session notes (silver.sessions.notes) and knowledge articles (knowledge/*.md), chunked and embedded "
    "(DESIGN.md section 12); the source of truth of the LanceDB document index, which is rebuilt from it.",
    columns=(
        _c("chunk_id", "STRING", "SHA-256 (hex) of source|source_id|chunk_index"),
        _c("source", "STRING", "session_note or knowledge"),
        _c("source_id", "STRING", "session_id of the note, or the article's file stem"),
        _c("chunk_index", "INT", "0-based position of the chunk in its note or article"),
        _c("athlete_id", "STRING", "Athlete key of the note (null for knowledge)"),
        _c("doc_date", "DATE", "session_date of the note (null for knowledge)"),
        _c("title", "STRING", "Article title and section heading (null for notes)"),
        _c("text", "STRING", "The chunk's text (whitespace collapsed)"),
        _c("content_sha256", "STRING", "SHA-256 (hex) of the exact text embedded (title line + text for articles)"),
        _c("model_name", "STRING", "Embedding model name"),
        _c("model_version", "STRING", "Embedding model version (package and version that computed it)"),
        _c("embedding", "ARRAY<FLOAT>", "Passage embedding, L2-normalised (dot product = cosine similarity)"),
        _c("computed_at", "TIMESTAMP", "When the row was written (UTC)"),
        *_LINEAGE,
    ),
    properties=CDF,
    constraints={
        "document_source": "source IN ('session_note', 'knowledge')",
        "note_has_athlete_and_date": "source <> 'session_note' OR (athlete_id IS NOT NULL AND doc_date IS NOT NULL)",
    },
)

ATHLETE_PREDICTIONS = Table(
    "gold",
    "athlete_predictions",
    keys=("athlete_id", "as_of_date", "race_distance_m"),
    comment="Predicted race finish times per athlete, as-of day and standard distance, with full lineage.",
    columns=(
        _c("athlete_id", "STRING", "Athlete key"),
        _c("as_of_date", "DATE", "Day whose end-of-day features were used (prediction for a race after it)"),
        _c("race_distance_m", "DOUBLE", "Race distance, m (5000, 10000, 21097.5, 42195)"),
        _c("predicted_finish_time_s", "DOUBLE", "Predicted finish time, s"),
        _c("predicted_pace_s_per_km", "DOUBLE", "Predicted average pace, s/km"),
        _c(
            "predicted_finish_time_p10_s",
            "DOUBLE",
            "Fast end of the 80 % prediction interval (P10), s; null when the model version has no interval",
        ),
        _c("predicted_finish_time_p90_s", "DOUBLE", "Slow end of the 80 % prediction interval (P90), s; null likewise"),
        _c("model_name", "STRING", "Registered model name"),
        _c("model_version", "STRING", "Registered model version that scored the row"),
        _c("feature_table_version", "BIGINT", "Delta version of the feature table read"),
        _c("run_id", "STRING", "Batch inference run id"),
        _c("scored_at", "TIMESTAMP", "When the row was scored (UTC)"),
    ),
    constraints={"prediction_positive": "predicted_finish_time_s > 0"},
)

ATHLETE_WEEKLY_REPORT = Table(
    "gold",
    "athlete_weekly_report",
    keys=("athlete_id", "week_start"),
    comment="Weekly training summary per athlete (ISO weeks, Monday start) with load state at week end and flags.",
    columns=(
        _c("athlete_id", "STRING", "Athlete key"),
        _c("week_start", "DATE", "Monday of the week"),
        _c("week_end", "DATE", "Last day covered: Sunday, or the run date for the current week"),
        _c("sessions", "INT", "Sessions in the week"),
        _c("distance_m", "DOUBLE", "Distance in the week, m"),
        _c("duration_s", "DOUBLE", "Duration in the week, s"),
        _c("weekly_load", "DOUBLE", "Sum of daily_load in the week, TRIMP units"),
        _c("ctl", "DOUBLE", "Chronic training load at week end, TRIMP units"),
        _c("atl", "DOUBLE", "Acute training load at week end, TRIMP units"),
        _c("tsb", "DOUBLE", "Training stress balance at week end, TRIMP units"),
        _c("acwr_rolling", "DOUBLE", "Rolling acute:chronic workload ratio at week end"),
        _c("acwr_ewma", "DOUBLE", "EWMA acute:chronic workload ratio at week end"),
        _c("monotony_7d", "DOUBLE", "Training monotony at week end"),
        _c("flags", "ARRAY<STRING>", "Warnings, e.g. acwr_high, monotony_high, form_very_low"),
        _c("computed_at", "TIMESTAMP", "When the row was computed (UTC)"),
        *_LINEAGE,
    ),
)


ONLINE_INFERENCE_LOG = Table(
    "gold",
    "online_inference_log",
    keys=("request_id", "prediction_index"),
    comment="Every prediction the serving API made (one row per predicted distance), flushed from its "
    "append-only log files by `athlete-platform flush-inference-log`; scored against later races by ab-report.",
    columns=(
        _c("request_id", "STRING", "Request id the API returned (uuid4 hex)"),
        _c("prediction_index", "INT", "Position of the prediction in the response (one per race distance)"),
        _c("logged_at", "TIMESTAMP", "When the API answered (UTC)"),
        _c("route", "STRING", "race-predictions, live-coaching or v2-infer"),
        _c("athlete_id", "STRING", "Athlete key (null for v2 infer)"),
        _c("variant", "STRING", "A/B variant: the registry alias that served the request"),
        _c("model_name", "STRING", "Registered model name"),
        _c("model_version", "STRING", "Registered model version that answered"),
        _c("feature_date", "DATE", "Day of the stored features used"),
        _c("race_date", "DATE", "Race day the prediction is for, when the request gave or implied one"),
        _c("race_distance_m", "DOUBLE", "Race distance of this prediction, m"),
        _c("predicted_finish_time_s", "DOUBLE", "Predicted finish time, s"),
        _c("inputs_json", "STRING", "The request's passed features and parameters (JSON)"),
        _c("output_json", "STRING", "This prediction as the API returned it (JSON)"),
        _c("latency_ms", "DOUBLE", "Time the API spent on the request, ms"),
        _c("source_file", "STRING", "Log file the line came from"),
        _c("_ingested_at", "TIMESTAMP", "When the line was flushed into this table (UTC)"),
        *_LINEAGE,
    ),
)

TIME_ESTIMATOR = RegisteredModel("ml", "time_estimator")
LIVE_PACE_COACH = RegisteredModel("ml", "live_pace_coach")


def registered_models() -> dict[str, RegisteredModel]:
    """Every model declared in this module, by short name (`time_estimator`, ...).

    Read from the module's constants, so a model declared above is found without a second list
    to keep in step (`export-model --model NAME` resolves NAME here).
    """
    return {entry.name: entry for entry in globals().values() if isinstance(entry, RegisteredModel)}


MODEL_MONITORING = Table(
    "gold",
    "model_monitoring",
    keys=("model_name", "model_version", "window_end"),
    comment=(
        "Per model version and 7-day window: input drift against the training set (PSI per input), "
        "prediction drift, realised accuracy on the races run since, and the flags that ask for retraining."
    ),
    columns=(
        _c("model_name", "STRING", "Registered model name"),
        _c("model_version", "STRING", "The version monitored (the champion when the step ran)"),
        _c("window_start", "DATE", "First day of the window"),
        _c("window_end", "DATE", "Last day of the window (the run date)"),
        _c("feature_rows", "BIGINT", "Athlete-days of feature rows in the window (the drift sample)"),
        _c(
            "feature_psi",
            "ARRAY<STRUCT<input: STRING, psi: DOUBLE, missing_rise: DOUBLE>>",
            "Per stored model input, window vs training races: PSI of the values present, and the rise of the "
            "share missing (by input name; explode() to query)",
        ),
        _c("max_feature_psi", "DOUBLE", "The largest of feature_psi"),
        _c("drifted_features", "ARRAY<STRING>", "Inputs with PSI above 0.25 or 10 points more missing values"),
        _c("prediction_rows", "BIGINT", "This version's predictions with as_of_date in the window"),
        _c("prediction_psi", "DOUBLE", "PSI of predicted pace, window vs training athletes at the same distances"),
        _c("realised_races", "BIGINT", "Races in the window with a prediction of this version from the week before"),
        _c("realised_mape", "DOUBLE", "MAPE of those predictions against the real finish times"),
        _c("realised_coverage", "DOUBLE", "Share of those races inside their P10-P90 range"),
        _c("training_mape", "DOUBLE", "Held-out MAPE of the version at training (the bar for realised_mape)"),
        _c("flags", "ARRAY<STRING>", "feature_drift, prediction_drift, accuracy_degraded, coverage_low"),
        _c("retrain_recommended", "BOOLEAN", "True when any flag is raised (the monitoring DAG then asks to retrain)"),
        _c("computed_at", "TIMESTAMP", "When the row was computed (UTC)"),
        *_LINEAGE,
    ),
)

# landing -> bronze -> silver -> features, in pipeline order
FEATURE_PIPELINE_TABLES = (
    SESSIONS_RAW,
    LANDING_FILES,
    DEVICE_FILES,
    QUARANTINE,
    ATHLETES,
    ATHLETE_PROFILE_HISTORY,
    SESSIONS,
    RACES,
    RACE_SPLITS,
    ATHLETE_ROLLING_FEATURES,
)
ALL_TABLES = (
    *FEATURE_PIPELINE_TABLES,
    DOCUMENT_CHUNKS,
    ATHLETE_PREDICTIONS,
    ATHLETE_WEEKLY_REPORT,
    MODEL_MONITORING,
    SESSION_EVENTS,
    ONLINE_INFERENCE_LOG,
)

# Table versions other tables still depend on, so maintenance never vacuums them away:
# the feature pipeline records, in its table's properties, the version of each upstream table it
# last computed from (it reads their Change Data Feed from there on) ...
FEATURE_SOURCE_VERSION_PROPERTIES: dict[Table, str] = {
    SESSIONS: "athlete_platform.source.sessions_version",
    RACES: "athlete_platform.source.races_version",
}
# ... silver records the bronze version it last judged (it reads bronze's Change Data Feed from
# there on, `ingestion.silver_scope`) ...
SILVER_SOURCE_VERSION_PROPERTIES: dict[Table, str] = {
    SESSIONS_RAW: "athlete_platform.source.sessions_raw_version",
}
# ... and, beside it, the logical time of that run (sessions at or after it were deferred).
SILVER_DUE_BEFORE_PROPERTY = "athlete_platform.silver.due_before"
# ... the document pipeline records the silver.sessions version whose notes it last embedded ...
DOCUMENT_SOURCE_VERSION_PROPERTIES: dict[Table, str] = {
    SESSIONS: "athlete_platform.source.sessions_version",
}
# ... and each prediction row records the feature table version it scored (reproducible by time travel).
PREDICTION_FEATURE_VERSION_COLUMN = "feature_table_version"
