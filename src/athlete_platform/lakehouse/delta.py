"""Small reads of Delta table metadata (versions, properties) by catalog name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def current_version(spark: SparkSession, table: str) -> int:
    """The latest committed Delta version of `table`."""
    return int(spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").first()["version"])


def table_properties(spark: SparkSession, table: str) -> dict[str, str]:
    return {row.key: row.value for row in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}


def changes_between(spark: SparkSession, table: str, since_version: int, to_version: int) -> DataFrame:
    """`table`'s Change Data Feed after `since_version` up to `to_version` (both committed): the
    rows added, removed or rewritten since a reader last read `since_version`."""
    return (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", since_version + 1)
        .option("endingVersion", to_version)
        .table(table)
    )


def local_folder(location: str | None) -> Path | None:
    """The folder of a table or schema location on the local file system (`file:` or a bare
    path), else None (object storage)."""
    parsed = urlparse(location or "")
    return Path(unquote(parsed.path)) if parsed.scheme in ("file", "") else None
