"""When fresh features land (asset) or for a given date: score, then the weekly report on Sundays."""

from datetime import datetime

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import DAG, Asset

from athlete_platform.orchestration import DEFAULT_ARGS, FEATURES_ASSET, PREDICTIONS_ASSET, RUN_DATE, submit_kwargs


def _is_week_end(run_date: str) -> bool:
    return datetime.fromisoformat(run_date).weekday() == 6


with DAG(
    dag_id="athlete_batch_inference",
    schedule=[Asset(FEATURES_ASSET)],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["athlete-platform", "inference-pipeline"],
) as dag:
    score = SparkSubmitOperator(
        **submit_kwargs("batch_inference", ["--as-of", RUN_DATE]), outlets=[Asset(PREDICTIONS_ASSET)]
    )
    week_end = ShortCircuitOperator(
        task_id="is_week_end", python_callable=_is_week_end, op_args=[RUN_DATE], ignore_downstream_trigger_rules=True
    )
    report = SparkSubmitOperator(**submit_kwargs("weekly_report", ["--run-date", RUN_DATE]))
    done = EmptyOperator(task_id="done", trigger_rule="none_failed")
    score >> week_end >> report >> done
