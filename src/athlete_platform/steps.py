"""The one registry of pipeline steps: it drives the CLI subcommands, the `jobs/` scripts and
the Airflow spark-submit arguments, so a step's name, job, params and defaults live here once.

Importing this module is cheap (no Spark, pandas or step code): DAG files use it at parse time.
A step's implementation (`module:Class`, see `lakehouse.step.Step`) is imported when it runs.

To add a step: write its `Step` subclass (extract -> pure transform -> load) in the package of
its layer, add a `StepSpec` below, a two-line `jobs/<job>.py`, and a task in a DAG.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from athlete_platform.errors import ConfigError, PlatformError
from athlete_platform.lakehouse.concurrency import run_guarded
from athlete_platform.lakehouse.step import Param, Step, StepContext

if TYPE_CHECKING:
    from athlete_platform.config import Settings

log = logging.getLogger("athlete_platform")


@dataclass(frozen=True)
class StepSpec:
    """A step as users see it: CLI subcommand, job script, help, params; and where its code is."""

    name: str  # CLI subcommand
    job: str  # jobs/<job>.py and the Airflow task id
    summary: str
    implementation: str  # "package.module:StepClass"
    params: tuple[Param, ...] = ()

    def step(self) -> Step:
        module, _, cls = self.implementation.partition(":")
        return getattr(importlib.import_module(module), cls)()

    def job_args(self, run_date: str, **params: Any) -> list[str]:
        """Arguments of `jobs/<job>.py` (templated strings welcome, e.g. `{{ ds }}`)."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"step {self.name} has no params {unknown}; it has {sorted(known)}")
        args = ["--run-date", run_date]
        for name, value in params.items():
            if known[name].kind is bool:
                args += [known[name].flag] if value else []
            elif value is not None:
                args += [known[name].flag, str(value)]
        return args


STEPS: tuple[StepSpec, ...] = (
    StepSpec(
        "ingest",
        "bronze_ingestion",
        "landing folder -> bronze (new files only)",
        "athlete_platform.ingestion.bronze:BronzeStep",
    ),
    StepSpec(
        "silver",
        "silver_pipeline",
        "bronze -> silver athletes, sessions, races",
        "athlete_platform.ingestion.silver:SilverStep",
        (
            Param(
                "full_refresh",
                "judge every bronze record again, not only the athletes with new or newly due records",
                bool,
                False,
            ),
        ),
    ),
    StepSpec(
        "features",
        "feature_pipeline",
        "silver -> feature_store.athlete_rolling_features (incremental)",
        "athlete_platform.features.pipeline:FeatureStep",
        (Param("full_refresh", "recompute every athlete from its first session", bool, False),),
    ),
    StepSpec(
        "materialize",
        "materialize_online_store",
        "latest feature row per athlete (+ profile, last race) -> the online store (incremental: Change Data Feed)",
        "athlete_platform.online.materialize:MaterializeStep",
        (Param("full_refresh", "recompute every athlete's online row, not only the changed ones", bool, False),),
    ),
    StepSpec(
        "embed-documents",
        "embed_documents",
        "session notes + knowledge articles -> feature_store.document_chunks (embeddings; incremental: Change "
        "Data Feed, each distinct text embedded once) -> the LanceDB document index",
        "athlete_platform.features.documents.pipeline:EmbedDocumentsStep",
        (
            Param(
                "full_refresh",
                "re-chunk every note, not only changed ones (stored embeddings are still reused)",
                bool,
                False,
            ),
        ),
    ),
    StepSpec(
        "train",
        "training_pipeline",
        "train + register the time estimator, promotion gate",
        "athlete_platform.training.pipeline:TrainingStep",
    ),
    StepSpec(
        "train-live",
        "live_pace_training",
        "train + register the live pace coach on race-split snapshots, gate per fraction-done bucket "
        "(after train: the pre-race bar is the time estimator champion)",
        "athlete_platform.training.live_pace:LiveTrainingStep",
    ),
    StepSpec(
        "predict",
        "batch_inference",
        "batch inference into gold.athlete_predictions (as of the run date, or --start/--end)",
        "athlete_platform.inference.batch:BatchInferenceStep",
        (
            Param(
                "as_of", "score the latest feature row per athlete on or before this day (default: the run date)", date
            ),
            Param("start", "first day of a range to score (with --end)", date),
            Param("end", "last day of a range to score (inclusive)", date),
        ),
    ),
    StepSpec(
        "flush-inference-log",
        "flush_inference_log",
        "the serving API's inference log files -> gold.online_inference_log (idempotent; closed files moved aside)",
        "athlete_platform.inference.online_log:InferenceLogFlushStep",
    ),
    StepSpec(
        "report",
        "weekly_report",
        "gold.athlete_weekly_report + HTML report per athlete",
        "athlete_platform.reporting.weekly_report:WeeklyReportStep",
    ),
    StepSpec(
        "monitor",
        "model_monitoring",
        "champion time estimator: input and prediction drift (PSI) over the 7 days to the run date, realised "
        "accuracy on the races run since -> gold.model_monitoring (flags: retrain recommended)",
        "athlete_platform.monitoring.step:MonitoringStep",
    ),
    StepSpec(
        "maintain",
        "table_maintenance",
        "OPTIMIZE + VACUUM every table, keeping the versions predictions and features still reference",
        "athlete_platform.lakehouse.maintenance:MaintenanceStep",
    ),
)
BY_NAME: dict[str, StepSpec] = {spec.name: spec for spec in STEPS}
BY_JOB: dict[str, StepSpec] = {spec.job: spec for spec in STEPS}


def parse_date(text: str, flag: str = "--run-date") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a date like 2024-06-30, not {text!r}.") from None


def parse_logical_time(text: str) -> datetime:
    """An ISO timestamp; with an offset it is converted to naive UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--logical-time must be an ISO timestamp like 2024-07-01T00:00:00Z, not {text!r}.") from None
    if moment.tzinfo is not None:
        from datetime import UTC

        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def add_step_arguments(parser: argparse.ArgumentParser, spec: StepSpec, run_date_required: bool) -> None:
    """--run-date, --logical-time and the step's own params, for the CLI and the jobs alike."""
    run_date_help = "run date YYYY-MM-DD" + ("" if run_date_required else " (default: the last sample-data day)")
    parser.add_argument("--run-date", required=run_date_required, help=run_date_help)
    parser.add_argument(
        "--logical-time",
        help="end of the run's data interval, ISO timestamp (default: the end of the run date)",
    )
    for param in spec.params:
        if param.kind is bool:
            parser.add_argument(param.flag, dest=param.name, action="store_true", help=param.help)
        else:
            parser.add_argument(param.flag, dest=param.name, help=param.help)


def params_from_args(spec: StepSpec, args: argparse.Namespace) -> dict[str, Any]:
    """The step's params from parsed arguments, typed, with the registry's defaults."""
    values: dict[str, Any] = {}
    for param in spec.params:
        value = getattr(args, param.name, None)
        if param.kind is date and value is not None:
            value = parse_date(value, param.flag)
        values[param.name] = param.default if value is None else value
    return values


def make_context(
    settings: Settings, run_date: date, master: str | None = None, logical_time: datetime | None = None
) -> StepContext:
    """Build the session for `settings` and wrap it with what a step needs."""
    from athlete_platform.lakehouse.spark import build_spark
    from athlete_platform.lakehouse.tables import TableNames

    spark = build_spark(settings, master=master)
    return StepContext(settings, spark, TableNames.from_settings(settings.catalog), run_date, logical_time)


def context_from_args(args: argparse.Namespace, settings: Settings, default_run_date: date | None) -> StepContext:
    """The run date (argument, else `default_run_date`) and logical time, then the context."""
    # An empty --run-date is a mistake (e.g. an unset shell variable), not "the default day".
    run_date = parse_date(args.run_date) if args.run_date is not None else default_run_date
    if run_date is None:
        raise ConfigError("--run-date YYYY-MM-DD is required.")
    text = getattr(args, "logical_time", None)
    logical_time = parse_logical_time(text) if text is not None else None
    return make_context(settings, run_date, getattr(args, "master", None), logical_time)


def run_step(spec: StepSpec, ctx: StepContext, params: Mapping[str, Any] | None = None) -> Any:
    """Run one step with the registry's defaults filled in, under the concurrency rule
    (`lakehouse.concurrency`): one run per step and run date at a time (an overlapping run waits
    up to runs.lock_wait_s, then stops naming the holder) and Delta commit conflicts with other
    writers retried runs.conflict_retries times, then reported in one paragraph."""
    values = {p.name: p.default for p in spec.params} | dict(params or {})
    return run_guarded(ctx, spec.name, lambda: spec.step().run(ctx, values))


def run_batch(
    ctx: StepContext,
    say: Callable[[str], None] = print,
    starting: Callable[[int, int, str], None] | None = None,
) -> dict[str, object]:
    """Run every step for the context's run date in one session, printing one line per step.

    `starting(number, total, job)` is told before each step (the console's progress bar)."""
    results: dict[str, object] = {}
    for number, spec in enumerate(STEPS, start=1):
        started = time.monotonic()
        if starting is not None:
            starting(number, len(STEPS), spec.job)
        else:
            say(f"[{number}/{len(STEPS)}] {spec.job} ...")
        results[spec.name] = run_step(spec, ctx)
        outcome = getattr(results[spec.name], "decision", None) or results[spec.name]
        say(f"[{number}/{len(STEPS)}] {spec.job} done in {time.monotonic() - started:.1f} s: {outcome}")
    return results


def summary_lines(ctx: StepContext, results: Mapping[str, object]) -> list[str]:
    """What `run` prints at the end: rows per table, the model against its bars, the report."""
    from athlete_platform.lakehouse.tables import ALL_TABLES

    spark, names = ctx.spark, ctx.names
    lines = ["", "summary:"]
    for table in ALL_TABLES:
        name = names(table)
        if spark.catalog.tableExists(name):
            lines.append(f"  {name:<55} {spark.table(name).count():>9,} rows")
    if "materialize" in results:
        lines.append(online_store_line(ctx.settings))
    training = results.get("train")
    if training is not None:
        m = training.metrics
        floor = m.get("noise_floor_mape")
        lines.append(
            f"  model {training.model_name} v{training.version}: held-out MAPE {m.get('model_mape', float('nan')):.2%}"
            f" vs Riegel {m.get('riegel_mape', float('nan')):.2%}, VDOT {m.get('vdot_mape', float('nan')):.2%}"
            + (f", noise floor {floor:.2%}" if floor is not None else "")
            + f" ({int(m.get('test_rows_with_baselines', 0))} test races)"
        )
        lines.append(f"  gate: {training.decision}")
    live = results.get("train-live")
    if live is not None and not hasattr(live, "gate_table"):  # skipped: too little split data
        lines.append(f"  model {live}")
    elif live is not None:
        lines.append(f"  model {live.model_name} v{live.version} (finish-time MAPE on held-out snapshots):")
        lines.extend(f"    {line}" for line in live.gate_table.splitlines())
        lines.append(f"  gate: {live.decision}")
    documents = results.get("embed-documents")
    if documents is not None:
        lines.append(f"  document index {ctx.settings.documents_index_path}: {documents.index}")
    report = results.get("report")
    if report is not None:
        lines.append(f"  report: {report.index_path}")
    monitoring = results.get("monitor")
    if monitoring is not None:
        lines.append(f"  monitoring: {monitoring.decision}")
    lines.append(f"  MLflow: {ctx.settings.tracking_uri} (make mlflow-ui)")
    serving = ctx.settings.serving
    lines.append(
        f"  deployment API: not started; run `athlete-platform serve` (or `make serve`) for "
        f'http://{serving.host}:{serving.port} (README "Serving": a curl for each route)'
    )
    return lines


def online_store_line(settings: Settings) -> str:
    """The online store's backend, location, row count and the feature version it holds."""
    from athlete_platform.online.backends import open_store

    with open_store(settings) as store:
        meta = store.metadata()
    return (
        f"  online store ({meta.backend}) {meta.location:<38} {meta.rows:>9,} rows "
        f"(feature table v{meta.source_version}, materialized {meta.materialized_at})"
    )


def job_main(job: str, argv: Sequence[str] | None = None) -> None:
    """The whole of a `jobs/<job>.py` script: parse, build the session, run; exit 2 on PlatformError."""
    from athlete_platform.config import load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = BY_JOB[job]
    parser = argparse.ArgumentParser(prog=job, description=spec.summary)
    add_step_arguments(parser, spec, run_date_required=True)
    parser.add_argument("--conf-file", help="YAML settings (default conf/local.yaml or $ATHLETE_CONF_FILE)")
    parser.add_argument("--master", help="Spark master, overrides spark.master")
    args = parser.parse_args(argv)
    try:
        params = params_from_args(spec, args)  # bad arguments fail before the session is built
        ctx = context_from_args(args, load_settings(args.conf_file), None)
        log.info("%s: run date %s, logical time %s, run id %s", job, ctx.run_date, ctx.logical_time, ctx.run_id)
        print(run_step(spec, ctx, params))
    except PlatformError as exc:
        print(f"{job}: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
