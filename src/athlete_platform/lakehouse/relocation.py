"""A data folder that moved (the project folder copied or renamed) keeps working.

Three stores record absolute paths when they write, and each one is put right the first time
it is used from the new place, by rewriting the old folder prefix to the new one:

- the catalog (Derby metastore): schema and table locations under `<data>/warehouse`. Checked
  each time the catalog server is started (`catalog up`): the `default` schema's location says
  where the warehouse was; when that is not the current warehouse, every location under it is
  rewritten in one transaction (`catalog_statements`, run by Derby's `ij` tool).
- the MLflow store (SQLite, when `mlflow.tracking_uri` is not set): artifact locations of
  experiments, runs, logged models and model versions under `<data>/mlflow/artifacts`, and
  the `artifact_path` line of each model's MLmodel file. Checked by `configure_mlflow`.
- bronze's landing manifests record each file's path under `<data>/landing`: see
  `ingestion.bronze.follow_moved_landing` (checked at each bronze run against the landing folder
  it last ran with, `<data>/bronze_landing_root.txt`; rewritten with a Delta UPDATE).

Only a prefix that is the old folder itself or ends at a `/` is rewritten, so `/a/data2` is
never taken for `/a/data`. A server on another host (`catalog.host` not loopback) and an
MLflow tracking server are not ours to rewrite: they are left alone.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from athlete_platform.errors import CatalogServerError

log = logging.getLogger("athlete_platform")

IJ_MAIN = "org.apache.derby.tools.ij"
# (table, column, is_clob) of the Hive metastore schema that hold locations.
CATALOG_LOCATIONS = (
    ("DBS", "DB_LOCATION_URI", False),
    ("SDS", "LOCATION", False),
    ("SERDE_PARAMS", "PARAM_VALUE", True),
)
# Derby's SQL states for "no database" and "no such table": a catalog Spark never used.
NOTHING_YET = ("XJ004", "42X05")
MLFLOW_LOCATIONS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)


def moved_prefix(recorded: str | None, expected: str) -> str | None:
    """The old prefix to rewrite, or None when `recorded` is already `expected` (or unknown).

    Both name the same thing (e.g. the warehouse folder) at its old and its current place."""
    if not recorded or recorded.rstrip("/") == expected.rstrip("/"):
        return None
    return recorded.rstrip("/")


def rewrite(value: str, old: str, new: str) -> str:
    """`value` with the folder prefix `old` replaced by `new` (unchanged when it is not under `old`)."""
    if value == old:
        return new
    if value.startswith(old + "/"):
        return new + value[len(old) :]
    return value


# --- the catalog ---------------------------------------------------------------------------


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def catalog_statements(old: str, new: str) -> list[str]:
    """UPDATEs that move every location under `old` to `new` (Derby SQL; `old`, `new` are URIs)."""
    statements = []
    for table, column, is_clob in CATALOG_LOCATIONS:
        value = f"CAST({column} AS VARCHAR(32672))" if is_clob else column
        condition = f"({value} = {_sql_text(old)} OR LOCATE({_sql_text(old + '/')}, {value}) = 1)"
        if table == "SERDE_PARAMS":
            condition += " AND PARAM_KEY = 'path'"
        statements.append(
            f"UPDATE {table} SET {column} = {_sql_text(new)} || SUBSTR({value}, {len(old) + 1}) WHERE {condition}"
        )
    return statements


def run_ij(classpath: list[Path], jdbc: str, statements: list[str], java: str) -> str:
    """Run `statements` in one transaction on the catalog database; returns ij's output."""
    script = ["AUTOCOMMIT OFF;", f"CONNECT {_sql_text(jdbc)};", *(s + ";" for s in statements), "COMMIT;", "EXIT;"]
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write("\n".join(script) + "\n")
    try:
        done = subprocess.run(
            [java, "-cp", ":".join(str(p) for p in classpath), IJ_MAIN, handle.name],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        Path(handle.name).unlink(missing_ok=True)
    output = done.stdout + done.stderr
    if any(f"ERROR {state}" in output for state in NOTHING_YET):
        return ""  # no metastore database or schema yet: nothing is recorded anywhere
    if done.returncode != 0 or "ERROR " in output:
        raise CatalogServerError(
            f"Could not update the catalog's table locations after the data folder moved (ij said: "
            f"{output.strip()[-600:]}). The catalog database is unchanged; check "
            "`athlete-platform catalog status` and run `catalog up` again."
        )
    return output


def warehouse_uri(output: str) -> str | None:
    """The `default` schema's location from ij's output of the query in `relocate_catalog`."""
    for line in output.splitlines():
        text = line.strip()
        if text.startswith("file:"):
            return text
    return None


def relocate_catalog(
    classpath: list[Path], jdbc: str, warehouse: Path, database_dir: Path, marker: Path, java: str
) -> str | None:
    """Rewrite the catalog's locations when the warehouse is not where they say; returns the old
    warehouse location when it did, else None.

    `marker` remembers the warehouse the locations were last checked for, so an unmoved folder
    costs a file read, not a JVM; a database Spark never created (`database_dir` absent) has
    nothing to rewrite."""
    if not database_dir.is_dir() or (marker.is_file() and marker.read_text() == str(warehouse)):
        return None
    old = _relocate_catalog(classpath, jdbc, warehouse, java)
    marker.write_text(str(warehouse))
    return old


def _relocate_catalog(classpath: list[Path], jdbc: str, warehouse: Path, java: str) -> str | None:
    query = "SELECT CAST(DB_LOCATION_URI AS VARCHAR(32672)) FROM DBS WHERE NAME = 'default'"
    recorded = warehouse_uri(run_ij(classpath, jdbc, [query], java))
    old = moved_prefix(recorded, f"file:{warehouse}")
    if old is None:
        return None
    run_ij(classpath, jdbc, catalog_statements(old, f"file:{warehouse}"), java)
    log.warning("The data folder moved: catalog locations under %s now point at %s", old, warehouse)
    return old


# --- MLflow --------------------------------------------------------------------------------


def relocate_mlflow_store(database: Path, artifacts: Path) -> str | None:
    """Rewrite the SQLite tracking store's artifact locations when `artifacts` moved; returns
    the old location when it did, else None."""
    if not database.is_file():
        return None
    expected = artifacts.as_uri()
    with sqlite3.connect(database) as db:
        recorded = [row[0] for row in db.execute("SELECT artifact_location FROM experiments")]
        moved = {r.rstrip("/") for r in recorded if r and r.endswith("/artifacts") and r.rstrip("/") != expected}
        if not moved:
            return None
        if len(moved) > 1:
            log.warning("MLflow experiments point at several old artifact folders %s; rewriting each", sorted(moved))
        existing = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for old in sorted(moved):
            for table, column in MLFLOW_LOCATIONS:
                if table not in existing:
                    continue
                db.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                    f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                    (expected, len(old) + 1, old, len(old) + 1, old + "/"),
                )
    for old in sorted(moved):
        _rewrite_mlmodel_files(artifacts, old, expected)
        log.warning("The data folder moved: MLflow artifact locations under %s now point at %s", old, expected)
    return sorted(moved)[0]


def _rewrite_mlmodel_files(artifacts: Path, old: str, new: str) -> None:
    for mlmodel in artifacts.rglob("MLmodel"):
        lines = mlmodel.read_text().splitlines(keepends=True)
        changed = [
            f"artifact_path: {rewrite(line.removeprefix('artifact_path: ').rstrip(), old, new)}\n"
            if line.startswith("artifact_path: ")
            else line
            for line in lines
        ]
        if changed != lines:
            mlmodel.write_text("".join(changed))
