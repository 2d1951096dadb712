"""Rows for bronze.quarantine: every rejected record or file, with its reason, from any stage."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from athlete_platform.lakehouse.writes import utc_timestamp

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


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
