"""The embedded online store: one SQLite database file in WAL mode, no server.

Layout (one file, e.g. data/online/online_store.db):

    online_rows(athlete_id TEXT PRIMARY KEY, fields TEXT)   fields: the row as one JSON object
    online_metadata(name TEXT PRIMARY KEY, value TEXT)      source_version, materialized_at, extras

A get is one primary-key lookup and one `json.loads`. A merge-upsert reads the stored object,
merges the new fields over it and writes it back, all inside one `BEGIN IMMEDIATE` transaction
that holds the write lock, so concurrent writers (materialization, streaming) never lose each
other's fields. (SQLite's `json_patch` would do the merge in SQL, but it drops a field whose new
value is null, and a null feature must stay a null feature.) WAL lets readers go on while a
writer commits; `synchronous=NORMAL` keeps every commit across a process crash (a power cut may
lose the last commits, never corrupt the file).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from athlete_platform.online.store import (
    MATERIALIZED_AT,
    SOURCE_VERSION,
    OnlineStoreUnavailable,
    Row,
    StoreMetadata,
    row_key,
)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS online_rows (athlete_id TEXT PRIMARY KEY, fields TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS online_metadata (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)
# SQLite allows 32766 bound parameters; keep IN lists well under it.
_CHUNK = 900


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class SQLiteOnlineStore:
    """`OnlineStore` on a SQLite file (see the module docstring). Thread-safe: one connection
    behind a lock; open one store per process."""

    backend = "sqlite"

    def __init__(self, path: Path, timeout_s: float = 2.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) below.
            self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise self._unavailable(exc) from None

    @property
    def location(self) -> str:
        return str(self.path)

    def get(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        try:
            with self._lock:
                if len(keys) == 1:  # the serving path: one lookup, no IN list
                    rows = self._db.execute("SELECT athlete_id, fields FROM online_rows WHERE athlete_id = ?", keys)
                    rows = rows.fetchall()
                else:
                    rows = []
                    for start in range(0, len(keys), _CHUNK):
                        chunk = keys[start : start + _CHUNK]
                        marks = ",".join("?" * len(chunk))
                        query = f"SELECT athlete_id, fields FROM online_rows WHERE athlete_id IN ({marks})"
                        rows += self._db.execute(query, chunk).fetchall()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        for key, fields in rows:
            found[key] = json.loads(fields)
        return found

    def apply(
        self,
        upserts: Iterable[Row] = (),
        deletes: Iterable[str] = (),
        source_version: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        written = 0
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")  # takes the write lock now: no lost merges
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from None
            try:
                for row in upserts:
                    key = row_key(row)
                    stored = self._db.execute("SELECT fields FROM online_rows WHERE athlete_id = ?", (key,)).fetchone()
                    merged = json.loads(stored[0]) if stored else {}
                    merged.update(row)
                    self._db.execute(
                        "INSERT INTO online_rows (athlete_id, fields) VALUES (?, ?) "
                        "ON CONFLICT (athlete_id) DO UPDATE SET fields = excluded.fields",
                        (key, json.dumps(merged)),
                    )
                    written += 1
                for key in deletes:
                    written += self._db.execute("DELETE FROM online_rows WHERE athlete_id = ?", (key,)).rowcount
                recorded = dict(metadata or {})
                if source_version is not None:
                    recorded |= {SOURCE_VERSION: str(int(source_version)), MATERIALIZED_AT: utc_now_iso()}
                self._db.executemany(
                    "INSERT INTO online_metadata (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    [(name, str(value)) for name, value in recorded.items()],
                )
                self._db.execute("COMMIT")
            except BaseException as exc:
                self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._unavailable(exc) from None
                raise
        return written

    def upsert(self, rows: Iterable[Row]) -> int:
        return self.apply(upserts=rows)

    def metadata(self) -> StoreMetadata:
        try:
            with self._lock:
                rows = self._db.execute("SELECT COUNT(*) FROM online_rows").fetchone()[0]
                values = dict(self._db.execute("SELECT name, value FROM online_metadata").fetchall())
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        return StoreMetadata.from_recorded(self.backend, self.location, rows, values)

    def keys(self) -> list[str]:
        try:
            with self._lock:
                return [key for (key,) in self._db.execute("SELECT athlete_id FROM online_rows ORDER BY athlete_id")]
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteOnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unavailable(self, exc: Exception) -> OnlineStoreUnavailable:
        return OnlineStoreUnavailable(
            f"The online store's SQLite file {self.path} cannot be used ({exc}). Check that its folder "
            "exists and is writable and that the file is a SQLite database (online_store.path in the config, "
            "or ATHLETE_ONLINE_STORE__PATH); delete a damaged file and run `athlete-platform materialize` "
            "to rebuild it from the feature table."
        )
