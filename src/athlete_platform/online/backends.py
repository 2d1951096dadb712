"""Pick the online store backend the config names (`online_store.backend`)."""

from __future__ import annotations

from athlete_platform.config import Settings
from athlete_platform.online.store import OnlineStore


def open_store(settings: Settings) -> OnlineStore:
    """The configured online store, opened (and, for SQLite, created when missing).

    Raises `OnlineStoreUnavailable` with what to run when it cannot be reached.
    """
    cfg = settings.online_store
    if cfg.backend == "sqlite":
        from athlete_platform.online.sqlite_store import SQLiteOnlineStore

        return SQLiteOnlineStore(settings.online_store_path, timeout_s=cfg.timeout_s)
    from athlete_platform.online.redis_store import RedisOnlineStore

    return RedisOnlineStore(
        host=cfg.host, port=cfg.port, db=cfg.db, namespace=settings.online_namespace, timeout_s=cfg.timeout_s
    )
