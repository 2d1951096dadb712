"""The batch system's steps, shared by the jobs/ scripts, the CLI and the DAGs.

Each step takes a JobContext (settings, session, names, run date, run id) and returns
its counts; `run_batch` chains them in one Spark session with progress lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from athlete_platform.config import Settings

if TYPE_CHECKING:
    from athlete_platform.jobs import JobContext

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """Wall-clock time for lineage columns only (never for choosing input data)."""
    return datetime.now(UTC).replace(tzinfo=None)


def generate_sample_data(settings: Settings):
    """Write the configured sample data into the landing folder (deterministic, idempotent)."""
    from athlete_platform.ingestion.sample_data import GeneratorConfig, generate

    cfg = settings.sample_data
    config = GeneratorConfig(seed=cfg.seed, n_athletes=cfg.n_athletes, n_days=cfg.n_days, start_date=cfg.start_date)
    return generate(config, settings.landing_path)


def bronze_ingestion(context: JobContext):
    from athlete_platform.ingestion.bronze import run_bronze

    return run_bronze(context.spark, context.names, context.settings.landing_path, context.run_id, utc_now())


def silver_pipeline(context: JobContext):
    from athlete_platform.ingestion.silver import run_silver

    return run_silver(context.spark, context.names, _run_date(context), context.run_id, utc_now())


def feature_pipeline(context: JobContext, full_refresh: bool = False):
    from athlete_platform.features.pipeline import run_feature_pipeline

    return run_feature_pipeline(
        context.spark, context.names, _run_date(context), context.run_id, utc_now(), full_refresh=full_refresh
    )


def training_pipeline(context: JobContext, params_override: dict | None = None):
    from athlete_platform.training.pipeline import run_training

    return run_training(
        context.spark, context.names, context.settings, _run_date(context), context.run_id, params_override
    )


def batch_inference(context: JobContext, start=None, end=None, as_of=None):
    """Score a range (start..end) or the latest rows as of a day (default: the run date)."""
    from athlete_platform.inference.batch import run_batch_inference

    if as_of is None and start is None and end is None:
        as_of = _run_date(context)
    return run_batch_inference(
        context.spark, context.names, context.settings, context.run_id, utc_now(), start=start, end=end, as_of=as_of
    )


def weekly_report(context: JobContext):
    """gold.athlete_weekly_report + one HTML page per athlete under <output_dir>/reports/."""
    import os

    from athlete_platform.inference.weekly_report import run_weekly_report

    # matplotlib caches fonts; give it a writable folder of the platform's own.
    os.environ.setdefault("MPLCONFIGDIR", str(context.settings.data_path / ".matplotlib"))
    return run_weekly_report(
        context.spark, context.names, _run_date(context), context.run_id, utc_now(), context.settings.output_path
    )


def _run_date(context: JobContext):
    if context.run_date is None:
        from athlete_platform.errors import ConfigError

        raise ConfigError(f"{context.name} needs --run-date YYYY-MM-DD.")
    return context.run_date


BATCH_STEPS: list[tuple[str, Callable]] = [
    ("bronze ingestion", bronze_ingestion),
    ("silver", silver_pipeline),
    ("features", feature_pipeline),
    ("training", training_pipeline),
    ("batch inference", batch_inference),
    ("weekly report", weekly_report),
]


def run_batch(context: JobContext, say: Callable[[str], None] = print) -> dict[str, object]:
    """Run every batch step for the context's run date, printing one line per step."""
    import time

    results: dict[str, object] = {}
    for number, (name, step) in enumerate(BATCH_STEPS, start=1):
        started = time.monotonic()
        say(f"[{number}/{len(BATCH_STEPS)}] {name} ...")
        results[name] = step(context)
        outcome = getattr(results[name], "decision", None) or results[name]
        say(f"[{number}/{len(BATCH_STEPS)}] {name} done in {time.monotonic() - started:.1f} s: {outcome}")
    return results


def summary_lines(context: JobContext, results: dict[str, object]) -> list[str]:
    """What `run` prints at the end: rows per table, the model against its bars, the report."""
    from athlete_platform.lakehouse.schemas import ALL_SPECS, ATHLETE_PREDICTIONS, ATHLETE_WEEKLY_REPORT

    spark, names = context.spark, context.names
    lines = ["", "summary:"]
    for spec in (*ALL_SPECS, ATHLETE_PREDICTIONS, ATHLETE_WEEKLY_REPORT):
        name = names(spec.id)
        if spark.catalog.tableExists(name):
            lines.append(f"  {name:<55} {spark.table(name).count():>9,} rows")
    training = results.get("training")
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
    report = results.get("weekly report")
    if report is not None:
        lines.append(f"  report: {report.index_path}")
    lines.append(f"  MLflow: {context.settings.tracking_uri} (make mlflow-ui)")
    return lines
