"""Weekly report rendering: self-contained HTML pages (PMC chart as an embedded PNG), no Spark.

pandas in, strings/files out: one page per athlete (Performance Management Chart, the last
:data:`~athlete_platform.reporting.weekly_summary.REPORT_WEEKS` weeks, the latest predictions) and
an index page, plus the formatting helpers they use. Unit-tested without Spark.

matplotlib is imported at module import: set ``MPLCONFIGDIR`` before importing this module.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import zlib
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from athlete_platform.domain.distances import DISTANCE_SHORT_NAMES
from athlete_platform.reporting.weekly_summary import (
    ACWR_HIGH,
    ACWR_LOW,
    CHART_DAYS,
    FORM_VERY_LOW,
    MONOTONY_HIGH,
    REPORT_WEEKS,
    is_missing,
    week_start_of,
)


def render_reports(
    weeks: pd.DataFrame,
    chart: pd.DataFrame,
    predictions: pd.DataFrame | None,
    run_date: date,
    now: datetime,
    reports_dir: Path,
    model_cards: Mapping[str, str] | None = None,
) -> Path:
    """Write one page per athlete in ``weeks`` and ``index.html`` into ``reports_dir``; returns the index.
    ``model_cards`` maps "model vN" to its card's address relative to ``reports_dir`` (linked from the index)."""
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
    index_path.write_text(render_index(weeks, pages, run_date, now, model_cards), encoding="utf-8")
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
            _number(week["distance_m"] / 1000.0 if not is_missing(week["distance_m"]) else None, "{:.1f}"),
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
            format_range(p.get("predicted_finish_time_p10_s"), p.get("predicted_finish_time_p90_s")),
            format_pace(p["predicted_pace_s_per_km"]),
            f"{p['model_name']} v{p['model_version']}",
            _day(p["as_of_date"]),
        )
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    headers = ("Distance", "Time (h:mm:ss)", "Likely range (8 in 10 races)", "Pace", "Model", "As of")
    head = "".join(f"<th>{h}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def format_range(p10_s: float | None, p90_s: float | None) -> str:
    """ "h:mm:ss – h:mm:ss" (P10 to P90), or "–" when the model version has no interval."""
    if is_missing(p10_s) or is_missing(p90_s):
        return "–"
    return f"{format_duration(p10_s)} – {format_duration(p90_s)}"


def days_into_week(run_date: date) -> int:
    """How many days of `run_date`'s week (Monday first) the report covers: 1 to 7."""
    return (run_date - week_start_of(run_date)).days + 1


def risk_order(pages: Mapping[str, str], current: pd.DataFrame) -> list[str]:
    """Athletes most at risk first: more flags first, then the higher rolling ACWR (missing last),
    then by id. A coach reads the top of the list."""

    def key(athlete_id: str) -> tuple:
        week = current.loc[athlete_id].to_dict() if athlete_id in current.index else {}
        acwr = week.get("acwr_rolling")
        return (-len(flag_list(week.get("flags"))), is_missing(acwr), -(0.0 if is_missing(acwr) else acwr), athlete_id)

    return sorted(pages, key=key)


def render_index(
    weeks: pd.DataFrame,
    pages: Mapping[str, str],
    run_date: date,
    now: datetime,
    model_cards: Mapping[str, str] | None = None,
) -> str:
    """The index page: one line per athlete with the current week's state and a link to the page,
    athletes most at risk first (`risk_order`); a week still in progress says how much of it is in.
    Below the table, a link to the model card of each model version behind the predictions."""
    current = weeks[weeks["week_start"] == week_start_of(run_date)].set_index("athlete_id")
    rows = []
    for athlete_id in risk_order(pages, current):
        file_name = pages[athlete_id]
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
    days = days_into_week(run_date)
    partial = f" (partial week: {days} of 7 days)" if days < 7 else ""
    headers = ("Athlete", "Sessions this week", "Load this week", "CTL", "TSB", "ACWR rolling", "Flags")
    head = "".join(f"<th>{h}</th>" for h in headers)
    return _page(
        "Weekly reports",
        f"<h1>Weekly reports</h1><p class=meta>Week of {week_start_of(run_date).isoformat()} up to "
        f"{run_date.isoformat()}{partial} &middot; {len(pages)} athletes, most at risk first &middot; "
        f"generated {html.escape(str(now))}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        + model_cards_list(model_cards or {}),
    )


def model_cards_list(model_cards: Mapping[str, str]) -> str:
    """ "Model cards: <a>model vN</a>, ..." (nothing when no card is known)."""
    if not model_cards:
        return ""
    links = ", ".join(
        f'<a href="{html.escape(href)}">{html.escape(label)}</a>' for label, href in sorted(model_cards.items())
    )
    return f"<p>Model cards (how accurate the predictions are, and how often their range holds): {links}</p>"


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


def distance_label(distance_m: float) -> str:
    """5K / 10K / Half / Marathon for the standard distances, else kilometres (e.g. "15 km")."""
    for metres, label in DISTANCE_SHORT_NAMES.items():
        if math.isclose(distance_m, metres, abs_tol=0.5):
            return label
    return f"{distance_m / 1000.0:g} km"


def format_duration(seconds: float | None) -> str:
    """Seconds as h:mm:ss (rounded to the second), e.g. 5025 -> "1:23:45"; "–" when missing."""
    if is_missing(seconds):
        return "–"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_pace(seconds_per_km: float | None) -> str:
    """Pace as m:ss/km (rounded to the second), e.g. 299.6 -> "5:00/km"; "–" when missing."""
    if is_missing(seconds_per_km):
        return "–"
    minutes, secs = divmod(round(seconds_per_km), 60)
    return f"{minutes}:{secs:02d}/km"


def flag_list(flags: Any) -> list[str]:
    """The flags value as collected (list, numpy array or None) as a list of strings."""
    if flags is None or (isinstance(flags, float) and math.isnan(flags)):
        return []
    return [str(f) for f in flags]


def _number(value: Any, fmt: str) -> str:
    return "–" if is_missing(value) else fmt.format(value)


def _day(value: Any) -> str:
    return "–" if is_missing(value) else pd.Timestamp(value).date().isoformat()


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
