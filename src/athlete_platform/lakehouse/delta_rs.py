"""Delta tables written without Spark, through the Delta Python writer (delta-rs `deltalake`).

Used where a JVM is out of the question: the serving API appends posted session events to
`bronze.session_events` in the request path. Spark still reads these tables by their
three-level names: the *location* is decided here, from the settings, exactly where Spark
would put a managed table (`<warehouse>/<schema_prefix><schema>.db/<table>`), delta-rs creates
the table there from its registry entry (column comments included), and Spark registers it as
an external table over that location (`lakehouse.ddl.register_external`). Whichever side comes
first creates it; both converge on one table.

Concurrent appends (threads or processes, local file system or object storage with a safe
commit protocol): delta-rs commits with "put if absent" on the next log file (a hard link on a
local file system), so two writers never overwrite each other's commit; a writer that loses
the race re-reads the log and retries (blind appends never conflict logically). `append` adds
its own retries with jitter on top for a commit that still fails, then stops with a message.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from athlete_platform.errors import ConcurrencyError, SetupError

if TYPE_CHECKING:
    import pyarrow as pa

    from athlete_platform.config import Settings
    from athlete_platform.lakehouse.tables import Table

log = logging.getLogger(__name__)

#: delta-rs' own retries of a commit that lost a race (its default is 15).
COMMIT_RETRIES = 30
#: Our retries around delta-rs' (after a growing pause with jitter).
APPEND_ATTEMPTS = 5


def table_location(settings: Settings, table: Table) -> Path:
    """Where the table's files live: the folder Spark gives a managed table of that schema."""
    schema = settings.catalog.schema_prefix + table.schema
    return settings.warehouse_path / f"{schema}.db" / table.name


def arrow_schema(table: Table) -> pa.Schema:
    """The registry entry as an Arrow schema; column comments travel as field metadata, which
    delta-rs writes into the Delta schema where Spark reads them."""
    import pyarrow as pa

    types = {
        "STRING": pa.string(),
        "BOOLEAN": pa.bool_(),
        "BIGINT": pa.int64(),
        "INT": pa.int32(),
        "DOUBLE": pa.float64(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    }
    fields = []
    for column in table.columns:
        if column.type not in types:
            raise ValueError(f"{table.schema}.{table.name}.{column.name}: no Arrow type for {column.type}")
        fields.append(pa.field(column.name, types[column.type], nullable=True, metadata={"comment": column.comment}))
    return pa.schema(fields)


def create_if_missing(location: Path, table: Table) -> bool:
    """Create the empty Delta table at `location` unless one is there; True when this call created it.

    Safe to race: of two creators one commits version 0, the other sees the table and returns False.
    """
    from deltalake import DeltaTable

    if DeltaTable.is_deltatable(str(location)):
        return False
    location.mkdir(parents=True, exist_ok=True)
    try:
        DeltaTable.create(str(location), arrow_schema(table), mode="ignore", name=table.name, description=table.comment)
    except Exception:
        if DeltaTable.is_deltatable(str(location)):  # another writer created it first
            return False
        raise
    return True


def append(location: Path, data: pa.Table, what: str) -> int:
    """Append `data` as one commit; returns the table version it committed.

    A commit that keeps losing to concurrent writers is retried `APPEND_ATTEMPTS` times, then
    stops with a `ConcurrencyError` (nothing half-written: the data files of a lost commit are
    never referenced by the log).
    """
    from deltalake import CommitProperties, DeltaTable, write_deltalake
    from deltalake.exceptions import CommitFailedError, TableNotFoundError

    for attempt in range(APPEND_ATTEMPTS):
        try:
            target = DeltaTable(str(location))
            write_deltalake(
                target,
                data,
                mode="append",
                commit_properties=CommitProperties(max_commit_retries=COMMIT_RETRIES),
            )
            return target.version()
        except TableNotFoundError:
            raise SetupError(
                f"{what}: no Delta table at {location}. It is created on first use; if this persists, check that "
                "data_dir is the lakehouse's and writable."
            ) from None
        except CommitFailedError as exc:
            if attempt == APPEND_ATTEMPTS - 1:
                raise ConcurrencyError(
                    f"{what}: the append lost {APPEND_ATTEMPTS} x {COMMIT_RETRIES} commit races to concurrent writers "
                    f"of {location} ({exc}). Nothing was written; post the events again."
                ) from None
            pause = min(1.0, 0.05 * 2**attempt) * (0.5 + random.random())
            log.warning("%s: commit conflict (%s), retry %d in %.2f s", what, exc, attempt + 1, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class LiveFiles:
    """The data files the current version of a local Delta table references, read from its log
    by delta-rs (milliseconds, no JVM): their absolute paths, and per partition how many."""

    paths: frozenset[str]
    files_per_partition: tuple[int, ...]
    deletion_vectors: bool  # the table may hold deletion vectors (their files are not in `paths`)


def live_files(location: Path) -> LiveFiles | None:
    """What the current version of the Delta table at `location` references; None when delta-rs
    cannot tell (no table there, a protocol it does not read): callers then do the full work."""
    import pyarrow as pa
    from deltalake import DeltaTable

    try:
        table = DeltaTable(str(location))
        paths = frozenset(os.path.normpath(unquote(uri.removeprefix("file://"))) for uri in table.file_uris())
        actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()
        protocol = table.protocol()
    except Exception as exc:  # noqa: BLE001 - any failure means "unknown", never a wrong answer
        log.debug("delta-rs cannot read %s (%s)", location, exc)
        return None
    partition_columns = sorted(k for k in actions if k.startswith("partition."))
    rows = zip(*(actions[c] for c in partition_columns), strict=True) if partition_columns else [()] * len(paths)
    per_partition: dict[tuple, int] = {}
    for values in rows:
        per_partition[values] = per_partition.get(values, 0) + 1
    readers = protocol.reader_features or []
    vectors = "deletionVectors" in readers or any(k.startswith("deletionVector") for k in actions)
    return LiveFiles(paths, tuple(per_partition.values()), vectors)
