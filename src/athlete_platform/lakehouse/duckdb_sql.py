"""SQL over the lakehouse in DuckDB, in process: `athlete-platform sql --engine duckdb "..."`.

The tables a query names are read through delta-rs (`lakehouse.reads`) as Arrow and exposed to
DuckDB under the same names Spark uses: an in-memory database called like the catalog
(`uc_athlete_data`), one schema per registered schema, a view per table. So the README's
queries run unchanged on either engine, and only the tables a query mentions are read.

What differs from Spark: the SQL dialect is DuckDB's (most analyst SQL is the same; Spark-only
functions and Delta commands such as DESCRIBE HISTORY are not), and time travel is
`read_table(name, version=...)` rather than `VERSION AS OF`. Reads are snapshots at the
query's start, like Spark's.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from athlete_platform.errors import PlatformError, SetupError
from athlete_platform.lakehouse.reads import open_table, spellings
from athlete_platform.lakehouse.tables import ALL_TABLES, Table, TableNames

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from athlete_platform.config import Settings

log = logging.getLogger(__name__)


def table_references(sql: str) -> list[tuple[str, str, str]]:
    """(catalog, schema, table) of every table `sql` reads, from DuckDB's own parse tree (so
    quoting, spacing, aliases, CTEs, strings and comments are what DuckDB makes of them).
    A query DuckDB cannot parse gets DuckDB's syntax error."""
    import duckdb

    with duckdb.connect() as con:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    if tree.get("error"):
        raise PlatformError(f"The query failed in DuckDB: {tree.get('error_message', 'it could not be parsed')}")
    found: list[tuple[str, str, str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE":
                found.append((node.get("catalog_name", ""), node.get("schema_name", ""), node.get("table_name", "")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return found


def referenced_tables(sql: str, names: TableNames) -> list[Table]:
    """The registered tables `sql` reads, in any of their spellings (case-insensitive), in
    registry order. A name that is not a registered table (a CTE, a typo) is left to DuckDB."""
    wanted = {".".join(part for part in ref if part).lower() for ref in table_references(sql)}
    return [t for t in ALL_TABLES if wanted & {spelling.lower() for spelling in spellings(t, names)}]


def connect(settings: Settings, tables: list[Table]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection where `tables` answer to their catalog names (three- and two-level)."""
    import duckdb

    names = TableNames.from_settings(settings.catalog)
    con = duckdb.connect()
    catalog = settings.catalog.name
    con.execute(f"ATTACH ':memory:' AS \"{catalog}\"")
    con.execute(f'USE "{catalog}"')
    for i, table in enumerate(tables):
        try:
            dataset = open_table(settings, table).to_pyarrow_dataset()
        except SetupError as exc:  # not written yet: DuckDB then says the table does not exist
            log.warning("%s", exc)
            continue
        schema = names.schema_prefix + table.schema
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{catalog}"."{schema}"')
        con.register(f"_delta_{i}", dataset)
        con.execute(f'CREATE VIEW "{catalog}"."{schema}"."{table.name}" AS SELECT * FROM _delta_{i}')
        if names.schema_prefix:  # the unprefixed two-level name too (`gold.athlete_predictions`)
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{catalog}"."{table.schema}"')
            con.execute(f'CREATE VIEW "{catalog}"."{table.schema}"."{table.name}" AS SELECT * FROM _delta_{i}')
    return con


def query(settings: Settings, sql: str) -> pa.Table:
    """Run `sql` in DuckDB over the lakehouse tables it names; the result as Arrow."""
    import duckdb

    names = TableNames.from_settings(settings.catalog)
    con = connect(settings, referenced_tables(sql, names))
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        hint = ""
        if isinstance(exc, duckdb.CatalogException):
            known = ", ".join(sorted(f"{t.schema}.{t.name}" for t in ALL_TABLES))
            hint = f" (the lakehouse's tables are {known}; one not written yet is absent)"
        raise PlatformError(f"The query failed in DuckDB: {str(exc).strip()}{hint}") from None
    finally:
        con.close()
