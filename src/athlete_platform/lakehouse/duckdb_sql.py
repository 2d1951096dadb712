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

import re
from typing import TYPE_CHECKING

from athlete_platform.errors import PlatformError
from athlete_platform.lakehouse.reads import open_table, spellings
from athlete_platform.lakehouse.tables import ALL_TABLES, Table, TableNames

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from athlete_platform.config import Settings


def referenced_tables(query: str, names: TableNames) -> list[Table]:
    """The registered tables `query` names, in any of their spellings (case-insensitive)."""
    found = []
    for table in ALL_TABLES:
        for spelling in spellings(table, names):
            # a name, not part of a longer one (`gold.x` inside `uc_athlete_data.gold.x` counts too)
            if re.search(rf"(?<![\w]){re.escape(spelling)}(?![\w])", query, flags=re.IGNORECASE):
                found.append(table)
                break
    return found


def connect(settings: Settings, tables: list[Table]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection where `tables` answer to their catalog names (three- and two-level)."""
    import duckdb

    names = TableNames.from_settings(settings.catalog)
    con = duckdb.connect()
    catalog = settings.catalog.name
    con.execute(f"ATTACH ':memory:' AS \"{catalog}\"")
    con.execute(f'USE "{catalog}"')
    for i, table in enumerate(tables):
        schema = names.schema_prefix + table.schema
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{catalog}"."{schema}"')
        con.register(f"_delta_{i}", open_table(settings, table).to_pyarrow_dataset())
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
        first_line = str(exc).strip().splitlines()[0]
        raise PlatformError(f"The query failed in DuckDB: {first_line}") from None
    finally:
        con.close()
