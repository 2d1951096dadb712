"""Create and evolve tables from the registry (`lakehouse.tables`), idempotently.

`ensure_table` creates a missing table, adds missing CHECK constraints, and evolves an existing
table to its registry entry the way Delta allows without a rewrite: a column the registry added
is added (nullable, with its comment). Anything else that differs (a column's type, a column the
registry no longer has) is an error naming the column, never silently ignored.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from athlete_platform.errors import PlatformError
from athlete_platform.lakehouse.delta import local_folder
from athlete_platform.lakehouse.sql import sql_escape
from athlete_platform.lakehouse.tables import SCHEMAS, Table, TableNames

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


class SchemaMismatchError(PlatformError):
    """An existing table differs from its registry entry in a way that needs a person."""


def ensure_table(spark: SparkSession, names: TableNames, table: Table) -> str:
    """Create the Delta table if missing, evolve it, add missing CHECK constraints; returns its name."""
    name = names(table)
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {names.schema(table.schema)} COMMENT '{sql_escape(SCHEMAS[table.schema])}'")
    if spark.catalog.tableExists(name):
        _evolve(spark, name, table)
        present = _property_keys(spark, name) if table.properties or table.constraints else set()
        _add_missing_properties(spark, name, table, present)
    else:
        _set_aside_interrupted_create(spark, names, table)
        # CHECK constraints go into the CREATE itself (Delta keeps them as `delta.constraints.*`
        # properties and enforces them from version 0): one commit, where an ALTER TABLE ... ADD
        # CONSTRAINT per constraint costs a commit and a scan each (33 s of make run's first run).
        created_with = {**table.properties, **constraint_properties(table)}
        props = ", ".join(f"'{k}' = '{sql_escape(v)}'" for k, v in created_with.items())
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS {name} ({_ddl_columns(table.columns)}) USING DELTA "
            f"COMMENT '{sql_escape(table.comment)}'" + (f" TBLPROPERTIES ({props})" if props else "")
        )
        # Another process may have created it first, without them (IF NOT EXISTS): checked below.
        present = _property_keys(spark, name) if table.constraints else set()
    for constraint, expression in table.constraints.items():
        if f"delta.constraints.{constraint.lower()}" not in present:
            spark.sql(f"ALTER TABLE {name} ADD CONSTRAINT {constraint} CHECK ({expression})")
    return name


def _property_keys(spark: SparkSession, name: str) -> set[str]:
    return {row.key for row in spark.sql(f"SHOW TBLPROPERTIES {name}").collect()}


def constraint_properties(table: Table) -> dict[str, str]:
    """Pure: the table's CHECK constraints as the Delta properties that hold them."""
    return {f"delta.constraints.{name.lower()}": expression for name, expression in table.constraints.items()}


def _set_aside_interrupted_create(spark: SparkSession, names: TableNames, table: Table) -> Path | None:
    """A CREATE TABLE killed before its first commit leaves the table's folder behind without a
    Delta log; killed after its commit but before the catalog entry, it leaves the empty version 0.
    Either way Delta then refuses to create the managed table there (DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION)
    on every later run. No data was ever committed in such a folder and no reader could see it, so
    it is moved aside (renamed `<table>.interrupted-<UTC time>`, kept for a person to look at) and
    the table is created. A folder with committed data is left alone."""
    schema = names.schema(table.schema)
    rows = spark.sql(f"DESCRIBE SCHEMA EXTENDED {schema}").collect()
    location = next((r[1] for r in rows if str(r[0]).lower() == "location"), None)
    schema_folder = local_folder(location)
    if schema_folder is None:
        return None  # object storage: left to Delta's own message
    folder = schema_folder / table.name
    if not folder.exists() or not any(folder.iterdir()):
        return None
    if _has_commit(folder) and not _only_an_empty_create(folder):
        return None  # data was committed there: not ours to move (Delta's message stands)
    aside = folder.with_name(f"{table.name}.interrupted-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}")
    folder.rename(aside)
    log.warning(
        "%s: its folder %s held files (%s) but no Delta commit (a CREATE TABLE killed before it committed); "
        "moved aside to %s and the table is created anew",
        names(table),
        folder,
        ", ".join(sorted(str(f.relative_to(aside)) for f in aside.rglob("*"))[:10]),
        aside,
    )
    return aside


def _has_commit(folder: Path) -> bool:
    """Whether the folder's Delta log holds a committed version (a commit file or a checkpoint)."""
    log_folder = folder / "_delta_log"
    return log_folder.is_dir() and any(_COMMIT_FILE.match(entry.name) for entry in log_folder.iterdir())


def _only_an_empty_create(folder: Path) -> bool:
    """Version 0 only, and it adds no data file (the empty table a CREATE TABLE commits)."""
    log_folder = folder / "_delta_log"
    commits = [entry for entry in log_folder.iterdir() if _COMMIT_FILE.match(entry.name)]
    if [c.name for c in commits] != ["00000000000000000000.json"]:
        return False
    actions = [json.loads(line) for line in commits[0].read_text().splitlines() if line.strip()]
    return not any("add" in action for action in actions)


_COMMIT_FILE = re.compile(r"^\d{20}\.(json|checkpoint(\.\d+\.\d+)?\.parquet)$")


def schema_changes(existing: dict[str, str], table: Table) -> tuple[list[str], list[str]]:
    """Pure: (registry columns the table lacks, problems a person must resolve).

    `existing` maps the table's column names to Spark simple type strings (e.g. `double`).
    """
    # Registry types are Spark SQL type names; lower-cased they are Spark's simple strings.
    declared = table.column_types()
    wanted = {name: type_.lower().replace(" ", "") for name, type_ in declared.items()}
    missing = [c for c in wanted if c not in existing]
    problems = [
        f"column {c} is {existing[c]} in the table but {declared[c]} in the registry"
        for c in wanted
        if c in existing and wanted[c] != existing[c]
    ]
    problems += [f"column {c} is in the table but not in the registry" for c in existing if c not in wanted]
    return missing, problems


def _evolve(spark: SparkSession, name: str, table: Table) -> None:
    existing = {f.name: f.dataType.simpleString() for f in spark.table(name).schema.fields}
    missing, problems = schema_changes(existing, table)
    if problems:
        raise SchemaMismatchError(
            f"{name} does not match its definition in athlete_platform.lakehouse.tables: {'; '.join(problems)}. "
            "Migrate the table (ALTER TABLE ... or a rebuild) or fix the registry entry, then run again."
        )
    if missing:
        added = [c for c in table.columns if c.name in missing]
        spark.sql(f"ALTER TABLE {name} ADD COLUMNS ({_ddl_columns(added)})")


def _add_missing_properties(spark: SparkSession, name: str, table: Table, present: set[str]) -> None:
    """Registry properties a table lacks (e.g. the Change Data Feed on a table created before it
    gained a reader of it) are set; a value someone changed stays. A property someone removed is
    set again: the registry says the platform needs it."""
    missing = {k: v for k, v in table.properties.items() if k not in present}
    if missing:
        assignments = ", ".join(f"'{k}' = '{v}'" for k, v in missing.items())
        spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({assignments})")


def _ddl_columns(columns) -> str:
    return ", ".join(f"{c.name} {c.type} COMMENT '{sql_escape(c.comment)}'" for c in columns)


def register_external(spark: SparkSession, names: TableNames, table: Table, location: Path) -> str:
    """Register the Delta table at `location` (created by the Delta Python writer when missing)
    under its three-level name, idempotently; returns the name.

    For tables written without Spark (`lakehouse.delta_rs`): the location is the project's, the
    catalog only learns it (`CREATE TABLE ... USING DELTA LOCATION`, schema and comments from
    the Delta log). A name already registered elsewhere, or a schema that differs from the
    registry, stops with what to do.
    """
    from athlete_platform.lakehouse.delta_rs import create_if_missing

    name = names(table)
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {names.schema(table.schema)} COMMENT '{sql_escape(SCHEMAS[table.schema])}'")
    create_if_missing(location, table)
    if not spark.catalog.tableExists(name):
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS {name} USING DELTA COMMENT '{sql_escape(table.comment)}' "
            f"LOCATION '{sql_escape(location.as_uri())}'"
        )
    registered = spark.sql(f"DESCRIBE DETAIL {name}").first()["location"]
    if Path(registered.removeprefix("file:")).resolve() != location.resolve():
        raise SchemaMismatchError(
            f"{name} is registered at {registered}, but this project writes it at {location} (from data_dir and "
            f"catalog.schema_prefix). Drop the old registration (DROP TABLE {name}) or point data_dir at the lakehouse "
            "that owns it, then run again."
        )
    existing = {f.name: f.dataType.simpleString() for f in spark.table(name).schema.fields}
    missing, problems = schema_changes(existing, table)
    if missing or problems:
        problems += [f"column {c} is in the registry but not in the table" for c in missing]
        raise SchemaMismatchError(
            f"{name} at {location} does not match its definition in athlete_platform.lakehouse.tables: "
            f"{'; '.join(problems)}. Migrate the table or fix the registry entry, then run again."
        )
    return name
