"""`athlete-platform online-store check`: does the online store hold the offline latest rows?

Every online row is compared, field by field over the columns materialization owns
(`materialize.ONLINE_COLUMNS` but `source_version`; fields only the streaming job writes are
not offline facts and are left out), with what materialization would write now: the feature
table's latest row per athlete plus profile plus last race, at the tables' current versions.
Athletes missing on either side are differences too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from athlete_platform.errors import SetupError
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.delta import current_version
from athlete_platform.online.backends import open_store
from athlete_platform.online.materialize import ONLINE_COLUMNS, online_rows, to_online_row, values_equal
from athlete_platform.online.store import KEY, SOURCE_VERSION

if TYPE_CHECKING:
    from athlete_platform.lakehouse.step import StepContext

#: The fields compared (lineage aside).
COMPARED = tuple(c for c in ONLINE_COLUMNS if c not in (KEY, SOURCE_VERSION))
ROW = "(row)"  # the column of a difference about a whole row


@dataclass(frozen=True)
class Difference:
    athlete_id: str
    column: str
    online: Any
    offline: Any


@dataclass(frozen=True)
class CheckReport:
    differences: list[Difference]
    online_rows: int
    offline_rows: int
    store: str
    store_version: int | None
    feature_table_version: int

    def lines(self, limit: int = 50) -> list[str]:
        where = (
            f"{self.store}: {self.online_rows} online rows (at feature table v{self.store_version}) vs "
            f"{self.offline_rows} offline latest rows (v{self.feature_table_version})"
        )
        if not self.differences:
            return [f"no differences: {where}"]
        athletes = len({d.athlete_id for d in self.differences})
        lines = [f"{len(self.differences)} differences in {athletes} athletes: {where}"]
        lines += difference_table(self.differences, limit)
        if self.store_version != self.feature_table_version:
            lines.append("the store is behind the feature table: run `athlete-platform materialize`")
        return lines


def compare_rows(
    online: Mapping[str, Mapping[str, Any]], offline: Mapping[str, Mapping[str, Any]], columns=COMPARED
) -> list[Difference]:
    """Pure: the differences between two keyed sets of rows, sorted by athlete and column."""
    differences = []
    for key in sorted(set(online) | set(offline)):
        mine, theirs = online.get(key), offline.get(key)
        if mine is None or theirs is None:
            state = {True: "missing", False: "present"}
            differences.append(Difference(key, ROW, state[mine is None], state[theirs is None]))
            continue
        for column in columns:
            if column not in mine:
                differences.append(Difference(key, column, "(no field)", theirs.get(column)))
            elif not values_equal(mine[column], theirs.get(column)):
                differences.append(Difference(key, column, mine[column], theirs.get(column)))
    return differences


def difference_table(differences: list[Difference], limit: int = 50) -> list[str]:
    """A text table of the first `limit` differences."""
    shown = differences[:limit]
    cells = [("athlete_id", "column", "online", "offline")] + [
        (d.athlete_id, d.column, repr(d.online), repr(d.offline)) for d in shown
    ]
    widths = [min(40, max(len(row[i]) for row in cells)) for i in range(4)]
    lines = ["  " + "  ".join(cell[:40].ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    if len(differences) > limit:
        lines.append(f"  ... and {len(differences) - limit} more")
    return lines


def check_online_store(ctx: StepContext) -> CheckReport:
    """Compare the configured online store with the offline tables now."""
    spark, names = ctx.spark, ctx.names
    sources = (tables.ATHLETE_ROLLING_FEATURES, tables.ATHLETES, tables.RACES)
    frames, versions = [], []
    for table in sources:
        name = names(table)
        if not spark.catalog.tableExists(name):
            raise SetupError(f"{name} does not exist yet: run the batch pipeline first (`athlete-platform run`).")
        version = current_version(spark, name)
        versions.append(version)
        frames.append(spark.read.format("delta").option("versionAsOf", version).table(name))
    offline = {row[KEY]: to_online_row(row.asDict()) for row in online_rows(*frames, versions[0]).collect()}
    with open_store(ctx.settings) as store:
        meta = store.metadata()
        online = store.get(store.keys())
    return CheckReport(
        compare_rows(online, offline),
        len(online),
        len(offline),
        f"{meta.backend} {meta.location}",
        meta.source_version,
        versions[0],
    )
