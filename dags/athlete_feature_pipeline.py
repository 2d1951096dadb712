"""Daily: landing -> bronze -> silver -> features for {{ ds }}; publishes the features asset (which
triggers inference and the document embedding, `athlete_documents`), then materializes the online
store (after the publish, so a store that is down does not hold up inference)."""

from datetime import datetime

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset, task
from airflow.timetables.interval import CronDataIntervalTimetable

from athlete_platform.orchestration import DEFAULT_ARGS, FEATURES_ASSET, submit_kwargs

features = Asset(FEATURES_ASSET)

with DAG(
    dag_id="athlete_feature_pipeline",
    # Data-interval semantics: the run for day D starts once D is over, and ds = D.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2024, 1, 1),
    catchup=False,  # backfill explicitly: `airflow backfill create --dag-id ... --from-date ... --to-date ...`
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["athlete-platform", "feature-pipeline"],
) as dag:
    bronze = SparkSubmitOperator(**submit_kwargs("ingest", "{{ ds }}"))
    silver = SparkSubmitOperator(**submit_kwargs("silver", "{{ ds }}"))
    feature_job = SparkSubmitOperator(**submit_kwargs("features", "{{ ds }}"))
    materialize = SparkSubmitOperator(**submit_kwargs("materialize", "{{ ds }}"))

    @task(outlets=[features])
    def publish_features(*, outlet_events=None, ds=None):
        """Tell asset-triggered consumers which run date the fresh features are for."""
        outlet_events[features].extra = {"run_date": ds}

    bronze >> silver >> feature_job >> publish_features() >> materialize
