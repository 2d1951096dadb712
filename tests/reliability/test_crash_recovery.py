"""kill -9 sweeps: each batch step is killed at many points, then run again; the tables must be
readable after every kill and, after the re-run, equal an uninterrupted run's (full content).

Each step runs as a real `athlete-platform` process (its own JVM) against the suite's catalog
server. Kill points are taken by time (fractions of an uninterrupted run) and around commits
(the moment the k-th new Delta commit of an output table appears). Between points the step's
output tables are put back with `RESTORE TABLE … TO VERSION AS OF` (tables the step created
are dropped), so every point starts from the same state.

Everything here is `reliability_slow` (only `make reliability`: `make test` keeps the catalog
server killed mid-job of `tests/integration/test_overlap.py`): one kill point of silver on the
small sample, then the sweeps of ≥ 10 points per step, killed training and overlapping runs on a sample big
enough to train (`reliability_slow`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from athlete_platform.config import SampleDataSettings
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.tables import FEATURE_PIPELINE_TABLES, Table
from tests.conftest import generate_sample
from tests.reliability import ledger

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

CLI = str(Path(sys.executable).with_name("athlete-platform"))
# Columns that say which run wrote a row and when: a re-run leaves an unchanged row as the killed
# run wrote it (re-runs write nothing that did not change), so they are not compared.
LINEAGE = {"_run_id", "computed_at", "_ingested_at", "rejected_at", "run_id", "scored_at"}
OUTPUTS: dict[str, tuple[Table, ...]] = {
    "ingest": (tables.SESSIONS_RAW, tables.LANDING_FILES, tables.DEVICE_FILES, tables.QUARANTINE),
    "silver": (tables.ATHLETES, tables.ATHLETE_PROFILE_HISTORY, tables.SESSIONS, tables.RACES, tables.QUARANTINE),
    "features": (tables.ATHLETE_ROLLING_FEATURES,),
    "predict": (tables.ATHLETE_PREDICTIONS,),
    "report": (tables.ATHLETE_WEEKLY_REPORT,),
    "monitor": (tables.MODEL_MONITORING,),
    "train": (),  # writes to MLflow, not to tables: see the training test
}
SWEEP_POINTS = 10


def snapshot(spark, table: str) -> list[tuple]:
    spark.sql(f"REFRESH TABLE {table}")
    frame = spark.table(table)
    return sorted(hashable(r) for r in frame.select(*[c for c in frame.columns if c not in LINEAGE]).collect())


def hashable(value):
    """A row as nested tuples (arrays, e.g. the report's flags, come back as lists)."""
    if isinstance(value, list | tuple):
        return tuple(hashable(v) for v in value)
    return value


@dataclass
class Crashes:
    """Runs one step as a process, kills it, restores its outputs; compares with a reference run."""

    spark: object
    names: object
    step: str
    run_date: date

    def tables(self) -> list[str]:
        return [self.names(t) for t in OUTPUTS[self.step]]

    def versions(self) -> dict[str, int | None]:
        out = {}
        for table in self.tables():
            if self.spark.catalog.tableExists(table):
                out[table] = self.spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").first().version
            else:
                out[table] = None
        return out

    def restore(self, versions: dict[str, int | None]) -> None:
        for table, version in versions.items():
            if version is None:
                self.spark.sql(f"DROP TABLE IF EXISTS {table}")
            elif self.spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").first().version != version:
                self.spark.sql(f"RESTORE TABLE {table} TO VERSION AS OF {version}")

    def commit_files(self) -> int:
        """Delta commits present now across the step's output tables (by their _delta_log)."""
        total = 0
        for table in self.tables():
            if self.spark.catalog.tableExists(table):
                location = self.spark.sql(f"DESCRIBE DETAIL {table}").first().location
                log = Path(location.removeprefix("file:")) / "_delta_log"
                total += len(list(log.glob("*.json")))
        return total

    def command(self) -> list[str]:
        return [CLI, self.step, "--run-date", self.run_date.isoformat()]

    def run(self) -> subprocess.CompletedProcess:
        done = subprocess.run(self.command(), capture_output=True, text=True, timeout=900, env=os.environ.copy())
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    def run_and_kill(self, after_s: float | None = None, after_commits: int | None = None) -> bool:
        """Start the step; SIGKILL its whole process group at the point given. True if killed."""
        before = self.commit_files() if after_commits is not None else 0
        process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=os.environ.copy(),
        )
        started = time.monotonic()
        while process.poll() is None:
            elapsed = time.monotonic() - started
            if after_s is not None and elapsed >= after_s:
                break
            if after_commits is not None and self.commit_files() - before >= after_commits:
                break
            time.sleep(0.05)
        killed = process.poll() is None
        if killed:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        return killed


def landed(spark, module_lake, sample: SampleDataSettings | None = None):
    """The module's tables dropped and a sample landed, nothing run yet (each test runs its predecessors)."""
    names = module_lake.names
    settings = module_lake.settings
    if sample is not None:
        settings = settings.model_copy(update={"sample_data": sample})
    for table in (
        *FEATURE_PIPELINE_TABLES,
        tables.ATHLETE_PREDICTIONS,
        tables.ATHLETE_WEEKLY_REPORT,
        tables.MODEL_MONITORING,
    ):
        spark.sql(f"DROP TABLE IF EXISTS {names(table)}")
    shutil.rmtree(settings.landing_path, ignore_errors=True)
    shutil.rmtree(settings.mlflow_path, ignore_errors=True)
    generate_sample(settings)
    return dataclasses.replace(module_lake, settings=settings)


@pytest.fixture(scope="module")
def small_lake(spark, module_lake):
    """conf/test.yaml's small sample: for the one kill point `make test` runs."""
    return landed(spark, module_lake)


@pytest.fixture(scope="module")
def lake(spark, module_lake, small_lake):
    """A sample with enough races to train (after the small one: the tests using it run last)."""
    sample = SampleDataSettings(seed=5, n_athletes=16, n_days=240, start_date=date(2024, 1, 1))
    return landed(spark, module_lake, sample)


def kill_points(crashes: Crashes, reference_s: float, reference_commits: int, sweep: bool) -> list[dict]:
    """Where to kill: right after each of up to half the points' commits, the rest by time.

    The points are distinct: a step that makes fewer commits than half the points (silver's
    incremental run makes two) gets more points by time instead of the same commit point twice."""
    if not sweep:
        # Two points: on a loaded machine the re-run can be faster than the reference run, and a
        # single point late in it may find the step already done (nothing tested).
        return [{"after_s": reference_s * 0.6}, {"after_s": reference_s * 0.3}]
    half = SWEEP_POINTS // 2
    commits = max(1, reference_commits)
    by_commit = [{"after_commits": n} for n in sorted({1 + (k * commits) // half for k in range(half)})]
    n_by_time = SWEEP_POINTS - len(by_commit)
    by_time = [{"after_s": reference_s * k / (n_by_time + 1)} for k in range(1, n_by_time + 1)]
    return by_time + by_commit


def train_a_champion(lake, run_date: date) -> None:
    """Train a small model and make it the champion whether or not it passed the gate: a
    30-tree model on this sample need not beat the baselines, and the predict and report sweeps
    test crashes of scoring, not the gate (which has its own tests)."""
    from mlflow import MlflowClient

    from athlete_platform.lakehouse.models import CHAMPION

    trained = lake.run("train", run_date, "crash-setup", xgb_params={"n_estimators": 30})
    if not trained.promoted:
        MlflowClient().set_registered_model_alias(trained.model_name, CHAMPION, trained.version)


def run_inputs_of(lake, step: str, run_date: date) -> None:
    """Every step before `step`, uninterrupted, in process (and a champion before scoring)."""
    for earlier in TABLE_STEPS[: TABLE_STEPS.index(step)]:
        if earlier == "predict":
            train_a_champion(lake, run_date)
        lake.run(earlier, run_date, "crash-setup")
    if step == "predict":
        train_a_champion(lake, run_date)


def sweep_step(spark, lake: object, step: str, sweep: bool, history: bool = False) -> None:
    """Kill `step` at many points; after each, a re-run must equal the uninterrupted run.

    With `history`, silver has already run for the day before, so the step swept is an
    incremental run (only the records newly due or landed are judged), not a first build."""
    run_date = lake.settings.sample_data.last_date
    run_inputs_of(lake, step, run_date)
    if history:
        lake.run(step, run_date - timedelta(days=1), "crash-history")
    crashes = Crashes(spark, lake.names, step, run_date)
    start = crashes.versions()
    commits_before = crashes.commit_files()
    began = time.monotonic()
    done = crashes.run()
    reference_s = time.monotonic() - began
    if history:
        assert "silver: incremental" in done.stderr, "the run swept was not incremental"
    reference_commits = crashes.commit_files() - commits_before
    reference = {t: snapshot(spark, t) for t in crashes.tables()}

    name = f"kill -9 {step}" + (" with history" if history else "") + (" (sweep)" if sweep else "")
    with ledger.scenario(name) as entry:
        entry.runs = 1
        for point in kill_points(crashes, reference_s, reference_commits, sweep):
            crashes.restore(start)
            killed = crashes.run_and_kill(**point)
            entry.runs += 1
            entry.faults += int(killed)
            for table in crashes.tables():  # readable after the kill
                if spark.catalog.tableExists(table):
                    snapshot(spark, table)
            crashes.run()
            entry.runs += 1
            for table in crashes.tables():
                after = snapshot(spark, table)
                entry.lost += len(set(reference[table]) - set(after))
                entry.duplicated += max(0, len(after) - len(set(after)))
                assert after == reference[table], (step, point, table)
        assert entry.faults >= 1, f"{step} finished before every kill point: nothing was tested"


TABLE_STEPS = [step for step, outputs in OUTPUTS.items() if outputs]


@pytest.mark.reliability_slow
def test_a_killed_silver_run_reruns_to_the_uninterrupted_result(spark, small_lake):
    sweep_step(spark, small_lake, "silver", sweep=False)


@pytest.mark.reliability_slow
@pytest.mark.parametrize("step", TABLE_STEPS)
def test_kill_sweep_reruns_to_the_uninterrupted_result(spark, lake, step):
    sweep_step(spark, lake, step, sweep=True)


@pytest.mark.reliability_slow
def test_kill_sweep_of_an_incremental_silver_run_reruns_to_the_uninterrupted_result(spark, lake):
    """Silver's incremental path (a day after the last run: its scope, the stored sessions around
    it, the recorded bronze version) killed at every point converges like a first build does."""
    sweep_step(spark, lake, "silver", sweep=True, history=True)


def champion_loads(lake) -> bool | None:
    """None when there is no champion; else whether its model loads in full (files, signature)."""
    import mlflow

    from athlete_platform.lakehouse.models import CHAMPION, configure_mlflow, resolve_alias

    configure_mlflow(lake.settings)
    name = lake.names(tables.TIME_ESTIMATOR)
    ref = resolve_alias(name, CHAMPION)
    if ref is None:
        return None
    model = mlflow.pyfunc.load_model(f"models:/{name}/{ref.version}")
    return model.metadata.get_input_schema() is not None


@pytest.mark.reliability_slow
@pytest.mark.parametrize("points", [SWEEP_POINTS])
def test_a_killed_training_never_leaves_a_half_registered_champion(spark, lake, points):
    """Training writes to the MLflow store (SQLite + artifact folder) from its own process: killed
    at any point, the champion alias is either unchanged or names a version that loads whole;
    a re-run trains and registers normally."""
    run_date = lake.settings.sample_data.last_date
    for earlier in ("ingest", "silver", "features"):
        lake.run(earlier, run_date, "crash-setup")
    crashes = Crashes(spark, lake.names, "train", run_date)
    began = time.monotonic()
    crashes.run()
    reference_s = time.monotonic() - began
    with ledger.scenario("kill -9 train" + (" (sweep)" if points > 1 else "")) as entry:
        entry.runs = 1
        for k in range(1, points + 1):
            killed = crashes.run_and_kill(after_s=reference_s * k / (points + 1) if points > 1 else reference_s * 0.8)
            entry.runs += 1
            entry.faults += int(killed)
            assert champion_loads(lake) in (None, True)
        crashes.run()
        entry.runs += 1
        assert champion_loads(lake) is True


@pytest.mark.reliability_slow
@pytest.mark.parametrize("step", TABLE_STEPS)
def test_overlapping_runs_of_a_step_lose_and_duplicate_nothing(spark, lake, step):
    """Two processes start the same step for the same day at once: the concurrency rule lets
    one run and stops the other with one line (exit 3); the tables equal a single run's."""
    run_date = lake.settings.sample_data.last_date
    run_inputs_of(lake, step, run_date)
    crashes = Crashes(spark, lake.names, step, run_date)
    # From empty outputs, so the runs have real work to overlap on (a re-run for a day already
    # done writes nothing): bronze re-reads every landed file, silver and features rebuild.
    start = dict.fromkeys(crashes.tables())
    crashes.restore(start)
    crashes.run()
    reference = {t: snapshot(spark, t) for t in crashes.tables()}
    assert any(reference.values()), f"{step} wrote nothing: the overlap would test nothing"
    with ledger.scenario(f"overlapping {step} runs") as entry:
        crashes.restore(start)
        both = [subprocess.Popen(crashes.command(), stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(p.wait(timeout=900), p.stderr.read()) for p in both]
        entry.runs, entry.faults = 3, 1
        codes = sorted(code for code, _ in results)
        assert codes in ([0, 0], [0, 3]), results
        for code, stderr in results:
            if code == 3:
                assert "Another run holds step" in stderr and "Traceback" not in stderr
        for table in crashes.tables():
            after = snapshot(spark, table)
            entry.lost += len(set(reference[table]) - set(after))
            entry.duplicated += len(after) - len(set(after))
            assert after == reference[table], table
