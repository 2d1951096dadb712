"""Shared fixtures: one settings object, one catalog server and one Spark session per run.

The suite runs on conf/test.yaml with its data folder in a fresh temp dir and the catalog
server on a free port, so it never touches `make run`'s lakehouse and can run beside it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from athlete_platform.config import Settings, load_settings

HOME = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Exported so CLI subprocesses started by tests see the same lakehouse.
    os.environ["ATHLETE_CONF_FILE"] = str(HOME / "conf" / "test.yaml")
    os.environ["ATHLETE_DATA_DIR"] = str(tmp_path_factory.mktemp("lakehouse"))
    os.environ["ATHLETE_OUTPUT_DIR"] = str(tmp_path_factory.mktemp("output"))
    os.environ["ATHLETE_CATALOG__PORT"] = str(free_port())
    return load_settings()


@pytest.fixture(scope="session")
def catalog_server(base_settings: Settings):
    from athlete_platform.lakehouse.catalog_server import CatalogServer

    server = CatalogServer.from_settings(base_settings)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A real redis-server for the online store, started through the project's lifecycle code on a
    free port with its data in a temp folder (`make redis` installs the binary)."""
    from athlete_platform.online.redis_server import RedisServer

    server = RedisServer("127.0.0.1", free_port(), tmp_path_factory.mktemp("online") / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def spark(base_settings: Settings, catalog_server) -> Iterator:
    from pyspark.sql import SparkSession

    from athlete_platform.lakehouse.bootstrap import bootstrap_namespace
    from athlete_platform.lakehouse.spark import build_spark
    from athlete_platform.lakehouse.tables import TableNames

    plain = SparkSession.getActiveSession()
    if plain is not None:  # a unit test's plain session: the catalog-backed one replaces it
        plain.stop()
    # This session lives for the whole worker and does most of its Spark work: the full JIT
    # pays off here. conf/test.yaml's quick JIT is for the short JVMs tests start (CLI,
    # spark-submit, Airflow tasks).
    long_lived = base_settings.model_copy(update={"spark": base_settings.spark.model_copy(update={"java_options": ""})})
    session = build_spark(long_lived)
    bootstrap_namespace(session, TableNames.from_settings(base_settings.catalog))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def settings(base_settings: Settings) -> Settings:
    """The suite's settings; an integration module may override it with `lake.settings`."""
    return base_settings


@pytest.fixture(scope="session")
def names(settings: Settings):
    from athlete_platform.lakehouse.tables import TableNames

    return TableNames.from_settings(settings.catalog)


@dataclass(frozen=True)
class Lake:
    """One integration module's own lakehouse: its schemas, landing folder, MLflow store."""

    settings: Settings
    names: object  # TableNames
    spark: object  # SparkSession

    def context(self, run_date: date, run_id: str = "test-run", settings: Settings | None = None):
        from athlete_platform.lakehouse.step import StepContext

        return StepContext(settings or self.settings, self.spark, self.names, run_date, run_id=run_id)

    def run(self, step: str, run_date: date, run_id: str = "test-run", settings: Settings | None = None, **params):
        """Run a registered step (`ingest`, `silver`, `features`, `train`, `predict`, `report`)."""
        from athlete_platform import steps

        return steps.run_step(steps.BY_NAME[step], self.context(run_date, run_id, settings), params)


@pytest.fixture(scope="module")
def module_lake(request, spark, base_settings: Settings) -> Iterator[Lake]:
    """Schemas (and so registered model names) prefixed by the module's name, so no integration
    module sees another's tables or models, whatever order they run in. Exported through the
    environment too, so CLI, spark-submit and Airflow processes started by the module use them.
    The data folder stays the suite's (the catalog server belongs to it): a module that lands
    files rebuilds its landing folder first."""
    from athlete_platform.config import load_settings
    from athlete_platform.lakehouse.tables import TableNames

    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    env = {"ATHLETE_CATALOG__SCHEMA_PREFIX": f"{module}_"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    own = load_settings()
    yield Lake(own, TableNames.from_settings(own.catalog), spark)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def generate_sample(settings: Settings):
    """Write the sample data `settings` configure into its landing folder."""
    from athlete_platform.ingestion.sample_data import GeneratorConfig, generate

    cfg = settings.sample_data
    config = GeneratorConfig(seed=cfg.seed, n_athletes=cfg.n_athletes, n_days=cfg.n_days, start_date=cfg.start_date)
    return generate(config, settings.landing_path)


def pytest_sessionfinish(session):
    """In an xdist worker: hand this worker's ledger rows to the controller, which prints them."""
    from tests.reliability import ledger

    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["reliability_ledger"] = [vars(entry) for entry in ledger.ENTRIES]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist controller: a worker ended; keep its ledger rows (even when it crashed)."""
    from tests.reliability import ledger

    rows = getattr(node, "workeroutput", {}).get("reliability_ledger", [])
    ledger.ENTRIES.extend(ledger.Entry(**row) for row in rows)


def pytest_terminal_summary(terminalreporter):
    """The reliability ledger (scenario, runs, faults, rows lost/duplicated, crashes, time), when any ran."""
    from tests.reliability import ledger

    if ledger.ENTRIES:
        terminalreporter.section("reliability ledger")
        for line in ledger.table():
            terminalreporter.write_line(line)


def pytest_addoption(parser):
    parser.addoption(
        "--reverse-modules",
        action="store_true",
        help="run test modules in reverse order (tests inside a module keep theirs): shows order independence",
    )


# The longest modules, longest first (measured: README "Time"). `make test` runs two xdist
# workers, one module per worker at a time (`--dist loadscope --no-loadscope-reorder`: xdist's
# default reorders modules by their number of tests, which ignored this order); a worker takes
# the next module in this order when its own is nearly done, so the long ones start first and
# the many short ones fill in beside them (longest-processing-time-first scheduling).
LONGEST_MODULES = (
    "tests.integration.test_training_inference",
    "tests.integration.test_serving",
    "tests.integration.test_storage",
    "tests.integration.test_batch_pipeline",
    "tests.integration.test_overlap",
    "tests.integration.test_streaming_features",
    "tests.integration.test_incremental_silver",
)


#: Whether this run has integration tests (then every test shares the catalog-backed session).
NEEDS_CATALOG = pytest.StashKey[bool]()


def pytest_collection_finish(session):
    """A run with integration tests gives unit tests the catalog-backed session too: a plain
    session started first (e.g. an xdist worker that begins with unit modules) would own the JVM,
    launched without the catalog's jars, and no catalog-backed session could follow it."""
    session.config.stash[NEEDS_CATALOG] = any(item.get_closest_marker("integration") for item in session.items)


def pytest_collection_modifyitems(config, items):
    modules = list(dict.fromkeys(item.module.__name__ for item in items))
    if config.getoption("--reverse-modules"):
        modules.reverse()
    else:
        first = [m for m in LONGEST_MODULES if m in modules]
        modules = first + [m for m in modules if m not in first]
    rank = {name: n for n, name in enumerate(modules)}
    items.sort(key=lambda item: rank[item.module.__name__])  # stable: in-module order kept
