"""Reads of the lakehouse's tables without Spark: a registered name -> Arrow, through delta-rs.

For data apps, notebooks and `sql --engine duckdb`, where a JVM start (6-23 s) would cost more
than the read. A name is resolved through the same registry the jobs write from
(`lakehouse.tables`), so `gold.athlete_predictions`, `uc_athlete_data.gold.athlete_predictions`
and a prefixed schema (`dev_alice_gold.athlete_predictions`) all name one table, and a typo gets
the list of names there are. The files are found at the location Spark gives a managed table of
the embedded catalog (`delta_rs.table_location`); the other catalog backends keep their tables
where their own server says, which only Spark asks, so they are refused with what to use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from athlete_platform.errors import ConfigError, SetupError
from athlete_platform.lakehouse.delta_rs import table_location
from athlete_platform.lakehouse.tables import ALL_TABLES, Table, TableNames

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

    from athlete_platform.config import Settings


class TableNotWritten(SetupError):
    """The table is registered but no step has written it yet (no Delta log at its location)."""


#: A delta-rs filter: (column, operator, value), e.g. ("as_of_date", ">=", date(2024, 12, 1)).
Filter = tuple[str, str, Any]


def spellings(table: Table, names: TableNames) -> list[str]:
    """Every name `table` answers to here, longest first: the three-level name, then the
    two-level one with the schema prefix (the catalog's own rendering), then without it."""
    full = names(table)
    two_level = f"{names.schema_prefix}{table.schema}.{table.name}"
    return list(dict.fromkeys([full, two_level, f"{table.schema}.{table.name}"]))


def resolve(name: str, names: TableNames) -> Table:
    """The registered table `name` names (case-insensitive), or a ConfigError listing them."""
    wanted = name.strip().strip("`").lower()
    for table in ALL_TABLES:
        if wanted in (spelling.lower() for spelling in spellings(table, names)):
            return table
    known = ", ".join(sorted(f"{t.schema}.{t.name}" for t in ALL_TABLES))
    raise ConfigError(f"No table {name!r} is registered. The tables are: {known}.")


def open_table(settings: Settings, table: Table, version: int | None = None) -> DeltaTable:
    """`table`'s Delta log (at `version`, else the latest), or a SetupError saying what to run."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    names = TableNames.from_settings(settings.catalog)
    if settings.catalog.backend != "embedded":
        raise SetupError(
            f"Reads without Spark know the embedded catalog's table locations only (catalog.backend is "
            f"{settings.catalog.backend!r}): query {names(table)} through Spark (`athlete-platform sql`) "
            "or the SQL servers (`athlete-platform sql-server up`)."
        )
    location = table_location(settings, table)
    try:
        delta = DeltaTable(str(location))
    except TableNotFoundError:
        raise TableNotWritten(
            f"The table {names(table)} has no Delta files at {location} yet: run the step that writes it "
            "(`athlete-platform run` runs them all), with the same data_dir and catalog.schema_prefix."
        ) from None
    if version is not None:
        latest = delta.version()
        if not 0 <= version <= latest:
            raise ConfigError(f"version: {names(table)} has versions 0 to {latest}, not {version}.")
        delta.load_as_version(version)
    return delta


def read_table(
    name: str,
    version: int | None = None,
    filters: list[Filter] | None = None,
    columns: list[str] | None = None,
    settings: Settings | None = None,
) -> pa.Table:
    """The rows of the registered table `name` as an Arrow table (`.to_pandas()` for pandas).

    version: a Delta version (time travel), else the latest.
    filters: delta-rs filters, ANDed and pushed into the scan (partitions and file statistics
             skip what they can), e.g. `[("athlete_id", "=", "ath_0001")]`.
    columns: the columns to read, else all.
    settings: the project's settings, else loaded as the CLI does (conf file + environment).
    """
    if settings is None:
        from athlete_platform.config import load_settings

        settings = load_settings()
    names = TableNames.from_settings(settings.catalog)
    table = resolve(name, names)
    if columns is not None:
        unknown = sorted(set(columns) - set(table.column_names))
        if unknown:
            raise ConfigError(
                f"columns: {names(table)} has no column {', '.join(unknown)}; it has {', '.join(table.column_names)}."
            )
    return open_table(settings, table, version).to_pyarrow_table(columns=columns, filters=filters or None)
