"""Idempotent Delta writes: re-running a job for the same input leaves the same rows.

- `merge_upsert`: MERGE on a key; a matched row is rewritten only when a compared column
  changed, so a re-run commits no data change.
- `insert_missing`: MERGE that only inserts keys not present (append-once logs).
- `replace_slice`: overwrite exactly the rows matching a predicate (Delta replaceWhere).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import count
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_view_ids = count()

# Columns that say who wrote a row and when; they never make a row "changed".
LINEAGE_COLUMNS = ("_run_id", "_ingested_at", "computed_at", "rejected_at")


def _register(df: DataFrame) -> str:
    view = f"_ap_merge_source_{next(_view_ids)}"
    df.createOrReplaceTempView(view)
    return view


def merge_upsert(
    spark: SparkSession,
    table: str,
    source: DataFrame,
    keys: Sequence[str],
    ignore_changes_in: Iterable[str] = LINEAGE_COLUMNS,
    delete_missing: bool = False,
    delete_only_where: str | None = None,
) -> None:
    """Upsert `source` into `table` on `keys`; update only rows whose data changed.

    With `delete_missing`, `source` is the whole truth: target rows absent from it are deleted
    (only those matching `delete_only_where`, a condition on `t.`, when given).
    """
    columns = source.columns
    ignored = set(ignore_changes_in) | set(keys)
    compared = [c for c in columns if c not in ignored]
    on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
    changed = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in compared) or "false"
    view = _register(source)
    spark.sql(
        f"MERGE INTO {table} t USING {view} s ON {on} "
        f"WHEN MATCHED AND ({changed}) THEN UPDATE SET * "
        "WHEN NOT MATCHED THEN INSERT *" + (_delete_clause(delete_only_where) if delete_missing else "")
    )
    spark.catalog.dropTempView(view)


def _delete_clause(only_where: str | None) -> str:
    condition = f" AND ({only_where})" if only_where else ""
    return f" WHEN NOT MATCHED BY SOURCE{condition} THEN DELETE"


def insert_missing(spark: SparkSession, table: str, source: DataFrame, keys: Sequence[str]) -> None:
    """Insert rows whose key is not in `table` yet (for logs that are written once)."""
    on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
    view = _register(source)
    spark.sql(f"MERGE INTO {table} t USING {view} s ON {on} WHEN NOT MATCHED THEN INSERT *")
    spark.catalog.dropTempView(view)


def replace_slice(source: DataFrame, table: str, predicate: str) -> None:
    """Atomically replace the rows of `table` matching `predicate` with `source`.

    Uses the v2 writer's overwrite-by-filter: `saveAsTable` with `replaceWhere` is only
    honoured for the session catalog; on any other catalog it would replace the table.
    """
    from pyspark.sql import functions as F

    source.writeTo(table).overwrite(F.expr(predicate))


def utc_timestamp(moment):
    """A TIMESTAMP literal for a naive UTC datetime, independent of the Python process's TZ.

    (`F.lit(datetime)` converts through the local time zone of the Python process.)
    """
    from pyspark.sql import functions as F

    return F.lit(moment.strftime("%Y-%m-%d %H:%M:%S.%f")).cast("timestamp")
