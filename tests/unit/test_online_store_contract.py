"""The online store contract (online/store.py), run against both backends: a real SQLite file and a
real redis-server started through the project's lifecycle code on a free port in a temp folder
(the `redis_server` fixture of tests/conftest.py).

No Spark here: the store holds plain JSON-able rows. Each test gets a store of its own (a new
SQLite file, or a new key namespace on the one redis-server of the session).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import uuid
from pathlib import Path

import pytest

from athlete_platform.config import load_settings
from athlete_platform.online.backends import open_store
from athlete_platform.online.redis_server import RedisServer, RedisServerError, _alive
from athlete_platform.online.redis_store import RedisOnlineStore
from athlete_platform.online.sqlite_store import SQLiteOnlineStore
from athlete_platform.online.store import OnlineStoreUnavailable
from tests.conftest import HOME, free_port

BACKENDS = ["sqlite", "redis"]


def new_store(backend: str, tmp_path: Path, redis_server: RedisServer, namespace: str | None = None):
    if backend == "sqlite":
        return SQLiteOnlineStore(tmp_path / f"{namespace or 'online_store'}.db")
    return RedisOnlineStore("127.0.0.1", redis_server.port, 0, namespace or f"test:{uuid.uuid4().hex}")


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path, redis_server):
    opened = new_store(request.param, tmp_path, redis_server)
    yield opened
    opened.close()


def row(athlete_id: str, **fields) -> dict:
    return {"athlete_id": athlete_id, **fields}


# --- get / merge-upsert / delete ----------------------------------------------------------------


def test_unknown_keys_are_absent_and_an_empty_store_says_so(store):
    assert store.get(["nobody"]) == {}
    assert store.get([]) == {}
    meta = store.metadata()
    assert (meta.backend, meta.rows, meta.source_version, meta.materialized_at) == (store.backend, 0, None, None)
    assert store.keys() == []


def test_values_round_trip_with_their_types(store):
    values = {"ctl": 41.25, "sessions_7d": 5, "is_new": True, "sex": "F", "vdot_best_90d": None, "tiny": 1e-300}
    assert store.upsert([row("a", **values)]) == 1
    got = store.get(["a"])["a"]
    assert got == row("a", **values)
    assert type(got["sessions_7d"]) is int and type(got["ctl"]) is float and type(got["is_new"]) is bool


def test_upsert_merges_fields_and_keeps_the_others(store):
    store.upsert([row("a", ctl=1.0, atl=2.0, today_load=7.0)])
    store.upsert([row("a", ctl=3.0, atl=None)])  # a null is a value, not "leave it"
    assert store.get(["a"])["a"] == row("a", ctl=3.0, atl=None, today_load=7.0)


def test_get_many_returns_only_known_keys(store):
    store.upsert([row(k, n=i) for i, k in enumerate("abc")])
    assert store.get(["c", "x", "a", "a"]) == {"c": row("c", n=2), "a": row("a", n=0)}
    assert store.keys() == ["a", "b", "c"]
    assert store.metadata().rows == 3


def test_delete_removes_the_whole_row(store):
    store.upsert([row("a", ctl=1.0), row("b", ctl=2.0)])
    assert store.apply(deletes=["a", "nobody"]) == 1
    assert store.get(["a", "b"]) == {"b": row("b", ctl=2.0)}
    assert store.keys() == ["b"]
    store.upsert([row("a", atl=5.0)])  # a deleted row comes back with only its new fields
    assert store.get(["a"])["a"] == row("a", atl=5.0)


# --- metadata -------------------------------------------------------------------------------


def test_source_version_and_materialized_at_are_recorded_with_the_change(store):
    store.apply([row("a", ctl=1.0)], source_version=7, metadata={"athletes_version": "3"})
    meta = store.metadata()
    assert (meta.rows, meta.source_version, meta.extra) == (1, 7, {"athletes_version": "3"})
    assert meta.materialized_at.endswith("Z") and meta.materialized_at.startswith("20")
    first = meta.materialized_at
    store.upsert([row("b", ctl=1.0)])  # no version: the recorded one stays
    assert store.metadata().source_version == 7 and store.metadata().materialized_at == first
    store.apply(deletes=["a"], source_version=9, metadata={"races_version": "4"})
    meta = store.metadata()
    assert (meta.rows, meta.source_version) == (1, 9)
    assert meta.extra == {"athletes_version": "3", "races_version": "4"}
    assert meta.materialized_at >= first


# --- atomicity ---------------------------------------------------------------------------------


def test_a_failing_row_in_the_middle_leaves_nothing_applied(store):
    store.apply([row("a", ctl=1.0)], source_version=1)

    def rows():
        yield row("a", ctl=2.0)
        yield row("b", ctl=2.0)
        yield row("c", ctl=object())  # cannot be encoded: the change must be abandoned whole

    with pytest.raises(TypeError):
        store.apply(rows(), deletes=["a"], source_version=2, metadata={"x": "1"})
    assert store.get(["a", "b", "c"]) == {"a": row("a", ctl=1.0)}
    meta = store.metadata()
    assert (meta.rows, meta.source_version, meta.extra) == (1, 1, {})


def test_a_row_without_its_key_is_refused_whole(store):
    with pytest.raises(ValueError, match="athlete_id"):
        store.apply([row("a", ctl=1.0), {"ctl": 2.0}], source_version=1)
    assert store.keys() == [] and store.metadata().source_version is None


def test_two_namespaces_do_not_see_each_other(tmp_path, redis_server):
    for backend in BACKENDS:
        one = new_store(backend, tmp_path, redis_server, namespace=f"one_{backend}_{uuid.uuid4().hex[:6]}")
        two = new_store(backend, tmp_path, redis_server, namespace=f"two_{backend}_{uuid.uuid4().hex[:6]}")
        one.apply([row("a", ctl=1.0)], source_version=1)
        assert two.get(["a"]) == {} and two.metadata().rows == 0 and two.metadata().source_version is None
        one.close()
        two.close()


def test_sqlite_merges_from_two_writers_keep_both_fields(tmp_path):
    first, second = SQLiteOnlineStore(tmp_path / "s.db"), SQLiteOnlineStore(tmp_path / "s.db")
    first.upsert([row("a", ctl=1.0)])
    second.upsert([row("a", today_load=3.0)])  # e.g. streaming next to materialization
    assert first.get(["a"])["a"] == row("a", ctl=1.0, today_load=3.0)
    assert sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --- persistence and unavailability ---------------------------------------------------------------


def test_redis_rows_survive_a_restart_and_a_kill(tmp_path):
    server = RedisServer("127.0.0.1", free_port(), tmp_path / "redis")
    server.start()
    try:
        store = RedisOnlineStore("127.0.0.1", server.port, 0, "persist")
        store.apply([row("a", ctl=1.5, n=None)], source_version=4)
        store.close()
        server.stop()
        server.start()
        store = RedisOnlineStore("127.0.0.1", server.port, 0, "persist")
        assert store.get(["a"]) == {"a": row("a", ctl=1.5, n=None)}
        assert store.metadata().source_version == 4
        store.upsert([row("b", ctl=2.0)])  # acknowledged = in the append-only file, even on kill -9
        store.close()
        os.kill(server.pid(), signal.SIGKILL)
        server.start()
        store = RedisOnlineStore("127.0.0.1", server.port, 0, "persist")
        assert store.keys() == ["a", "b"]
        store.close()
        assert (tmp_path / "redis" / "appendonlydir").is_dir()
    finally:
        server.stop()


def test_a_stopped_redis_is_unavailable_with_what_to_run(tmp_path):
    server = RedisServer("127.0.0.1", free_port(), tmp_path / "redis")
    server.start()
    store = RedisOnlineStore("127.0.0.1", server.port, 0, "gone")
    server.stop()
    with pytest.raises(OnlineStoreUnavailable, match="online-store up"):
        store.get(["a"])
    with pytest.raises(OnlineStoreUnavailable, match="online-store up"):
        store.apply([row("a", ctl=1.0)])
    with pytest.raises(OnlineStoreUnavailable, match=f"redis://127.0.0.1:{server.port}/0"):
        RedisOnlineStore("127.0.0.1", server.port, 0, "gone")


def test_a_server_too_busy_to_answer_is_still_stopped(tmp_path):
    """`stop` on a loaded machine: the server does not answer its INFO within the second
    (simulated by SIGSTOP), so it is found by its pid file and stopped, not reported as
    "not running" and left alive."""
    server = RedisServer("127.0.0.1", free_port(), tmp_path / "redis")
    server.start()
    pid = server.pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        assert server.info() is None  # it does not answer
        assert server.stop(timeout_s=1.0) == f"stopped (pid {pid})"
        assert not _alive(pid)
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_an_unusable_sqlite_file_is_unavailable_with_what_to_do(tmp_path):
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OnlineStoreUnavailable, match="damaged.db.*materialize"):
        SQLiteOnlineStore(damaged)
    (tmp_path / "a_folder.db").mkdir()
    with pytest.raises(OnlineStoreUnavailable, match="a_folder.db"):
        SQLiteOnlineStore(tmp_path / "a_folder.db")


# --- the redis-server lifecycle ---------------------------------------------------------------------


def test_up_is_idempotent_and_status_names_the_pid_that_answers(redis_server):
    pid = redis_server.pid()
    assert pid is not None and Path(f"/proc/{pid}").exists()
    assert redis_server.start() == f"already running on {redis_server.address} (pid {pid})"
    line, ours = redis_server.status()
    assert ours and f"pid {pid}" in line and "appendonly yes" in line
    assert int(redis_server.pid_file.read_text()) == pid


def test_up_refuses_a_port_held_by_another_folders_redis_or_by_something_else(tmp_path, redis_server):
    other = RedisServer("127.0.0.1", redis_server.port, tmp_path / "other")
    line, ours = other.status()
    assert not ours and f"pid {redis_server.pid()}" in line and "not this data folder's" in line
    with pytest.raises(RedisServerError, match="already in use by pid"):
        other.start()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = RedisServer("127.0.0.1", squatter.getsockname()[1], tmp_path / "mine")
        with pytest.raises(RedisServerError, match=f"pid {os.getpid()}.*not a redis-server"):
            taken.start()
        assert taken.stop() == "not running"  # never stops what is not ours


def test_open_store_follows_the_config(tmp_path, redis_server):
    env = {"ATHLETE_DATA_DIR": str(tmp_path), "ATHLETE_CATALOG__SCHEMA_PREFIX": "mod_"}
    settings = load_settings(HOME / "conf" / "test.yaml", environ=env)
    sqlite_store = open_store(settings)
    assert sqlite_store.backend == "sqlite"
    assert sqlite_store.metadata().location == str(tmp_path / "online" / "online_store.mod.db")
    env |= {"ATHLETE_ONLINE_STORE__BACKEND": "redis", "ATHLETE_ONLINE_STORE__PORT": str(redis_server.port)}
    redis_store = open_store(load_settings(HOME / "conf" / "test.yaml", environ=env))
    assert redis_store.backend == "redis" and redis_store.prefix == "ap:uc_athlete_data:mod_test:"
    assert redis_store.metadata().location == f"redis://127.0.0.1:{redis_server.port}/0"


def test_the_online_store_subcommand_starts_checks_and_stops_the_server(tmp_path, monkeypatch, capsys):
    from athlete_platform import cli

    port = free_port()
    monkeypatch.setenv("ATHLETE_CONF_FILE", str(HOME / "conf" / "test.yaml"))
    monkeypatch.setenv("ATHLETE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ATHLETE_ONLINE_STORE__BACKEND", "redis")
    monkeypatch.setenv("ATHLETE_ONLINE_STORE__PORT", str(port))

    def run(action: str) -> tuple[int, str]:
        code = cli.main(["online-store", action])
        return code, capsys.readouterr().out

    try:
        code, out = run("up")
        assert code == 0 and f"started on 127.0.0.1:{port}" in out
        pid = int(out.split("pid ")[1].split(",")[0])
        assert run("up") == (0, f"online store redis-server: already running on 127.0.0.1:{port} (pid {pid})\n")
        code, out = run("status")
        assert code == 0 and f"(pid {pid}, redis" in out and str(tmp_path / "online" / "redis") in out
    finally:
        code, out = run("down")
    assert code == 0 and f"stopped (pid {pid})" in out
    assert run("status")[0] == 1
    monkeypatch.setenv("ATHLETE_ONLINE_STORE__BACKEND", "sqlite")
    code, out = run("status")
    assert code == 0 and "sqlite file" in out and "0 rows" in out
    code, out = run("up")
    assert code == 0 and "no server to start" in out
