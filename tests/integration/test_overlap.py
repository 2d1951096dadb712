"""Issue 10 items 2 and 8 with real processes: an overlapping run of a step stops with one
paragraph naming the holder; a real Delta commit conflict inside `run_step` is retried to
success or reported in one paragraph; the catalog server killed mid-job says "catalog server
down" and a re-run after `catalog up` converges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import date
from pathlib import Path

import pytest

from athlete_platform import steps
from athlete_platform.errors import ConcurrencyError
from athlete_platform.lakehouse.concurrency import lock_path
from athlete_platform.lakehouse.step import Step
from tests.conftest import free_port
from tests.integration.test_cli import CLI, run_cli
from tests.reliability import ledger
from tests.unit.test_concurrency import hold_lock

pytestmark = pytest.mark.integration

RUN_DATE = "2024-04-29"  # the last day of conf/test.yaml's sample data


def final_paragraph(result: subprocess.CompletedProcess | tuple[int, str], code: int, *needles: str) -> str:
    """The command failed with `code`, no Python or Java trace, and ends with one paragraph."""
    returncode, stderr = result if isinstance(result, tuple) else (result.returncode, result.stderr)
    assert returncode == code, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "\tat " not in stderr  # no JVM stack frames either
    message = stderr.strip().split("\n\n")[-1].strip()
    message = message[message.index("athlete-platform: ") :]
    for needle in needles:
        assert needle in message, message
    return message


@pytest.fixture(scope="module")
def own_lakehouse(tmp_path_factory):
    """A private lakehouse with its own server and the test sample data landed."""
    env = os.environ.copy()
    env["ATHLETE_CONF_FILE"] = str(Path(__file__).resolve().parents[2] / "conf" / "test.yaml")
    env["ATHLETE_DATA_DIR"] = str(tmp_path_factory.mktemp("overlap"))
    env["ATHLETE_CATALOG__PORT"] = str(free_port())
    env.pop("ATHLETE_CATALOG__SCHEMA_PREFIX", None)
    try:
        assert "started on" in run_cli("catalog", "up", env=env).stdout
        for command in (["init"], ["generate"]):
            result = run_cli(*command, env=env)
            assert result.returncode == 0, result.stderr[-2000:]
        yield env
    finally:
        run_cli("catalog", "down", env=env)


@pytest.mark.reliability
def test_overlapping_run_of_the_same_step_stops_naming_the_holder(own_lakehouse):
    data = Path(own_lakehouse["ATHLETE_DATA_DIR"])
    holder = hold_lock(data, 600, step="ingest")  # a real process inside `ingest` for 2024-06-30
    try:
        started = time.monotonic()
        result = run_cli("ingest", "--run-date", "2024-06-30", env={**own_lakehouse, "ATHLETE_RUNS__LOCK_WAIT_S": "2"})
        message = final_paragraph(result, 3, "Another run holds step ingest for 2024-06-30", f"pid {holder.pid}")
        assert "run id holder-run" in message and "after waiting 2 s" in message
        assert time.monotonic() - started < 120
        assert not (data / "warehouse" / "bronze.db" / "sessions_raw").exists()  # it wrote nothing
    finally:
        holder.kill()
        holder.wait()


class ConflictProbe(Step):
    """A step whose commit meets a real concurrent writer (a DELETE on the table it read) in its
    first `conflicts` runs, as a second step or run date writing the same table would."""

    path = ""
    conflicts = 0
    runs = 0
    deleted = 0  # ids deleted so far: each concurrent DELETE removes a row that still exists

    def extract(self, ctx, params):
        return ctx

    def transform(self, inputs):
        return inputs

    def load(self, ctx, outputs):
        spark = ctx.spark
        jvm = spark._jvm
        ConflictProbe.runs += 1
        delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, ConflictProbe.path)
        txn = delta_log.startTransaction()
        txn.filterFiles()  # this transaction read the whole table
        if ConflictProbe.runs <= ConflictProbe.conflicts:
            ConflictProbe.deleted += 1
            spark.sql(f"DELETE FROM delta.`{ConflictProbe.path}` WHERE id = {ConflictProbe.deleted}")
        nothing = getattr(getattr(jvm.scala.collection.immutable, "Nil$"), "MODULE$")
        txn.commit(
            nothing, getattr(getattr(jvm.org.apache.spark.sql.delta.DeltaOperations, "ManualUpdate$"), "MODULE$")
        )
        return "committed"


PROBE = steps.StepSpec("conflict_probe", "conflict_probe", "test", f"{__name__}:ConflictProbe")


def test_real_delta_conflicts_in_run_step_are_retried_then_reported(spark, base_settings, names, tmp_path):
    from athlete_platform.lakehouse.step import StepContext

    ConflictProbe.path = str(tmp_path / "probe")
    spark.range(100).write.format("delta").save(ConflictProbe.path)
    ctx = StepContext(base_settings, spark, names, date(2024, 6, 30), run_id="probe")

    ConflictProbe.runs, ConflictProbe.conflicts = 0, 1
    assert steps.run_step(PROBE, ctx) == "committed"
    assert ConflictProbe.runs == 2  # one real ConcurrentDeleteReadException, then success

    retries = base_settings.runs.conflict_retries
    ConflictProbe.runs, ConflictProbe.conflicts = 0, 99
    with pytest.raises(ConcurrencyError) as stopped:
        steps.run_step(PROBE, ctx)
    message = str(stopped.value)
    assert ConflictProbe.runs == retries + 1
    assert "\n" not in message and "ConcurrentDeleteReadException" in message
    assert message.startswith(f"step conflict_probe for 2024-06-30 lost {retries + 1} tries")


@pytest.mark.reliability
def test_catalog_server_killed_mid_job_says_so_and_a_rerun_converges(own_lakehouse):
    with ledger.scenario("catalog server killed mid-ingest") as entry:
        entry.runs, entry.faults = 2, 1
        catalog_killed_mid_job(own_lakehouse)


def catalog_killed_mid_job(own_lakehouse) -> None:
    env, data = own_lakehouse, Path(own_lakehouse["ATHLETE_DATA_DIR"])
    job = subprocess.Popen([*CLI, "ingest", "--run-date", RUN_DATE], env=env, stderr=subprocess.PIPE, text=True)
    lock = lock_path(data, "ingest", date.fromisoformat(RUN_DATE))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and job.poll() is None:  # the step has started: kill the server
        try:
            if json.loads(lock.read_text() or "{}").get("pid") == job.pid:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    assert job.poll() is None, "the job ended before the catalog server could be killed"
    os.kill(int((data / "catalog" / "server.pid").read_text()), signal.SIGKILL)
    _, stderr = job.communicate(timeout=600)
    final_paragraph((job.returncode, stderr), 2, "catalog server down", "athlete-platform catalog up")

    assert "started on" in run_cli("catalog", "up", env=env).stdout
    rerun = run_cli("ingest", "--run-date", RUN_DATE, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    counted = run_cli("sql", "SELECT count(*) AS n FROM uc_athlete_data.bronze.sessions_raw", env=env)
    assert counted.returncode == 0 and "|0  |" not in counted.stdout, counted.stderr[-2000:]
