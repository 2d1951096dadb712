"""When fresh features land (the asset the feature DAG publishes) or for a given date: embed the
new and changed session notes and the knowledge articles into feature_store.document_chunks and
refresh the LanceDB index (step `embed-documents`).

A DAG of its own, triggered by the features asset like inference, rather than a task inside the
feature DAG: the embedding model never holds up a day's features, a backfill of N days does not
embed N times (the step reads silver's change feed, so one run after the backfill embeds all
that changed), and a failure here retries without re-running the feature pipeline.
"""

from datetime import datetime

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset

from athlete_platform.orchestration import DEFAULT_ARGS, FEATURES_ASSET, RUN_END, submit_kwargs

with DAG(
    dag_id="athlete_documents",
    schedule=[Asset(FEATURES_ASSET)],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["athlete-platform", "documents"],
) as dag:
    SparkSubmitOperator(**submit_kwargs("embed-documents", RUN_END))
