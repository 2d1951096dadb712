"""Shared fixtures: one settings object, one catalog server and one Spark session per run.

The suite runs on conf/test.yaml with its data folder in a fresh temp dir and the catalog
server on a free port, so it never touches `make run`'s lakehouse and can run beside it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from athlete_platform.config import Settings, load_settings

HOME = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Exported so CLI subprocesses started by tests see the same lakehouse.
    os.environ["ATHLETE_CONF_FILE"] = str(HOME / "conf" / "test.yaml")
    os.environ["ATHLETE_DATA_DIR"] = str(tmp_path_factory.mktemp("lakehouse"))
    os.environ["ATHLETE_OUTPUT_DIR"] = str(tmp_path_factory.mktemp("output"))
    os.environ["ATHLETE_CATALOG__PORT"] = str(free_port())
    return load_settings()


@pytest.fixture(scope="session")
def catalog_server(settings: Settings):
    from athlete_platform.lakehouse.catalog_server import CatalogServer

    server = CatalogServer.from_settings(settings)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def spark(settings: Settings, catalog_server) -> Iterator:
    from athlete_platform.lakehouse.bootstrap import bootstrap_namespace
    from athlete_platform.lakehouse.spark import build_spark
    from athlete_platform.lakehouse.tables import TableNames

    session = build_spark(settings)
    bootstrap_namespace(session, TableNames.from_settings(settings.catalog))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def names(settings: Settings):
    from athlete_platform.lakehouse.tables import TableNames

    return TableNames.from_settings(settings.catalog)
