"""The online store contract: one current row per athlete, two backends (SQLite, Redis).

SCD type 4: `feature_store.athlete_rolling_features` keeps every day (history); the online
store keeps only each athlete's *current* row, keyed by `athlete_id`. A row is a flat mapping
of JSON-able values (str, int, float, bool, None; dates as ISO strings): the feature columns of
the latest `feature_date`, the profile columns the models need, the athlete's last race,
the intraday columns the streaming job keeps, and the lineage columns below.

Semantics every backend keeps (the contract suite in tests/ checks both):

- `get(keys)` returns the rows it has, by key; an unknown key is simply absent.
- `apply(upserts, deletes, source_version)` is ONE atomic change: each upsert *merges* its
  fields into the key's row (fields it does not name keep their value, so materialization
  and streaming can each own their columns), each delete removes a key's whole row, and the
  offline source version (when given) is recorded with the same commit. A crash leaves
  either the old or the new state, never half of it.
- `metadata()` says what the store holds: backend, rows, the source version last applied,
  and the named values (`extra`) the last applies recorded next to it (materialization keeps
  the Delta versions of the silver tables it read there).

Backends: `online.sqlite_store` (embedded default) and `online.redis_store`; `online.backends.
open_store(settings)` picks one from the `online_store:` config section.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from athlete_platform.errors import PlatformError

#: The serving key of every online row.
KEY = "athlete_id"
#: Lineage columns of a materialized row.
FEATURE_DATE = "feature_date"
SOURCE_VERSION = "source_version"  # the Delta version of the feature table the row came from
MATERIALIZED_AT = "materialized_at"  # ISO-8601 UTC time the row was written

Row = Mapping[str, Any]


class OnlineStoreUnavailable(PlatformError):
    """The online store cannot be reached (server down, file unreadable): retry later."""


@dataclass(frozen=True)
class StoreMetadata:
    backend: str  # "sqlite" | "redis"
    location: str  # file path or redis://host:port/db
    rows: int
    source_version: int | None  # offline Delta version last applied; None before the first run
    materialized_at: str | None  # ISO-8601 UTC of the last apply that recorded a version
    # Named values recorded by `apply(..., metadata=...)`, e.g. upstream Delta versions.
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_recorded(cls, backend: str, location: str, rows: int, recorded: Mapping[str, str]) -> StoreMetadata:
        """Reads the lineage a backend recorded (`SOURCE_VERSION`, `MATERIALIZED_AT`) out of its
        named values; the others are `extra`."""
        values = dict(recorded)
        version = values.pop(SOURCE_VERSION, None)
        return cls(
            backend=backend,
            location=location,
            rows=int(rows),
            source_version=None if version is None else int(version),
            materialized_at=values.pop(MATERIALIZED_AT, None),
            extra=values,
        )


class OnlineStore(Protocol):
    """What materialization, streaming and serving use; see the module docstring for semantics."""

    def get(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    def apply(
        self,
        upserts: Iterable[Row] = (),
        deletes: Iterable[str] = (),
        source_version: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        """Returns the number of keys written or deleted. `metadata` (name -> text) is recorded
        in the same atomic change and shows in `metadata().extra`."""
        ...

    def upsert(self, rows: Iterable[Row]) -> int:
        """`apply(upserts=rows)`."""
        ...

    def metadata(self) -> StoreMetadata: ...

    def keys(self) -> list[str]: ...

    def close(self) -> None: ...


def row_key(row: Row) -> str:
    """The row's `athlete_id`; a row without one is a programming error, named."""
    key = row.get(KEY)
    if not isinstance(key, str) or not key:
        raise ValueError(f"an online row needs a non-empty string {KEY!r}; got {key!r} in {dict(row)!r}")
    return key
