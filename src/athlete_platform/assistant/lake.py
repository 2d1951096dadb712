"""The assistant's reads of the lakehouse: Delta tables through delta-rs, no Spark.

The assistant answers inside the deployment API (no Spark per request) and on the console
(where a JVM start would cost more than the whole answer), so it reads the tables' files
directly, at the managed location Spark gives them (`lakehouse.reads.open_table`),
with the athlete and the date range pushed into the scan. Every read returns the Delta
version it read, which the citations carry: reading that version again reproduces the answer.

Only the `embedded` catalog's managed locations are known here: with another catalog backend
a read stops saying so (the same rule as `athlete_platform.read_table`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from athlete_platform.lakehouse.reads import open_table
from athlete_platform.lakehouse.tables import Table, TableNames

if TYPE_CHECKING:
    from athlete_platform.config import Settings


@dataclass(frozen=True)
class TableRead:
    """Rows of one table read at one Delta version."""

    table: str  # the table's name in the catalog (what a citation names)
    version: int
    rows: list[dict[str, Any]]


class LakeReader:
    """Reads one athlete's rows of a registered table (`athlete_id` filter always applied)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names = TableNames.from_settings(settings.catalog)

    def athlete_rows(
        self,
        table: Table,
        athlete_id: str,
        day_column: str | None = None,
        start: date | None = None,
        end: date | None = None,
        columns: list[str] | None = None,
    ) -> TableRead:
        """`table`'s rows of `athlete_id` with `start <= day_column <= end` (bounds optional),
        sorted by `day_column`; `columns` projects (the filter columns need not be listed)."""
        delta = open_table(self.settings, table)  # a table not written yet: says what to run
        filters: list[tuple[str, str, Any]] = [("athlete_id", "=", athlete_id)]
        if day_column and start is not None:
            filters.append((day_column, ">=", start))
        if day_column and end is not None:
            filters.append((day_column, "<=", end))
        rows = delta.to_pyarrow_table(columns=columns, filters=filters).to_pylist()
        if day_column and (columns is None or day_column in columns):
            rows.sort(key=lambda row: (row[day_column] is None, row[day_column]))
        return TableRead(self.names(table), delta.version(), rows)
