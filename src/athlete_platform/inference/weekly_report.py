"""Weekly performance report: silver sessions + daily features -> gold.athlete_weekly_report + HTML.

Extract -> transform -> load:

* :func:`weekly_summary` is the pure Spark transform: one row per athlete per ISO week
  (Monday start) from the athlete's first feature week to the week holding the run date,
  with the week's volume, its summed daily load, the load state of the week's last day and
  warning flags.
* :func:`run_weekly_report` MERGEs those rows on (athlete_id, week_start), so a re-run for the
  same run date leaves the same rows, then renders a self-contained HTML page per athlete
  (Performance Management Chart as an embedded PNG, the last 8 weeks, latest predictions)
  and an index page.

Everything the pages show is collected with three Spark queries in all (weeks, chart days,
predictions), never one per athlete; the rendering helpers below are pure pandas/matplotlib
functions so they are unit-tested without Spark.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pandas as pd
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from athlete_platform.errors import SetupError
from athlete_platform.lakehouse import schemas
from athlete_platform.lakehouse.tables import ATHLETE_PREDICTIONS, ATHLETE_ROLLING_FEATURES, SESSIONS
from athlete_platform.lakehouse.writes import merge_upsert, utc_timestamp

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from athlete_platform.lakehouse.tables import TableNames

log = logging.getLogger(__name__)

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
_LINEAGE = ("computed_at", "_run_id")
#: Columns of :func:`weekly_summary`: the report table without its lineage columns.
SUMMARY_COLUMNS: list[str] = [c for c in schemas.ATHLETE_WEEKLY_REPORT.column_names if c not in _LINEAGE]
_TYPES = {c.name: c.type for c in schemas.ATHLETE_WEEKLY_REPORT.columns}


@dataclass(frozen=True)
class FlagRule:
    """A warning raised when ``column`` is strictly above (or below) ``threshold``."""

    flag: str
    column: str
    above: bool
    threshold: float

    def applies(self, value: float | None) -> bool:
        """Null and NaN never raise a flag (e.g. ACWR before 28 days of history)."""
        if value is None or _is_missing(value):
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


@dataclass(frozen=True)
class WeeklyReportResult:
    """What :func:`run_weekly_report` did: report rows merged, athletes rendered, the index page."""

    rows: int
    athletes: int
    index_path: Path


# --- transform -----------------------------------------------------------------------------------


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


# --- job -----------------------------------------------------------------------------------------


def run_weekly_report(
    spark: SparkSession, names: TableNames, run_date: date, run_id: str, now: datetime, output_dir: Path
) -> WeeklyReportResult:
    """Compute and MERGE the weekly report up to ``run_date``, then render the HTML pages.

    Pages go to ``output_dir/reports/<athlete_id>.html`` plus ``output_dir/reports/index.html``.
    Every athlete with a feature row on or before ``run_date`` is reported, over their whole
    history (rows of earlier weeks only change when their inputs changed).

    Raises:
        SetupError: silver.sessions or the feature table does not exist yet.
    """
    from pyspark.sql import functions as F

    for table_id, producer in ((SESSIONS, "silver pipeline"), (ATHLETE_ROLLING_FEATURES, "feature pipeline")):
        if not spark.catalog.tableExists(names(table_id)):
            raise SetupError(
                f"The weekly report reads {names(table_id)}, which does not exist yet: run the {producer} first."
            )
    table = schemas.ensure_table(spark, names, schemas.ATHLETE_WEEKLY_REPORT)
    features = spark.table(names(ATHLETE_ROLLING_FEATURES))
    summary = weekly_summary(spark.table(names(SESSIONS)), features, run_date)
    stamped = summary.select("*", utc_timestamp(now).alias("computed_at"), F.lit(run_id).alias("_run_id")).cache()
    try:
        rows = stamped.count()
        merge_upsert(spark, table, stamped, keys=KEYS)
        first_shown = week_start_of(run_date) - timedelta(weeks=REPORT_WEEKS - 1)
        weeks = stamped.where(F.col("week_start") >= F.lit(first_shown)).select(*SUMMARY_COLUMNS).toPandas()
    finally:
        stamped.unpersist()

    chart_from = run_date - timedelta(days=CHART_DAYS - 1)
    chart = (
        features.where(F.col("feature_date").between(F.lit(chart_from), F.lit(run_date)))
        .select("athlete_id", "feature_date", "daily_load", "ctl", "atl", "tsb")
        .toPandas()
    )
    predictions = latest_predictions(spark, names, run_date)

    index_path = render_reports(weeks, chart, predictions, run_date, now, output_dir / "reports")
    athletes = weeks["athlete_id"].nunique()
    log.info("weekly report to %s: %d rows merged, %d athlete pages in %s", run_date, rows, athletes, index_path.parent)
    return WeeklyReportResult(rows=rows, athletes=athletes, index_path=index_path)


def latest_predictions(spark: SparkSession, names: TableNames, run_date: date) -> pd.DataFrame | None:
    """Per athlete, the prediction rows of its latest ``as_of_date <= run_date``; None without the table."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    table = names(ATHLETE_PREDICTIONS)
    if not spark.catalog.tableExists(table):
        return None
    per_athlete = Window.partitionBy("athlete_id")
    return (
        spark.table(table)
        .where(F.col("as_of_date") <= F.lit(run_date))
        .withColumn("_latest", F.max("as_of_date").over(per_athlete))
        .where(F.col("as_of_date") == F.col("_latest"))
        .select(
            "athlete_id",
            "as_of_date",
            "race_distance_m",
            "predicted_finish_time_s",
            "predicted_pace_s_per_km",
            "model_name",
            "model_version",
        )
        .toPandas()
    )


# --- rendering (pure: pandas in, files/strings out) ---------------------------------------------


def render_reports(
    weeks: pd.DataFrame,
    chart: pd.DataFrame,
    predictions: pd.DataFrame | None,
    run_date: date,
    now: datetime,
    reports_dir: Path,
) -> Path:
    """Write one page per athlete in ``weeks`` and ``index.html`` into ``reports_dir``; returns the index."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    weeks_by = _split(weeks)
    chart_by = _split(chart)
    predictions_by = _split(predictions) if predictions is not None else {}
    pages: dict[str, str] = {}
    for athlete_id in sorted(weeks_by):
        page = render_athlete_page(
            athlete_id,
            weeks_by[athlete_id],
            chart_by.get(athlete_id, _empty_like(chart)),
            None if predictions is None else predictions_by.get(athlete_id, _empty_like(predictions)),
            run_date,
            now,
        )
        pages[athlete_id] = page_file_name(athlete_id)
        (reports_dir / pages[athlete_id]).write_text(page, encoding="utf-8")
    index_path = reports_dir / "index.html"
    index_path.write_text(render_index(weeks, pages, run_date, now), encoding="utf-8")
    return index_path


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def page_file_name(athlete_id: str) -> str:
    """``<athlete_id>.html``; ids that are not a safe file name (or are "index") get a slug plus a stable hash."""
    if _SAFE_NAME.fullmatch(athlete_id) and len(athlete_id) <= 200 and athlete_id.lower() != "index":
        return f"{athlete_id}.html"
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", athlete_id)[:60].strip("_") or "athlete"
    return f"{slug}-{zlib.crc32(athlete_id.encode()):08x}.html"


def render_athlete_page(
    athlete_id: str,
    weeks: pd.DataFrame,
    chart: pd.DataFrame,
    predictions: pd.DataFrame | None,
    run_date: date,
    now: datetime,
) -> str:
    """One self-contained HTML page: PMC chart (embedded PNG), last weeks, latest predictions.

    ``predictions`` None means the predictions table does not exist; empty means none for
    this athlete; either way the page says "no predictions yet".
    """
    png = pmc_chart_png(chart, athlete_id, run_date)
    image = base64.b64encode(png).decode("ascii")
    name = html.escape(athlete_id)
    alt = f"Performance Management Chart of {athlete_id}: CTL, ATL, TSB and daily load, {CHART_DAYS} days"
    return _page(
        f"Weekly report: {athlete_id}",
        f'<p><a href="index.html">&larr; all athletes</a></p>'
        f"<h1>Weekly report: {name}</h1>"
        f"<p class=meta>Up to {run_date.isoformat()} (UTC days) &middot; generated {html.escape(str(now))}</p>"
        f'<img src="data:image/png;base64,{image}" alt="{html.escape(alt)}" width="1000">'
        f"<h2>Last {REPORT_WEEKS} weeks</h2>{weeks_table(weeks)}"
        f"<h2>Predicted race times</h2>{predictions_table(predictions)}"
        f"<p class=meta>Flags: acwr_high = ACWR (rolling) &gt; {ACWR_HIGH}, acwr_low = ACWR &lt; {ACWR_LOW}, "
        f"monotony_high = monotony &gt; {MONOTONY_HIGH}, form_very_low = TSB &lt; {FORM_VERY_LOW:g}. "
        "Load, CTL, ATL and TSB are in TRIMP units.</p>",
    )


_WEEK_HEADERS = (
    "Week (Mon)",
    "To",
    "Sessions",
    "Distance (km)",
    "Duration (h:mm:ss)",
    "Load",
    "CTL",
    "ATL",
    "TSB",
    "ACWR rolling",
    "ACWR EWMA",
    "Monotony",
    "Flags",
)


def weeks_table(weeks: pd.DataFrame) -> str:
    """HTML table of the athlete's report rows, newest week first."""
    rows = []
    for week in weeks.sort_values("week_start", ascending=False).to_dict("records"):
        flags = flag_list(week["flags"])
        cells = (
            _day(week["week_start"]),
            _day(week["week_end"]),
            _number(week["sessions"], "{:.0f}"),
            _number(week["distance_m"] / 1000.0 if not _is_missing(week["distance_m"]) else None, "{:.1f}"),
            format_duration(week["duration_s"]),
            _number(week["weekly_load"], "{:.0f}"),
            _number(week["ctl"], "{:.1f}"),
            _number(week["atl"], "{:.1f}"),
            _number(week["tsb"], "{:.1f}"),
            _number(week["acwr_rolling"], "{:.2f}"),
            _number(week["acwr_ewma"], "{:.2f}"),
            _number(week["monotony_7d"], "{:.2f}"),
            ", ".join(flags),
        )
        css = ' class="flagged"' if flags else ""
        rows.append(f"<tr{css}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _WEEK_HEADERS)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def predictions_table(predictions: pd.DataFrame | None) -> str:
    """HTML table of one athlete's latest predictions, or the line "no predictions yet"."""
    if predictions is None or predictions.empty:
        return "<p>no predictions yet</p>"
    rows = []
    for p in predictions.sort_values("race_distance_m").to_dict("records"):
        cells = (
            distance_label(p["race_distance_m"]),
            format_duration(p["predicted_finish_time_s"]),
            format_pace(p["predicted_pace_s_per_km"]),
            f"{p['model_name']} v{p['model_version']}",
            _day(p["as_of_date"]),
        )
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("Distance", "Time (h:mm:ss)", "Pace", "Model", "As of"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_index(weeks: pd.DataFrame, pages: Mapping[str, str], run_date: date, now: datetime) -> str:
    """The index page: one line per athlete with the current week's state and a link to the page."""
    current = weeks[weeks["week_start"] == week_start_of(run_date)].set_index("athlete_id")
    rows = []
    for athlete_id, file_name in sorted(pages.items()):
        week = current.loc[athlete_id].to_dict() if athlete_id in current.index else {}
        flags = flag_list(week.get("flags"))
        link = f'<a href="{html.escape(quote(file_name))}">{html.escape(athlete_id)}</a>'
        cells = (
            _number(week.get("sessions"), "{:.0f}"),
            _number(week.get("weekly_load"), "{:.0f}"),
            _number(week.get("ctl"), "{:.1f}"),
            _number(week.get("tsb"), "{:.1f}"),
            _number(week.get("acwr_rolling"), "{:.2f}"),
            ", ".join(flags),
        )
        rows.append(f"<tr><td>{link}</td>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    headers = ("Athlete", "Sessions this week", "Load this week", "CTL", "TSB", "ACWR rolling", "Flags")
    head = "".join(f"<th>{h}</th>" for h in headers)
    return _page(
        "Weekly reports",
        f"<h1>Weekly reports</h1><p class=meta>Week of {week_start_of(run_date).isoformat()} up to "
        f"{run_date.isoformat()} &middot; {len(pages)} athletes &middot; generated {html.escape(str(now))}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>",
    )


def pmc_chart_png(chart: pd.DataFrame, athlete_id: str, run_date: date) -> bytes:
    """Performance Management Chart as PNG bytes: CTL/ATL/TSB lines over daily-load bars.

    ``chart`` holds ``feature_date``, ``daily_load``, ``ctl``, ``atl``, ``tsb`` (any days; the
    chart shows the :data:`CHART_DAYS` days ending on ``run_date``).
    """
    start = run_date - timedelta(days=CHART_DAYS - 1)
    data = chart.copy()
    data["day"] = pd.to_datetime(data["feature_date"])
    data = data[(data["day"] >= pd.Timestamp(start)) & (data["day"] <= pd.Timestamp(run_date))].sort_values("day")

    # Figure + Agg canvas directly: no pyplot global state, no GUI backend.
    fig = Figure(figsize=(10, 4.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    loads = ax.twinx()
    # One PolyCollection of day bars: ~10x faster than Axes.bar (one patch per day).
    x = mdates.date2num(data["day"].to_numpy())
    heights = data["daily_load"].fillna(0.0).to_numpy()
    bars = PolyCollection(
        [((d - 0.4, 0.0), (d - 0.4, h), (d + 0.4, h), (d + 0.4, 0.0)) for d, h in zip(x, heights, strict=True)],
        facecolors="#9aa5b1",
        edgecolors="none",
        alpha=0.55,
        label="Daily load (right axis)",
    )
    loads.add_collection(bars)
    loads.set_ylim(0.0, max(float(heights.max(initial=0.0)) * 1.1, 1.0))
    loads.set_ylabel("Daily load (TRIMP)")
    ax.axhline(0.0, color="#555555", linewidth=0.8)
    ax.plot(data["day"], data["ctl"], color="#1f5fbf", linewidth=2.0, label="CTL fitness (42-day)")
    ax.plot(data["day"], data["atl"], color="#d62728", linewidth=1.4, label="ATL fatigue (7-day)")
    ax.plot(data["day"], data["tsb"], color="#f39c12", linewidth=1.4, label="TSB form (CTL - ATL, day before)")
    ax.set_ylabel("CTL / ATL / TSB (TRIMP)")
    ax.set_xlabel(f"Date (UTC), {CHART_DAYS} days to {run_date.isoformat()}")
    ax.set_xlim(pd.Timestamp(start) - pd.Timedelta(days=1), pd.Timestamp(run_date) + pd.Timedelta(days=1))
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    # Lines above the bars: the bar axis is drawn first, the line axis on top of it.
    ax.set_zorder(loads.get_zorder() + 1)
    ax.patch.set_visible(False)
    if data.empty:
        ax.text(0.5, 0.5, "no feature rows in this period", transform=ax.transAxes, ha="center", color="#777777")
    # Mathtext would eat "$" in an id; show it literally.
    fig.suptitle(f"Performance Management Chart: {athlete_id}".replace("$", r"\$"), x=0.07, y=0.975, ha="left")
    # Legend in its own row above the plot so it never hides the lines.
    handles = ax.get_legend_handles_labels()[0] + [bars]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=4, fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.07, right=0.93, top=0.85, bottom=0.13)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# --- small pure helpers --------------------------------------------------------------------------

_DISTANCE_LABELS = {5000.0: "5K", 10000.0: "10K", 21097.5: "Half", 42195.0: "Marathon"}


def distance_label(distance_m: float) -> str:
    """5K / 10K / Half / Marathon for the standard distances, else kilometres (e.g. "15 km")."""
    for metres, label in _DISTANCE_LABELS.items():
        if math.isclose(distance_m, metres, abs_tol=0.5):
            return label
    return f"{distance_m / 1000.0:g} km"


def format_duration(seconds: float | None) -> str:
    """Seconds as h:mm:ss (rounded to the second), e.g. 5025 -> "1:23:45"; "–" when missing."""
    if _is_missing(seconds):
        return "–"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_pace(seconds_per_km: float | None) -> str:
    """Pace as m:ss/km (rounded to the second), e.g. 299.6 -> "5:00/km"; "–" when missing."""
    if _is_missing(seconds_per_km):
        return "–"
    minutes, secs = divmod(round(seconds_per_km), 60)
    return f"{minutes}:{secs:02d}/km"


def flag_list(flags: Any) -> list[str]:
    """The flags value as collected (list, numpy array or None) as a list of strings."""
    if flags is None or (isinstance(flags, float) and math.isnan(flags)):
        return []
    return [str(f) for f in flags]


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    try:
        return math.isnan(value)
    except TypeError:
        return False


def _number(value: Any, fmt: str) -> str:
    return "–" if _is_missing(value) else fmt.format(value)


def _day(value: Any) -> str:
    return "–" if _is_missing(value) else pd.Timestamp(value).date().isoformat()


def _split(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {str(key): part for key, part in frame.groupby("athlete_id", sort=False)}


def _empty_like(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[0:0]


_CSS = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#222;max-width:1100px}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:right}"
    "th{background:#f2f4f7}td:first-child,th:first-child{text-align:left}"
    "tr.flagged td{background:#fff4e5}.meta{color:#666;font-size:0.9em}img{max-width:100%;height:auto}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )
