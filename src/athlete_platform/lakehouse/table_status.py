"""Each table's state from its Delta log alone (no Spark, no data files read): version, last
write, row count and how fresh its data is.

Row counts and the latest date come from the per-file statistics Delta keeps in the log
(`numRecords`, `maxValues`), which Spark and delta-rs both write; a file without statistics
falls back to counting rows from Parquet footers. Freshness is measured on the column that
says which day a row is about (`DATA_DATE_COLUMN`), against today's date in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from athlete_platform.lakehouse import tables as t
from athlete_platform.lakehouse.reads import TableNotWritten, open_table

if TYPE_CHECKING:
    from athlete_platform.config import Settings

#: Per table, the column that dates its data (bronze tables: when a row arrived).
DATA_DATE_COLUMN: dict[t.Table, str] = {
    t.SESSIONS_RAW: "_ingested_at",
    t.LANDING_FILES: "_ingested_at",
    t.DEVICE_FILES: "_ingested_at",
    t.QUARANTINE: "rejected_at",
    t.SESSION_EVENTS: "_received_at",
    t.ATHLETES: "updated_at",
    t.ATHLETE_PROFILE_HISTORY: "updated_at",
    t.SESSIONS: "session_date",
    t.RACES: "race_date",
    t.RACE_SPLITS: "race_date",
    t.ATHLETE_ROLLING_FEATURES: "feature_date",
    t.DOCUMENT_CHUNKS: "doc_date",
    t.ATHLETE_PREDICTIONS: "as_of_date",
    t.ATHLETE_WEEKLY_REPORT: "week_end",
    t.MODEL_MONITORING: "window_end",
    t.ONLINE_INFERENCE_LOG: "logged_at",
}


@dataclass(frozen=True)
class TableStatus:
    name: str  # as the catalog renders it
    version: int | None  # None: no Delta table yet
    last_write: datetime | None  # the latest commit's time (UTC)
    last_operation: str | None  # e.g. MERGE, WRITE
    rows: int | None
    date_column: str
    latest_date: date | None  # the newest value of date_column
    problem: str | None = None  # why the table could not be read

    def days_behind(self, today: date) -> int | None:
        return None if self.latest_date is None else (today - self.latest_date).days


def table_status(settings: Settings, table: t.Table) -> TableStatus:
    """`table`'s status; a missing or unreadable table is a status too, not an error."""
    name = t.TableNames.from_settings(settings.catalog)(table)
    column = DATA_DATE_COLUMN[table]
    try:
        return _read_status(settings, table, name, column)
    except TableNotWritten:
        return TableStatus(name, None, None, None, None, column, None)
    except Exception as exc:  # one unreadable table is a line of the report, not the end of it
        return TableStatus(name, None, None, None, None, column, None, f"{type(exc).__name__}: {exc}")


def _read_status(settings: Settings, table: t.Table, name: str, column: str) -> TableStatus:
    import pyarrow as pa
    import pyarrow.compute as pc

    delta = open_table(settings, table)
    (commit,) = delta.history(1)
    last_write = datetime.fromtimestamp(commit["timestamp"] / 1000, UTC)
    files = pa.table(delta.get_add_actions(flatten=True))
    counts = files.column("num_records").to_pylist() if "num_records" in files.column_names else [None]
    if files.num_rows == 0:
        rows = 0
    elif None in counts:
        rows = delta.to_pyarrow_dataset().count_rows()
    else:
        rows = sum(counts)
    stat = f"max.{column}"
    maxima = files.column(stat).to_pylist() if stat in files.column_names else [None] * files.num_rows
    if None in maxima and rows:  # a file without statistics: its newest value only a scan can tell
        latest = pc.max(delta.to_pyarrow_table(columns=[column]).column(column)).as_py()
    else:
        latest = max((v for v in maxima if v is not None), default=None)
    if isinstance(latest, datetime):
        latest = latest.astimezone(UTC).date() if latest.tzinfo else latest.date()
    return TableStatus(name, delta.version(), last_write, commit.get("operation"), rows, column, latest)


def all_table_status(settings: Settings) -> list[TableStatus]:
    return [table_status(settings, table) for table in t.ALL_TABLES]
