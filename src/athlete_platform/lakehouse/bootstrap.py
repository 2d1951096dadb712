"""Namespace bootstrap: the catalog's schemas, created idempotently."""

from __future__ import annotations

from typing import TYPE_CHECKING

from athlete_platform.lakehouse.sql import sql_escape
from athlete_platform.lakehouse.tables import SCHEMAS, TableNames

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def bootstrap_namespace(spark: SparkSession, names: TableNames) -> None:
    """Create every schema of the platform if it is missing (safe to re-run)."""
    for schema, comment in SCHEMAS.items():
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {names.schema(schema)} COMMENT '{sql_escape(comment)}'")


def list_namespace(spark: SparkSession, names: TableNames) -> dict[str, list[str]]:
    """The platform's schemas that exist, each with its tables (sorted)."""
    in_catalog = f" IN {names.catalog}" if names.catalog else ""
    existing = {row[0] for row in spark.sql(f"SHOW SCHEMAS{in_catalog}").collect()}
    return {
        schema: sorted(row.tableName for row in spark.sql(f"SHOW TABLES IN {names.schema(schema)}").collect())
        for schema in SCHEMAS
        if schema in existing
    }
