"""The keys of a bronze record as landed: `athlete_id` and `session_id` read from its JSON text.

Bronze stores them beside the payload so silver can find every record of an athlete, or of a
session, with a column scan instead of parsing all of history (`ingestion.silver_scope`). They
are not validated: a key of the wrong JSON type is kept as its text (silver's field reader
later rejects the record), so the lookup can only find too many records, never too few.
Rows landed before bronze had these columns hold nulls; `keys_of` then reads the payload.
Bronze is append-only; whoever rewrites a payload by hand (an UPDATE) must set these columns to
its keys, or to null, in the same statement, or silver will look the record up by its old keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column

KEY_COLUMNS = ("athlete_id", "session_id")


def landed_key(name: str, payload: str = "payload") -> Column:
    """`name` read from the JSON text of `payload` (null when absent or not an object)."""
    from pyspark.sql import functions as F

    return F.get_json_object(F.col(payload), f"$.{name}")


def landed_keys(record_type: str | Column = "record_type") -> list[Column]:
    """The bronze key columns for rows being written (athlete records have no session_id)."""
    from pyspark.sql import functions as F

    kind = F.col(record_type) if isinstance(record_type, str) else record_type
    return [
        landed_key("athlete_id").alias("athlete_id"),
        F.when(kind == "session", landed_key("session_id")).alias("session_id"),
    ]


def keys_of(raw_columns: list[str]) -> list[Column]:
    """Key columns of stored bronze rows: the stored value, or the payload's for older rows."""
    from pyspark.sql import functions as F

    stored = lambda name: F.col(name) if name in raw_columns else F.lit(None).cast("string")  # noqa: E731
    return [
        F.coalesce(stored("athlete_id"), landed_key("athlete_id")).alias("athlete_id"),
        F.when(F.col("record_type") == "session", F.coalesce(stored("session_id"), landed_key("session_id"))).alias(
            "session_id"
        ),
    ]
