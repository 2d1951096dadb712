"""The online store on a real Redis server (the project starts it: `online-store up`).

Layout, every key under `ap:<catalog>:<schema prefix><env>:` so two lakehouses can share one
server without seeing each other's rows:

    <prefix>row:<athlete_id>   hash: field -> JSON value   (one per athlete; HSET merges fields)
    <prefix>keys               set of athlete_ids that have a row (SCARD is the row count)
    <prefix>meta               hash: source_version, materialized_at and the extras

Values are JSON, so ints, floats, bools, None and strings come back as they went in.
`apply` queues every command in a MULTI/EXEC transaction: Redis runs it as one unit, and rows
are encoded while queueing, so a row that cannot be encoded aborts the whole change before
anything is sent. (Redis has no rollback: a command that fails *inside* EXEC, e.g. a foreign
value of the wrong type under one of our keys, does not undo the others. Our keys hold only
what this module writes.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from athlete_platform.online.sqlite_store import utc_now_iso
from athlete_platform.online.store import (
    MATERIALIZED_AT,
    SOURCE_VERSION,
    OnlineStoreUnavailable,
    Row,
    StoreMetadata,
    row_key,
)

T = TypeVar("T")
KEY_PREFIX = "ap"


class RedisOnlineStore:
    """`OnlineStore` on a Redis database (see the module docstring). The client keeps a
    connection pool, so one store may be shared by threads."""

    backend = "redis"

    def __init__(self, host: str, port: int, db: int, namespace: str, timeout_s: float = 2.0) -> None:
        self.host, self.port, self.db = host, port, db
        self.prefix = f"{KEY_PREFIX}:{namespace}:"
        self._row_prefix = self.prefix + "row:"
        self._keys_key = self.prefix + "keys"
        self._meta_key = self.prefix + "meta"
        self._client = redis.Redis(
            host=host,
            port=port,
            db=db,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            decode_responses=True,
            # One immediate retry covers a dropped idle connection; the client's default (10 retries
            # with back-off, ~4 s) would keep a request waiting long after the server went away.
            # Re-sending a transaction is safe: upserts and deletes are idempotent.
            retry=Retry(NoBackoff(), 1),
        )
        self._call(self._client.ping)  # fail at open, with what to run, not at the first get

    @property
    def location(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"

    def get(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        keys = list(dict.fromkeys(keys))
        if len(keys) == 1:  # the serving path: one round trip, no pipeline object
            hashes = [self._call(lambda: self._client.hgetall(self._row_prefix + keys[0]))]
        else:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(self._row_prefix + key)
            hashes = self._call(pipe.execute)
        return {
            key: {field: json.loads(value) for field, value in fields.items()}
            for key, fields in zip(keys, hashes, strict=True)
            if fields
        }

    def apply(
        self,
        upserts: Iterable[Row] = (),
        deletes: Iterable[str] = (),
        source_version: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        pipe = self._client.pipeline(transaction=True)  # MULTI ... EXEC
        try:
            upserted = 0
            for row in upserts:
                key = row_key(row)
                pipe.hset(self._row_prefix + key, mapping={field: json.dumps(value) for field, value in row.items()})
                pipe.sadd(self._keys_key, key)
                upserted += 1
            deleted: list[str] = []
            for key in deletes:
                pipe.delete(self._row_prefix + key)
                pipe.srem(self._keys_key, key)
                deleted.append(key)
            recorded = {name: str(value) for name, value in (metadata or {}).items()}
            if source_version is not None:
                recorded |= {SOURCE_VERSION: str(int(source_version)), MATERIALIZED_AT: utc_now_iso()}
            if recorded:
                pipe.hset(self._meta_key, mapping=recorded)
            if not (upserted or deleted or recorded):
                return 0
            results = self._call(pipe.execute)
        finally:
            pipe.reset()  # a row that failed to encode: nothing was sent, the queue is dropped
        # DEL answers 1 for a key that existed; its result sits after the upserts' HSET + SADD.
        deletions = results[2 * upserted : 2 * upserted + 2 * len(deleted) : 2]
        return upserted + sum(int(n) for n in deletions)

    def upsert(self, rows: Iterable[Row]) -> int:
        return self.apply(upserts=rows)

    def metadata(self) -> StoreMetadata:
        pipe = self._client.pipeline(transaction=True)  # rows and versions from one moment
        pipe.scard(self._keys_key)
        pipe.hgetall(self._meta_key)
        rows, values = self._call(pipe.execute)
        return StoreMetadata.from_recorded(self.backend, self.location, rows, values)

    def keys(self) -> list[str]:
        return sorted(self._call(lambda: self._client.smembers(self._keys_key)))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RedisOnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise OnlineStoreUnavailable(
                f"The online store's redis-server at {self.location} does not answer ({exc}). Start the "
                "project's server with `athlete-platform online-store up` (or `make online-store-up`) and check "
                "it with `athlete-platform online-store status`; or switch to the embedded store with "
                "online_store.backend: sqlite (ATHLETE_ONLINE_STORE__BACKEND=sqlite)."
            ) from None
