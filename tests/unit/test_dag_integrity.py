"""DAG integrity: every DAG imports without errors, has owners, retries, timeouts, tags."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
EXPECTED = {
    "athlete_feature_pipeline",
    "athlete_training_pipeline",
    "athlete_batch_inference",
    "athlete_table_maintenance",
    "athlete_online_inference_log",
    "athlete_documents",
    "athlete_model_monitoring",
}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    monkeypatch_module.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_every_dag_imports(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_policy(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.max_active_runs == 1
    assert "athlete-platform" in dag.tags
    assert dag.tasks, f"{dag_id} has no tasks: the checks below would pass on nothing"
    for task in dag.tasks:
        assert task.owner == "athlete-platform", task.task_id
        assert task.retries >= 1, task.task_id
        assert task.execution_timeout is not None and task.execution_timeout <= timedelta(hours=2), task.task_id
        assert task.retry_exponential_backoff, task.task_id


def test_spark_tasks_submit_the_jobs_with_templated_dates(dagbag):
    features = dagbag.dags["athlete_feature_pipeline"]
    chain = [t.task_id for t in features.topological_sort()]
    assert chain == [
        "bronze_ingestion",
        "silver_pipeline",
        "feature_pipeline",
        "publish_features",
        "materialize_online_store",
    ]
    job = features.get_task("feature_pipeline")
    assert job.application.endswith("jobs/feature_pipeline.py")
    assert "{{ ds }}" in job.application_args
    assert "derbyclient" in job.driver_class_path


@pytest.mark.parametrize("dag_id", ["athlete_batch_inference", "athlete_documents"])
def test_inference_and_documents_are_triggered_by_the_features_asset(dagbag, dag_id):
    consumer = dagbag.dags[dag_id]
    produced = {o.name for o in dagbag.dags["athlete_feature_pipeline"].get_task("publish_features").outlets}
    consumed = {a.name for a in consumer.timetable.asset_condition.objects}
    assert produced and produced <= consumed


def test_monitoring_asks_the_training_dag_to_retrain_through_an_asset(dagbag):
    """Weekly monitoring of the week that ended; its retrain request (published only when a flag
    is raised) is an asset the training DAG runs on, besides its weekly schedule."""
    from athlete_platform.orchestration import RETRAIN_ASSET, RUN_END

    monitoring = dagbag.dags["athlete_model_monitoring"]
    assert [t.task_id for t in monitoring.topological_sort()] == ["model_monitoring", "request_retraining"]
    job = monitoring.get_task("model_monitoring")
    assert job.application.endswith("jobs/model_monitoring.py")
    assert "{{ macros.ds_add(ds, 6) }}" in job.application_args
    assert {o.name for o in monitoring.get_task("request_retraining").outlets} == {RETRAIN_ASSET}
    training = dagbag.dags["athlete_training_pipeline"]
    assert RETRAIN_ASSET in {key.name for key, _ in training.timetable.asset_condition.iter_assets()}
    assert training.timetable.periodic  # still weekly as well
    assert RUN_END in training.get_task("training_pipeline").application_args


def test_documents_dag_embeds_for_the_published_run_date(dagbag):
    from athlete_platform.orchestration import RUN_END

    (task,) = dagbag.dags["athlete_documents"].tasks
    assert task.task_id == "embed_documents" and task.application.endswith("jobs/embed_documents.py")
    assert RUN_END in task.application_args


def test_run_date_templates_for_dated_and_asset_triggered_runs():
    """A dated run scores ds; an asset-triggered run spans every run date its events published."""
    from types import SimpleNamespace

    from airflow.sdk.definitions._internal.templater import SandboxedEnvironment

    from athlete_platform.orchestration import RUN_END, RUN_START

    env = SandboxedEnvironment()
    dated = {"ds": "2024-12-30", "dag_run": SimpleNamespace(logical_date="2024-12-30")}
    assert [env.from_string(t).render(**dated) for t in (RUN_START, RUN_END)] == ["2024-12-30", "2024-12-30"]
    events = {
        "features": [
            SimpleNamespace(extra={"run_date": "2024-12-29"}),
            SimpleNamespace(extra={"run_date": "2024-12-27"}),
            SimpleNamespace(extra={"run_date": "2024-12-28"}),
        ]
    }
    triggered = {"ds": None, "dag_run": SimpleNamespace(logical_date=None), "triggering_asset_events": events}
    assert [env.from_string(t).render(**triggered) for t in (RUN_START, RUN_END)] == ["2024-12-27", "2024-12-29"]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2024-12-29", "2024-12-29", "2024-12-29"),  # a Sunday
        ("2024-12-30", "2024-12-31", None),  # Monday, Tuesday
        ("2024-12-27", "2024-12-31", "2024-12-29"),
        ("2024-12-20", "2024-12-31", "2024-12-29"),  # two Sundays: the last one
    ],
)
def test_last_week_end_in_a_span(start, end, expected):
    from athlete_platform.orchestration import last_week_end

    assert last_week_end(start, end) == expected


def test_maintenance_runs_daily_after_the_other_dags(dagbag):
    """The maintenance DAG runs the registered step once a day, hours after the feature DAG's run."""
    from datetime import datetime

    maintenance = dagbag.dags["athlete_table_maintenance"]
    job = maintenance.get_task("table_maintenance")
    assert job.application.endswith("jobs/table_maintenance.py")
    assert "{{ ds }}" in job.application_args
    day = datetime(2024, 6, 1, tzinfo=maintenance.timezone)
    features = dagbag.dags["athlete_feature_pipeline"].timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=_after(day)
    )
    maintained = maintenance.timetable.next_dagrun_info(last_automated_data_interval=None, restriction=_after(day))
    assert maintained.run_after - features.run_after == timedelta(hours=3)


def _after(moment):
    from airflow.timetables.base import TimeRestriction

    return TimeRestriction(earliest=moment, latest=None, catchup=True)
