"""Weekly, and whenever monitoring asks for it (the retrain asset): train the time estimator on
everything up to the run date, then the live pace coach (whose gate compares it with the time
estimator champion, so it runs second); promotion gates inside. A scheduled or manual run trains
up to {{ ds }}; an asset-triggered run up to the last day of the monitored week it names."""

from datetime import datetime

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.interval import CronDataIntervalTimetable

from athlete_platform.orchestration import (
    DEFAULT_ARGS,
    LIVE_MODEL_ASSET,
    MODEL_ASSET,
    RETRAIN_ASSET,
    RUN_END,
    submit_kwargs,
)

with DAG(
    dag_id="athlete_training_pipeline",
    # Data-interval semantics: the run for day D starts once D is over, and ds = D.
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable("@weekly", timezone="UTC"), assets=Asset(RETRAIN_ASSET)
    ),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["athlete-platform", "training-pipeline"],
) as dag:
    time_estimator = SparkSubmitOperator(**submit_kwargs("train", RUN_END), outlets=[Asset(MODEL_ASSET)])
    live_pace_coach = SparkSubmitOperator(**submit_kwargs("train-live", RUN_END), outlets=[Asset(LIVE_MODEL_ASSET)])
    time_estimator >> live_pace_coach
