"""Weekly report transforms: silver sessions + daily features -> one row per athlete per ISO week.

Pure functions only (DataFrames in, DataFrames out; no reads, no writes):

* :func:`weekly_summary`: per athlete and ISO week (Monday start), from the athlete's first
  feature week to the week holding the run date, the week's volume, its summed daily load, the
  load state of the week's last day and warning flags;
* :func:`recent_weeks`, :func:`chart_days`, :func:`latest_predictions`: what the HTML pages show
  (the last :data:`REPORT_WEEKS` weeks, :data:`CHART_DAYS` days of load state, the latest
  predictions per athlete).

The flag rules are defined once (:data:`FLAG_RULES`) and serve both Spark (:func:`weekly_summary`)
and plain Python (:func:`week_flags`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from athlete_platform.lakehouse import tables

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# --- flag thresholds -------------------------------------------------------------------------
#: Gabbett (2016): an acute:chronic workload ratio above 1.5 is the injury "danger zone".
ACWR_HIGH = 1.5
#: Gabbett (2016): below 0.8 the athlete is under-loaded relative to what they are used to.
ACWR_LOW = 0.8
#: Foster (1998): monotony above 2.0 (little day-to-day variation) goes with illness/overreaching.
MONOTONY_HIGH = 2.0
#: Performance Management Chart convention (Coggan): TSB below -30 is deep, risky fatigue.
FORM_VERY_LOW = -30.0

#: Weeks shown in an athlete page's table (the current week and the 7 before it).
REPORT_WEEKS = 8
#: Days of history in the Performance Management Chart, ending on the run date.
CHART_DAYS = 180

KEYS = ["athlete_id", "week_start"]
#: Load-state columns taken from the feature row of the week's last day.
STATE_COLUMNS = ("ctl", "atl", "tsb", "acwr_rolling", "acwr_ewma", "monotony_7d")
#: Columns of :func:`chart_days`: what the Performance Management Chart plots.
CHART_COLUMNS = ("athlete_id", "feature_date", "daily_load", "ctl", "atl", "tsb")
#: Columns of :func:`latest_predictions`.
PREDICTION_COLUMNS = (
    "athlete_id",
    "as_of_date",
    "race_distance_m",
    "predicted_finish_time_s",
    "predicted_finish_time_p10_s",
    "predicted_finish_time_p90_s",
    "predicted_pace_s_per_km",
    "model_name",
    "model_version",
)
_LINEAGE = ("computed_at", "_run_id")
#: Columns of :func:`weekly_summary`: the report table without its lineage columns.
SUMMARY_COLUMNS: list[str] = [c for c in tables.ATHLETE_WEEKLY_REPORT.column_names if c not in _LINEAGE]
_TYPES = {c.name: c.type for c in tables.ATHLETE_WEEKLY_REPORT.columns}


def is_missing(value: Any) -> bool:
    """None, NaN and NaT are missing; anything that is not a number is not."""
    if value is None or value is pd.NaT:
        return True
    try:
        return math.isnan(value)
    except TypeError:
        return False


@dataclass(frozen=True)
class FlagRule:
    """A warning raised when ``column`` is strictly above (or below) ``threshold``."""

    flag: str
    column: str
    above: bool
    threshold: float

    def applies(self, value: float | None) -> bool:
        """Null and NaN never raise a flag (e.g. ACWR before 28 days of history)."""
        if value is None or is_missing(value):
            return False
        return value > self.threshold if self.above else value < self.threshold


#: The flags, in the order they appear in ``flags``; one definition serves Spark and pandas.
FLAG_RULES: tuple[FlagRule, ...] = (
    FlagRule("acwr_high", "acwr_rolling", True, ACWR_HIGH),
    FlagRule("acwr_low", "acwr_rolling", False, ACWR_LOW),
    FlagRule("monotony_high", "monotony_7d", True, MONOTONY_HIGH),
    FlagRule("form_very_low", "tsb", False, FORM_VERY_LOW),
)


def week_flags(state: Mapping[str, Any]) -> list[str]:
    """The flags for one week-end state (``acwr_rolling``, ``monotony_7d``, ``tsb``)."""
    return [rule.flag for rule in FLAG_RULES if rule.applies(state.get(rule.column))]


def week_start_of(day: date) -> date:
    """Monday of the ISO week holding ``day``."""
    return day - timedelta(days=day.weekday())


def weekly_summary(sessions: DataFrame, features: DataFrame, run_date: date) -> DataFrame:
    """Pure transform: per athlete per ISO week, volume, load and the week-end load state.

    Args:
        sessions: silver.sessions rows (``athlete_id``, ``session_date``, ``distance_m``,
            ``duration_s``); sessions after ``run_date`` are ignored.
        features: athlete_rolling_features rows (``athlete_id``, ``feature_date``, ``daily_load``
            and :data:`STATE_COLUMNS`); rows after ``run_date`` are ignored.
        run_date: Last day covered; its week is the last, partial, week.

    Returns:
        :data:`SUMMARY_COLUMNS`, one row per athlete with a feature row on or before
        ``run_date`` and per week from the athlete's first feature week to ``run_date``'s week.
        ``sessions``/``distance_m``/``duration_s`` are 0 in weeks without sessions;
        ``weekly_load`` sums the week's feature rows (null only if the week has none); the state
        columns come from the feature row of ``week_end`` exactly (null if that row is missing,
        never an older row passed off as current). NaN states are returned as null.
    """
    from pyspark.sql import functions as F

    run_day = F.lit(run_date).cast("date")
    feats = features.where(F.col("feature_date") <= run_day).select(
        "athlete_id",
        "feature_date",
        _monday(F.col("feature_date")).alias("week_start"),
        "daily_load",
        # Spark orders NaN above every number (NaN > 1.5 is true): make NaN null first.
        *[F.nanvl(F.col(c), F.lit(None).cast("double")).alias(c) for c in STATE_COLUMNS],
    )
    every_monday = F.sequence(F.col("first_week"), F.lit(week_start_of(run_date)), F.expr("INTERVAL 7 DAYS"))
    weeks = (
        feats.groupBy("athlete_id")
        .agg(F.min("week_start").alias("first_week"))
        .select("athlete_id", F.explode(every_monday).alias("week_start"))
        .withColumn("week_end", F.least(F.date_add("week_start", 6), run_day))
    )
    volumes = (
        sessions.where(F.col("session_date") <= run_day)
        .groupBy("athlete_id", _monday(F.col("session_date")).alias("week_start"))
        .agg(
            F.count(F.lit(1)).alias("sessions"),
            F.sum("distance_m").alias("distance_m"),
            F.sum("duration_s").alias("duration_s"),
        )
    )
    loads = feats.groupBy("athlete_id", "week_start").agg(F.sum("daily_load").alias("weekly_load"))
    states = feats.select("athlete_id", F.col("feature_date").alias("week_end"), *STATE_COLUMNS)

    joined = (
        weeks.join(volumes, KEYS, "left")
        .join(loads, KEYS, "left")
        .join(states, ["athlete_id", "week_end"], "left")
        .fillna(0, subset=["sessions", "distance_m", "duration_s"])
        .withColumn("flags", _flags_column())
    )
    return joined.select(*[F.col(c).cast(_TYPES[c]).alias(c) for c in SUMMARY_COLUMNS])


def recent_weeks(summary: DataFrame, run_date: date) -> DataFrame:
    """The :data:`REPORT_WEEKS` weeks up to ``run_date``'s week of a :func:`weekly_summary` frame."""
    from pyspark.sql import functions as F

    first_shown = week_start_of(run_date) - timedelta(weeks=REPORT_WEEKS - 1)
    return summary.where(F.col("week_start") >= F.lit(first_shown)).select(*SUMMARY_COLUMNS)


def chart_days(features: DataFrame, run_date: date) -> DataFrame:
    """The feature rows of the :data:`CHART_DAYS` days ending on ``run_date``, :data:`CHART_COLUMNS` only."""
    from pyspark.sql import functions as F

    chart_from = run_date - timedelta(days=CHART_DAYS - 1)
    return features.where(F.col("feature_date").between(F.lit(chart_from), F.lit(run_date))).select(*CHART_COLUMNS)


def latest_predictions(predictions: DataFrame, run_date: date) -> DataFrame:
    """Per athlete, the prediction rows of its latest ``as_of_date <= run_date`` (:data:`PREDICTION_COLUMNS`).
    A table written before the P10/P90 columns existed gives them as nulls."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    per_athlete = Window.partitionBy("athlete_id")
    present = set(predictions.columns)
    return (
        predictions.where(F.col("as_of_date") <= F.lit(run_date))
        .withColumn("_latest", F.max("as_of_date").over(per_athlete))
        .where(F.col("as_of_date") == F.col("_latest"))
        .select(*(F.col(c) if c in present else F.lit(None).cast("double").alias(c) for c in PREDICTION_COLUMNS))
    )


def _monday(day: Column) -> Column:
    from pyspark.sql import functions as F

    return F.date_sub(day, F.weekday(day))  # weekday: 0 = Monday


def _flags_column() -> Column:
    from pyspark.sql import functions as F

    raised = [
        F.when((F.col(r.column) > r.threshold) if r.above else (F.col(r.column) < r.threshold), F.lit(r.flag))
        for r in FLAG_RULES
    ]
    return F.filter(F.array(*raised), lambda flag: flag.isNotNull())
