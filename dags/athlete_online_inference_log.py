"""Hourly: the serving API's inference log files -> gold.online_inference_log.

The API appends one JSON line per prediction to a file per process and hour; a file is moved
aside once its hour is over and its lines are in Delta, so each run reads about an hour of log.
Re-running an hour is harmless (rows are inserted by request id only when missing).
"""

from datetime import datetime

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from athlete_platform.orchestration import DEFAULT_ARGS, submit_kwargs

with DAG(
    dag_id="athlete_online_inference_log",
    # A few minutes past the hour, so the files of the hour just ended are closed.
    schedule=CronDataIntervalTimetable("5 * * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["athlete-platform", "serving"],
) as dag:
    SparkSubmitOperator(**submit_kwargs("flush-inference-log", "{{ ds }}"))
