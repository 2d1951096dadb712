"""The weekly report step: silver sessions + daily features -> gold.athlete_weekly_report + HTML.

* extract: silver.sessions, the feature table and (when it exists) the predictions table;
* transform: :func:`~athlete_platform.reporting.weekly_summary.weekly_summary` plus what the
  pages show (chart days, latest predictions), all pure;
* load: MERGE the summary on (athlete_id, week_start), so a re-run for the same run date leaves
  the same rows, then render one self-contained HTML page per athlete and an index page into
  ``<output_dir>/reports/``.

Everything the pages show is collected with three Spark queries in all (weeks, chart days,
predictions), never one per athlete.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from athlete_platform.errors import SetupError
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.ddl import ensure_table
from athlete_platform.lakehouse.step import Step, StepContext, wall_clock
from athlete_platform.lakehouse.tables import ATHLETE_PREDICTIONS, ATHLETE_ROLLING_FEATURES, SESSIONS
from athlete_platform.lakehouse.writes import merge_upsert, utc_timestamp
from athlete_platform.reporting.weekly_summary import (
    KEYS,
    chart_days,
    latest_predictions,
    recent_weeks,
    weekly_summary,
)

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeeklyReportInputs:
    """What the report reads; ``predictions`` is None while the predictions table does not exist."""

    sessions: DataFrame
    features: DataFrame
    predictions: DataFrame | None
    run_date: date


@dataclass(frozen=True)
class WeeklyReportOutputs:
    """The report rows to MERGE and what the pages show besides them."""

    summary: DataFrame
    chart: DataFrame
    predictions: DataFrame | None


@dataclass(frozen=True)
class WeeklyReportResult:
    """What the step did: report rows merged, athletes rendered, the index page."""

    rows: int
    athletes: int
    index_path: Path


class WeeklyReportStep(Step[WeeklyReportInputs, WeeklyReportOutputs, WeeklyReportResult]):
    """gold.athlete_weekly_report up to the run date + one HTML page per athlete.

    Every athlete with a feature row on or before the run date is reported, over their whole
    history (rows of earlier weeks only change when their inputs changed).
    """

    name = "report"
    job = "weekly_report"
    summary = "gold.athlete_weekly_report + HTML report per athlete"

    def extract(self, ctx: StepContext, params: Mapping[str, Any]) -> WeeklyReportInputs:
        """silver.sessions, the feature table and the predictions table (None if absent).

        Raises:
            SetupError: silver.sessions or the feature table does not exist yet.
        """
        spark, names = ctx.spark, ctx.names
        for table_id, producer in ((SESSIONS, "silver pipeline"), (ATHLETE_ROLLING_FEATURES, "feature pipeline")):
            if not spark.catalog.tableExists(names(table_id)):
                raise SetupError(
                    f"The weekly report reads {names(table_id)}, which does not exist yet: run the {producer} first."
                )
        predictions = names(ATHLETE_PREDICTIONS)
        return WeeklyReportInputs(
            sessions=spark.table(names(SESSIONS)),
            features=spark.table(names(ATHLETE_ROLLING_FEATURES)),
            predictions=spark.table(predictions) if spark.catalog.tableExists(predictions) else None,
            run_date=ctx.run_date,
        )

    def transform(self, inputs: WeeklyReportInputs) -> WeeklyReportOutputs:
        """Pure: the weekly summary, the chart days and the latest predictions up to the run date."""
        run_date = inputs.run_date
        return WeeklyReportOutputs(
            summary=weekly_summary(inputs.sessions, inputs.features, run_date),
            chart=chart_days(inputs.features, run_date),
            predictions=None if inputs.predictions is None else latest_predictions(inputs.predictions, run_date),
        )

    def load(self, ctx: StepContext, outputs: WeeklyReportOutputs) -> WeeklyReportResult:
        """MERGE the summary into gold.athlete_weekly_report, then render ``<output_dir>/reports/``."""
        from pyspark.sql import functions as F

        spark, run_date, now = ctx.spark, ctx.run_date, wall_clock()
        table = ensure_table(spark, ctx.names, tables.ATHLETE_WEEKLY_REPORT)
        stamped = outputs.summary.select(
            "*", utc_timestamp(now).alias("computed_at"), F.lit(ctx.run_id).alias("_run_id")
        ).cache()
        try:
            rows = stamped.count()
            merge_upsert(spark, table, stamped, keys=KEYS)
            weeks = recent_weeks(stamped, run_date).toPandas()
        finally:
            stamped.unpersist()
        chart = outputs.chart.toPandas()
        predictions = None if outputs.predictions is None else outputs.predictions.toPandas()

        # matplotlib caches fonts; give it a writable folder of the platform's own before it loads.
        os.environ.setdefault("MPLCONFIGDIR", str(ctx.settings.data_path / ".matplotlib"))
        from athlete_platform.reporting.html import render_reports

        reports_dir = ctx.settings.output_path / "reports"
        cards = model_card_links(ctx.settings.output_path, predictions)
        index_path = render_reports(weeks, chart, predictions, run_date, now, reports_dir, cards)
        athletes = weeks["athlete_id"].nunique()
        log.info("weekly report to %s: %d rows merged, %d athlete pages in %s", run_date, rows, athletes, reports_dir)
        return WeeklyReportResult(rows=rows, athletes=athletes, index_path=index_path)


def model_card_links(output_path: Path, predictions: pd.DataFrame | None) -> dict[str, str]:
    """ "model vN" -> its card's address from the reports folder, for each version behind the
    predictions whose card training wrote (`training.model_card.card_path`)."""
    from athlete_platform.training.model_card import card_path

    if predictions is None or predictions.empty:
        return {}
    links = {}
    for name, version in predictions[["model_name", "model_version"]].drop_duplicates().itertuples(index=False):
        card = card_path(name, str(version))
        if (output_path / card).is_file():
            links[f"{name} v{version}"] = "../" + card.as_posix()
    return links
