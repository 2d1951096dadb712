"""Issue 10 item 10: the data folder moves (the project folder renamed or copied elsewhere) and
everything keeps working from the new place, reading nothing from the old one. Real catalog
server, real CLI processes: land + ingest, stop, move, start, ingest and query again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import HOME, free_port
from tests.integration.test_cli import run_cli

# Five short-lived Spark and catalog processes: part of `make reliability`, not `make test`.
pytestmark = [pytest.mark.integration, pytest.mark.reliability_slow]

RUN_DATE = "2024-04-29"  # the last day of conf/test.yaml's sample data


def _env(data: Path, port: int) -> dict[str, str]:
    env = os.environ.copy()
    env["ATHLETE_CONF_FILE"] = str(HOME / "conf" / "test.yaml")
    env["ATHLETE_DATA_DIR"] = str(data)
    env["ATHLETE_CATALOG__PORT"] = str(port)
    env.pop("ATHLETE_CATALOG__SCHEMA_PREFIX", None)
    return env


def _ok(*args: str, env: dict[str, str]) -> str:
    result = run_cli(*args, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_a_moved_data_folder_keeps_its_tables_and_reads_no_file_twice(tmp_path):
    port = free_port()
    old, new = tmp_path / "old place" / "data", tmp_path / "new place" / "data"
    env = _env(old, port)
    try:
        _ok("catalog", "up", env=env)
        _ok("generate", env=env)
        first = _ok("ingest", "--run-date", RUN_DATE, env=env)
    finally:
        run_cli("catalog", "down", env=env)
    assert "files=0," not in first and "files=" in first, first

    new.parent.mkdir()
    old.rename(new)
    old.parent.rename(tmp_path / "gone")  # a read of the old place fails instead of passing silently
    env = _env(new, port)
    try:
        _ok("catalog", "up", env=env)
        again = _ok("ingest", "--run-date", RUN_DATE, env=env)
        query = (
            "SELECT (SELECT count(*) FROM uc_athlete_data.bronze.landing_files) AS files, "
            "(SELECT count(DISTINCT _source_file) FROM uc_athlete_data.bronze.sessions_raw) AS sources, "
            "(SELECT count(*) FROM uc_athlete_data.bronze.landing_files WHERE startswith(path, "
            f"'{new / 'landing'}/')) AS files_here"
        )
        table = _ok("sql", query, env=env)  # it reads every file from the new place: the old one is gone
    finally:
        run_cli("catalog", "down", env=env)
    # Nothing was re-read: the landing manifests follow the folder, so every file is known.
    assert "files=0," in again, again
    rows = [line for line in table.splitlines() if line.startswith("|")]
    files, sources, files_here = (int(v) for v in rows[1].strip("| ").split("|"))
    assert files > 0 and files == files_here and sources == files
