"""Daily, after the other DAGs: OPTIMIZE + VACUUM every table, keeping referenced versions.

Runs at 03:00 UTC, when the day's feature run (00:00) and the inference it triggers are done;
VACUUM keeps a week of history anyway, so an overlap with a late run is harmless.
"""

from datetime import datetime

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from athlete_platform.orchestration import DEFAULT_ARGS, submit_kwargs

with DAG(
    dag_id="athlete_table_maintenance",
    # Data-interval semantics: the run for day D starts at 03:00 on D + 1, and ds = D.
    schedule=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["athlete-platform", "maintenance"],
) as dag:
    SparkSubmitOperator(**submit_kwargs("maintain", "{{ ds }}"))
