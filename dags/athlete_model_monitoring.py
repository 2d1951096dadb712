"""Weekly: monitor the champion time estimator over the week that just ended (input and prediction
drift, realised accuracy -> gold.model_monitoring); when a flag is raised, ask the training DAG to
retrain by publishing the retrain asset with that week's last day as the run date."""

from datetime import datetime

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow.timetables.interval import CronDataIntervalTimetable

from athlete_platform.orchestration import (
    DEFAULT_ARGS,
    MONITORING_ASSET,
    RETRAIN_ASSET,
    retrain_recommended,
    submit_kwargs,
)

# The data interval is a week from Sunday: its last day is ds + 6.
WEEK_LAST_DAY = "{{ macros.ds_add(ds, 6) }}"

with DAG(
    dag_id="athlete_model_monitoring",
    schedule=CronDataIntervalTimetable("@weekly", timezone="UTC"),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["athlete-platform", "monitoring"],
) as dag:
    monitor = SparkSubmitOperator(**submit_kwargs("monitor", WEEK_LAST_DAY), outlets=[Asset(MONITORING_ASSET)])

    @task(outlets=[Asset(RETRAIN_ASSET)])
    def request_retraining(window_end: str, *, outlet_events=None) -> str:
        """Publish the retrain asset when the week's row raised a flag; skipped (nothing published) otherwise."""
        if not retrain_recommended(window_end):
            raise AirflowSkipException(f"no monitoring flag for the week ending {window_end}: no retraining")
        outlet_events[Asset(RETRAIN_ASSET)].extra = {"run_date": window_end}
        return window_end

    monitor >> request_retraining(WEEK_LAST_DAY)
