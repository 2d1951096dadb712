"""A real Airflow 3 for tests: a temporary AIRFLOW_HOME with its SQLite metadata DB, and,
when a test needs the scheduler (backfills, asset-triggered runs), an api-server and a
scheduler with the LocalExecutor, one task at a time.

No dag-processor: the DAGs are serialized once with `airflow dags reserialize`, which is
what the scheduler reads. Test code only *reads* the metadata DB (run states), except for
`hold_schedule`, documented there.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

HOME = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")


def airflow_env(airflow_home: Path, api_port: int) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(HOME / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # The scheduler, api-server and CLI share one SQLite file: wait for its write lock
            # (up to 60 s) instead of failing with "database is locked".
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db?timeout=60",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "1",  # one Spark job at a time on a 2-core machine
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            # Pick up finished tasks and start the next one within about a second.
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            # The task supervisor notices its task's exit at its next heartbeat (default 5 s).
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW_CONN_ATHLETE_SPARK": json.dumps({"conn_type": "spark", "host": "local[2]"}),
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env


def airflow(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    """Run an `airflow` CLI command; fail with its output when it fails."""
    done = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"airflow {' '.join(args)}:\n{output[-4000:]}"
    return output


def dags_test(env: dict[str, str], dag_id: str, day) -> None:
    """`airflow dags test <dag_id> <day>`: one run in-process, no scheduler; it must succeed."""
    output = airflow(env, "dags", "test", dag_id, str(day))
    assert "state=success" in output.replace("state=DagRunState.SUCCESS", "state=success"), output[-4000:]


def prepare_home(env: dict[str, str]) -> None:
    airflow(env, "db", "migrate")
    airflow(env, "dags", "reserialize")


class AirflowServices:
    """api-server + scheduler over one AIRFLOW_HOME, stopped with their process groups."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.home = Path(env["AIRFLOW_HOME"])
        self.port = int(env["AIRFLOW__API__PORT"])
        self.processes: list[subprocess.Popen] = []

    def start(self, timeout_s: float = 180) -> None:
        """The API server first, then (once it answers) the scheduler: a task the scheduler
        started earlier failed to reach the API server ("connection refused") and waited out
        its retry delay, minutes of a test."""
        self._spawn("api-server")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/monitor/health", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                    self.stop()
                    raise AssertionError(f"Airflow did not start:\n{self.logs()}") from None
                time.sleep(1)
        self._spawn("scheduler")

    def _spawn(self, component: str) -> None:
        log = open(self.home / f"{component}.log", "wb")  # noqa: SIM115 (lives as long as the process)
        self.processes.append(
            subprocess.Popen(
                [AIRFLOW, component], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.processes.clear()

    def logs(self, tail_chars: int = 3000) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-tail_chars:]}" for path in self.home.glob("*.log")
        )

    # --- reading the metadata DB ---

    def _query(self, sql: str, *params) -> list[tuple]:
        with closing(sqlite3.connect(self.home / "airflow.db", timeout=30)) as db:
            return db.execute(sql, params).fetchall()

    def runs(self, dag_id: str) -> list[tuple[str, str, str | None, str]]:
        """(run_type, state, logical date, run_id) of every run of `dag_id`, oldest first."""
        return self._query(
            "SELECT run_type, state, logical_date, run_id FROM dag_run WHERE dag_id = ? ORDER BY id", dag_id
        )

    def wait_for(self, predicate, what: str, timeout_s: float = 1200) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.logs()}"
            time.sleep(3)

    def hold_schedule(self, dag_id: str) -> None:
        """Keep the scheduler from creating `dag_id`'s next *scheduled* run once it is unpaused.

        A paused DAG's backfill runs never start, and an unpaused daily DAG with catchup=False
        is immediately due for yesterday's interval, which would run the pipeline for today's
        calendar date on test data. Clearing the next-run fields (as `airflow dags reserialize`
        would set them) leaves backfills and asset-triggered runs untouched.
        """
        with closing(sqlite3.connect(self.home / "airflow.db", timeout=30)) as db:
            db.execute(
                "UPDATE dag SET next_dagrun = NULL, next_dagrun_create_after = NULL, "
                "next_dagrun_data_interval_start = NULL, next_dagrun_data_interval_end = NULL WHERE dag_id = ?",
                (dag_id,),
            )
            db.commit()
