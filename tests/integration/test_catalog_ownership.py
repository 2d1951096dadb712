"""Issue 10 item 7: two lakehouses' catalog servers on one machine; a job pointed at the other
one's port must refuse (not ingest into it), and `catalog status` must name the pid that really
answers on the port. Real servers on free 127.0.0.1 ports, real CLI processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.test_cli import assert_one_paragraph_error, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture()
def two_lakehouses(tmp_path):
    envs = []
    for name in ("ours", "theirs"):
        env = os.environ.copy()
        env["ATHLETE_DATA_DIR"] = str(tmp_path / name)
        env["ATHLETE_CATALOG__PORT"] = str(free_port())
        envs.append(env)
    try:
        for env in envs:
            started = run_cli("catalog", "up", env=env, timeout=120)
            assert "started on" in started.stdout, started.stderr
        yield envs
    finally:
        for env in envs:
            run_cli("catalog", "down", env=env, timeout=120)


def _pid(env: dict[str, str]) -> str:
    return (Path(env["ATHLETE_DATA_DIR"]) / "catalog" / "server.pid").read_text().strip()


def test_a_job_pointed_at_another_lakehouses_server_refuses(two_lakehouses):
    ours, theirs = two_lakehouses
    wrong = {**ours, "ATHLETE_CATALOG__PORT": theirs["ATHLETE_CATALOG__PORT"]}

    status = run_cli("catalog", "status", env=wrong)
    assert status.returncode == 1
    assert f"pid {_pid(theirs)}" in status.stdout and theirs["ATHLETE_DATA_DIR"] in status.stdout
    assert f"pid {_pid(ours)}" not in status.stdout

    ingest = run_cli("ingest", "--run-date", "2024-01-10", env=wrong)
    assert_one_paragraph_error(ingest, "was not started for this data folder", f"pid {_pid(theirs)}")
    assert not (Path(theirs["ATHLETE_DATA_DIR"]) / "warehouse").exists()  # nothing written there

    # `catalog down` with the wrong port stops nobody; our own status still names our pid.
    assert "not running" in run_cli("catalog", "down", env=wrong).stdout
    assert run_cli("catalog", "status", env=theirs).returncode == 0
    own = run_cli("catalog", "status", env=ours)
    assert own.returncode == 0 and f"pid {_pid(ours)}" in own.stdout
    # A second server for our data folder on another port would fight over Derby's lock.
    again = run_cli("catalog", "up", env={**ours, "ATHLETE_CATALOG__PORT": str(free_port())})
    assert_one_paragraph_error(again, f"already runs as pid {_pid(ours)}")
