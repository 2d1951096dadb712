"""The step registry drives the CLI, the jobs and the DAGs' spark-submit arguments alike."""

from __future__ import annotations

import argparse
import importlib
import io
import logging
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from athlete_platform import steps
from athlete_platform.cli import build_parser
from athlete_platform.errors import ConfigError
from athlete_platform.lakehouse.step import Step, StepContext

HOME = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("spec", steps.STEPS, ids=lambda s: s.name)
def test_every_step_has_its_code_its_job_script_and_its_subcommand(spec):
    assert isinstance(spec.step(), Step)
    script = (HOME / "jobs" / f"{spec.job}.py").read_text()
    assert f'job_main("{spec.job}")' in script
    args = build_parser().parse_args([spec.name, "--run-date", "2024-06-30"])
    assert args.run_date == "2024-06-30"


def test_job_args_render_params_as_flags():
    predict = steps.BY_NAME["predict"]
    assert predict.job_args("{{ ds }}", start="2024-01-01", end="2024-01-07") == [
        "--run-date",
        "{{ ds }}",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-07",
    ]
    features = steps.BY_NAME["features"]
    assert features.job_args("2024-01-01", full_refresh=True) == ["--run-date", "2024-01-01", "--full-refresh"]
    assert features.job_args("2024-01-01", full_refresh=False) == ["--run-date", "2024-01-01"]
    with pytest.raises(ValueError, match="no params"):
        features.job_args("2024-01-01", as_of="2024-01-01")


def test_parsed_params_are_typed_and_defaulted():
    predict, features = steps.BY_NAME["predict"], steps.BY_NAME["features"]
    parser = argparse.ArgumentParser()
    steps.add_step_arguments(parser, predict, run_date_required=True)
    args = parser.parse_args(["--run-date", "2024-06-30", "--as-of", "2024-06-01"])
    assert steps.params_from_args(predict, args) == {"as_of": date(2024, 6, 1), "start": None, "end": None}
    parser = argparse.ArgumentParser()
    steps.add_step_arguments(parser, features, run_date_required=True)
    assert steps.params_from_args(features, parser.parse_args(["--run-date", "2024-06-30"])) == {"full_refresh": False}
    with pytest.raises(ConfigError, match="--as-of must be a date"):
        steps.params_from_args(predict, argparse.Namespace(as_of="June", start=None, end=None))


def test_a_job_needs_its_run_date_and_the_cli_defaults_it(capsys):
    parser = argparse.ArgumentParser()
    steps.add_step_arguments(parser, steps.BY_NAME["silver"], run_date_required=True)
    with pytest.raises(SystemExit):
        parser.parse_args([])
    assert build_parser().parse_args(["silver"]).run_date is None  # -> the last sample-data day


def test_logical_time_defaults_to_the_end_of_the_run_date_and_accepts_offsets():
    ctx = StepContext(settings=None, spark=None, names=None, run_date=date(2024, 6, 30))
    assert ctx.logical_time == datetime(2024, 7, 1)
    assert steps.parse_logical_time("2024-07-01T02:00:00+02:00") == datetime(2024, 7, 1)
    with pytest.raises(ConfigError, match="--logical-time"):
        steps.parse_logical_time("tomorrow")


def test_the_dags_submit_what_the_registry_says():
    orchestration = importlib.import_module("athlete_platform.orchestration")
    kwargs = orchestration.submit_kwargs("features", "{{ ds }}")
    assert kwargs["task_id"] == "feature_pipeline"
    assert kwargs["application"].endswith("jobs/feature_pipeline.py")
    assert kwargs["application_args"][:2] == ["--run-date", "{{ ds }}"]
    assert orchestration.FEATURES_ASSET.endswith("feature_store.athlete_rolling_features")


def test_an_empty_run_date_is_an_error_not_the_default_day():
    args = argparse.Namespace(run_date="", logical_time=None)
    with pytest.raises(ConfigError, match="--run-date must be a date like 2024-06-30, not ''"):
        steps.context_from_args(args, None, date(2024, 6, 30))
    with pytest.raises(ConfigError, match="--logical-time must be an ISO timestamp"):
        steps.context_from_args(argparse.Namespace(run_date="2024-06-30", logical_time=""), None, None)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [False, True])
def test_run_prints_a_line_per_step_and_a_progress_bar_only_on_a_terminal(monkeypatch, tty):
    from athlete_platform import cli

    out = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setenv("TERM", "xterm-256color")  # CI may say dumb; the terminal here is a real one
    for variable in ("NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(variable, raising=False)

    def run_step(spec, ctx, params=None):
        logging.getLogger("athlete_platform.test").warning("%s is running", spec.name)
        return f"{spec.name} ok"

    monkeypatch.setattr(steps, "run_step", run_step)
    handlers = logging.getLogger().handlers[:]
    with cli._step_progress() as (say, starting):
        results = steps.run_batch(object(), say, starting)
    text = out.getvalue()
    assert list(results) == [spec.name for spec in steps.STEPS]
    total = len(steps.STEPS)
    for number, spec in enumerate(steps.STEPS, start=1):
        assert f"[{number}/{total}] {spec.job} done in " in text and f": {spec.name} ok" in text
    # plain lines announce each step; on a terminal the bar does (rich's control codes, then cleared)
    assert (f"[1/{total}] {steps.STEPS[0].job} ...\n" in text) is not tty
    assert ("\x1b[" in text) is tty
    # on a terminal the steps' log lines are drawn through the bar's console; the handlers come back
    assert (f"{steps.STEPS[0].name} is running" in text) is tty
    assert logging.getLogger().handlers == handlers
