"""Weekly: train the time estimator on everything up to {{ ds }}; promotion gate inside."""

from datetime import datetime

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset
from airflow.timetables.interval import CronDataIntervalTimetable

from athlete_platform.orchestration import DEFAULT_ARGS, MODEL_ASSET, submit_kwargs

with DAG(
    dag_id="athlete_training_pipeline",
    # Data-interval semantics: the run for day D starts once D is over, and ds = D.
    schedule=CronDataIntervalTimetable("@weekly", timezone="UTC"),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["athlete-platform", "training-pipeline"],
) as dag:
    SparkSubmitOperator(**submit_kwargs("train", "{{ ds }}"), outlets=[Asset(MODEL_ASSET)])
