"""The console command as a user runs it: a separate process per call."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.integration


CLI = [sys.executable, "-m", "athlete_platform.cli"]
JVM_NOTICE = "WARNING: Using incubator modules"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env or os.environ.copy(), timeout=timeout)


def assert_one_paragraph_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # The JVM's own start-up notice about the vector module is the only other line allowed.
    lines = [line for line in result.stderr.splitlines() if not line.startswith(JVM_NOTICE)]
    message = "\n".join(lines).strip()
    assert message.startswith("athlete-platform: "), message
    for needle in needles:
        assert needle in message


@pytest.fixture()
def own_lakehouse(tmp_path, settings) -> dict[str, str]:
    """Env for a second, private lakehouse (its own data folder and server port)."""
    env = os.environ.copy()
    env["ATHLETE_DATA_DIR"] = str(tmp_path / "lake")
    env["ATHLETE_CATALOG__PORT"] = str(free_port())
    yield env
    run_cli("catalog", "down", env=env)


def test_restarting_the_catalog_server_keeps_tables(own_lakehouse):
    env = own_lakehouse
    assert "started on" in run_cli("catalog", "up", env=env).stdout
    assert "already running" in run_cli("catalog", "up", env=env).stdout  # idempotent
    init = run_cli("init", env=env)
    assert init.returncode == 0, init.stderr
    for schema in ("bronze", "silver", "feature_store", "gold", "ml"):
        assert f"uc_athlete_data.{schema}" in init.stdout
    created = run_cli("sql", "CREATE TABLE uc_athlete_data.gold.restart_probe USING DELTA AS SELECT 7 AS k", env=env)
    assert created.returncode == 0, created.stderr

    assert "stopped" in run_cli("catalog", "down", env=env).stdout
    assert run_cli("catalog", "status", env=env).returncode == 1
    assert "started on" in run_cli("catalog", "up", env=env).stdout

    shown = run_cli("sql", "SELECT k FROM uc_athlete_data.gold.restart_probe", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "|7  |" in shown.stdout


def test_taken_port_is_a_clear_error(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        env = os.environ.copy()
        env["ATHLETE_DATA_DIR"] = str(tmp_path)
        env["ATHLETE_CATALOG__PORT"] = str(squatter.getsockname()[1])
        result = run_cli("catalog", "up", env=env)
    assert_one_paragraph_error(result, "already in use by another process", "ATHLETE_CATALOG__PORT")


def test_bad_config_value_is_a_clear_error():
    env = os.environ.copy()
    env["ATHLETE_SPARK__SHUFFLE_PARTITIONS"] = "zero"
    assert_one_paragraph_error(run_cli("catalog", "status", env=env), "spark.shuffle_partitions", "zero")


def test_missing_java_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(Path(sys.executable).parent)  # the venv only: no java on it
    env["ATHLETE_DATA_DIR"] = str(tmp_path)
    env["ATHLETE_CATALOG__PORT"] = str(free_port())
    assert_one_paragraph_error(run_cli("catalog", "up", env=env), "Java was not found", "JAVA_HOME")


def test_sql_against_missing_server_says_what_to_run(tmp_path):
    env = os.environ.copy()
    env["ATHLETE_DATA_DIR"] = str(tmp_path)
    env["ATHLETE_CATALOG__PORT"] = str(free_port())
    assert_one_paragraph_error(run_cli("sql", "SELECT 1", env=env), "athlete-platform catalog up")


def test_bad_sql_is_a_clear_error(catalog_server):
    result = run_cli("sql", "SELECT * FROM uc_athlete_data.gold.no_such_table")
    assert_one_paragraph_error(result, "The query failed", "no_such_table")


def test_mlflow_ui_serves_the_platform_tracking_store(settings):
    """`make mlflow-ui` = `athlete-platform mlflow-ui`: a real MLflow server over data_dir/mlflow."""
    import time
    import urllib.request

    port = free_port()
    server = subprocess.Popen(
        [*CLI, "mlflow-ui", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    status = response.status
                    break
            except OSError:
                time.sleep(1)
        assert status == 200, server.stdout.read().decode()[-2000:] if server.poll() is not None else "no answer"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5") as r:
            assert r.status == 200
    finally:
        import psutil

        tree = [server.pid, *(child.pid for child in psutil.Process(server.pid).children(recursive=True))]
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert (settings.mlflow_path / "mlflow.db").exists()
