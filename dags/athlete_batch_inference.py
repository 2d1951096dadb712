"""When fresh features land (asset) or for a given date: score, then the weekly report on Sundays."""

from datetime import datetime

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import DAG, Asset

from athlete_platform.orchestration import (
    DEFAULT_ARGS,
    FEATURES_ASSET,
    PREDICTIONS_ASSET,
    RUN_END,
    RUN_START,
    last_week_end,
    submit_kwargs,
)

with DAG(
    dag_id="athlete_batch_inference",
    schedule=[Asset(FEATURES_ASSET)],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["athlete-platform", "inference-pipeline"],
) as dag:
    # Every athlete-day from the first to the last run date (one day for a dated run).
    score = SparkSubmitOperator(
        **submit_kwargs("predict", RUN_END, start=RUN_START, end=RUN_END),
        outlets=[Asset(PREDICTIONS_ASSET)],
    )
    # Returns the Sunday to report on (its XCom), or None to skip the report.
    week_end = ShortCircuitOperator(
        task_id="week_end",
        python_callable=last_week_end,
        op_args=[RUN_START, RUN_END],
        ignore_downstream_trigger_rules=True,
    )
    report = SparkSubmitOperator(**submit_kwargs("report", "{{ ti.xcom_pull(task_ids='week_end') }}"))
    done = EmptyOperator(task_id="done", trigger_rule="none_failed")
    score >> week_end >> report >> done
