"""What the Airflow DAGs share: job arguments, assets, retry policy. No Airflow import here
beyond what the DAG files pass in, no I/O: DAG files import this at parse time.

The Spark connection (`athlete_spark` by default, env `ATHLETE_SPARK_CONN_ID`) chooses the
master: e.g. `AIRFLOW_CONN_ATHLETE_SPARK='{"conn_type": "spark", "host": "local[2]"}'` or
`{"conn_type": "spark", "host": "spark://127.0.0.1", "port": 7077}`.
"""

from __future__ import annotations

import os
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from athlete_platform import steps
from athlete_platform.config import SPARK_CONN_ENV, load_settings, project_home
from athlete_platform.lakehouse import submit, tables

if TYPE_CHECKING:
    from athlete_platform.config import Settings

SPARK_CONN_ID = os.environ.get(SPARK_CONN_ENV, "athlete_spark")
OWNER = "athlete-platform"

# Asset names are the tables' names as the table registry renders them for the configured
# catalog (conf file + ATHLETE_* overrides, read once; no Spark, no catalog call); the
# submitted drivers' JVM options come from the same settings.
_SETTINGS = load_settings()
_NAMES = tables.TableNames.from_settings(_SETTINGS.catalog)
FEATURES_ASSET = _NAMES(tables.ATHLETE_ROLLING_FEATURES)
MODEL_ASSET = _NAMES(tables.TIME_ESTIMATOR)
LIVE_MODEL_ASSET = _NAMES(tables.LIVE_PACE_COACH)
PREDICTIONS_ASSET = _NAMES(tables.ATHLETE_PREDICTIONS)
MONITORING_ASSET = _NAMES(tables.MODEL_MONITORING)
# Published by the monitoring DAG when a flag asks for retraining (extra: {"run_date": ...}); the
# training DAG runs on it as well as on its weekly schedule.
RETRAIN_ASSET = f"{MODEL_ASSET}.retrain_requests"

DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
    "execution_timeout": timedelta(hours=1),
}

# The run dates of an inference run. A scheduled, manual or `dags test` run has a logical
# date: it scores that day (ds). An asset-triggered run has none: it scores every run date the
# feature DAG published with the asset events it consumed. Several feature runs (a backfill,
# a catch-up) can land before inference starts; the scheduler then coalesces their events
# into one run, which scores the whole span from the earliest to the latest run date.
_PUBLISHED_RUN_DATES = "(triggering_asset_events.values() | list | last | map(attribute='extra.run_date') | list)"
RUN_START = f"{{{{ ds if dag_run.logical_date else {_PUBLISHED_RUN_DATES} | min }}}}"
RUN_END = f"{{{{ ds if dag_run.logical_date else {_PUBLISHED_RUN_DATES} | max }}}}"


def last_week_end(start: str, end: str) -> str | None:
    """The last Sunday (the end of an ISO week) from start to end (ISO dates), or None."""
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    sunday = last - timedelta(days=(last.weekday() + 1) % 7)
    return sunday.isoformat() if sunday >= first else None


def submit_kwargs(step: str, run_date: str, **params) -> dict:
    """Keyword arguments for a SparkSubmitOperator running the registered step `step`.

    The job script, its arguments and the task id all come from the step registry.
    """
    spec = steps.BY_NAME[step]
    home = project_home()
    conf_file = os.environ.get("ATHLETE_CONF_FILE")
    args = spec.job_args(run_date, **params) + (["--conf-file", conf_file] if conf_file else [])
    venv_bin = str(Path(sys.executable).parent)
    return {
        "task_id": spec.job,
        "conn_id": SPARK_CONN_ID,
        "application": str(home / "jobs" / f"{spec.job}.py"),
        "application_args": args,
        "jars": ",".join(str(p) for p in submit.driver_jars(home)),
        "driver_class_path": str(submit.driver_class_path(home)),
        "conf": {"spark.driver.extraJavaOptions": submit.driver_java_options(home, _SETTINGS.spark.java_options)},
        "name": f"athlete-platform-{spec.job}",
        # spark-submit and the workers' Python come from the project's virtualenv.
        "env_vars": {
            "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYSPARK_PYTHON": sys.executable,
        },
    }


def retrain_recommended(window_end: str, settings: Settings | None = None) -> bool:
    """Whether the monitoring row(s) of the window ending on `window_end` (ISO date) raised a flag.
    Read without Spark (delta-rs), so the Airflow worker can decide; no row: False."""
    from athlete_platform import read_table

    names = _NAMES if settings is None else tables.TableNames.from_settings(settings.catalog)
    rows = read_table(
        names(tables.MODEL_MONITORING),
        filters=[("window_end", "=", date.fromisoformat(window_end))],
        columns=["retrain_recommended"],
        settings=settings,
    )
    return any(rows.column("retrain_recommended").to_pylist())
