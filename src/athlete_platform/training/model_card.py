"""A model version's evaluation card (issue 14): tables and plots a person looks at, one HTML file.

From the held-out races of a training run (`EVALUATION_COLUMNS`): MAPE of the model against
Riegel by race distance, by the athlete's racing experience (races before this one) and by
fitness (CTL bucket); how often the P10-P90 interval held the real time, per distance; a
calibration plot (predicted against actual finish time) and the percentage errors per distance.
Pure pandas and matplotlib (Agg canvas, no pyplot state); the training step logs the page as
an MLflow artifact of the version's run.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from athlete_platform.domain.distances import DISTANCE_NAMES

#: What the card is computed from: one row per held-out race.
EVALUATION_COLUMNS = ("distance_m", "actual_s", "predicted_s", "p10_s", "p90_s", "riegel_s", "races_before", "ctl")

EXPERIENCE_BUCKETS = ((0, 0, "first race"), (1, 2, "1-2 before"), (3, 5, "3-5 before"), (6, None, "6+ before"))
CTL_BUCKETS = ((None, 30.0, "CTL < 30"), (30.0, 50.0, "CTL 30-50"), (50.0, 70.0, "CTL 50-70"), (70.0, None, "CTL 70+"))


def card_path(model_name: str, version: str) -> Path:
    """Where a version's card is written, relative to the output folder (`models/<name>-v<N>.html`)."""
    return Path("models") / f"{model_name}-v{version}.html"


def experience_bucket(races_before: float) -> str:
    if races_before is None or np.isnan(races_before):
        return "unknown"
    races_before = int(races_before)
    for low, high, label in EXPERIENCE_BUCKETS:
        if races_before >= low and (high is None or races_before <= high):
            return label
    return "unknown"


def ctl_bucket(ctl: float) -> str:
    if ctl is None or np.isnan(ctl):
        return "CTL unknown"
    for low, high, label in CTL_BUCKETS:
        if (low is None or ctl >= low) and (high is None or ctl < high):
            return label
    return "CTL unknown"


def distance_label(distance_m: float) -> str:
    return DISTANCE_NAMES.get(distance_m, f"{distance_m / 1000:g} km")


def breakdown(frame: pd.DataFrame, group: pd.Series) -> pd.DataFrame:
    """Per group: races, model MAPE, Riegel MAPE (its rows only), interval coverage."""
    error = (frame["predicted_s"] - frame["actual_s"]).abs() / frame["actual_s"]
    riegel = (frame["riegel_s"] - frame["actual_s"]).abs() / frame["actual_s"]
    inside = ((frame["actual_s"] >= frame["p10_s"]) & (frame["actual_s"] <= frame["p90_s"])).astype(float)
    inside = inside.where(frame["p10_s"].notna())  # a version without intervals: no coverage, not 0 %
    parts = pd.DataFrame({"group": group.to_numpy(), "error": error, "riegel": riegel, "inside": inside})
    table = parts.groupby("group", sort=False).agg(
        races=("error", "size"),
        model_mape=("error", "mean"),
        riegel_mape=("riegel", "mean"),  # mean skips races without a previous race
        riegel_races=("riegel", "count"),
        p10_p90_coverage=("inside", "mean"),
    )
    return table


def tables(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The card's tables, keyed by title; rows in a fixed, readable order."""
    frame = frame.reset_index(drop=True)
    by_distance = breakdown(frame, frame["distance_m"].map(distance_label))
    order = [distance_label(d) for d in sorted(frame["distance_m"].unique())]
    experience = breakdown(frame, frame["races_before"].map(experience_bucket))
    fitness = breakdown(frame, frame["ctl"].map(ctl_bucket))
    return {
        "By race distance": by_distance.reindex(order),
        "By racing experience": _in_order(experience, [b[2] for b in EXPERIENCE_BUCKETS] + ["unknown"]),
        "By fitness (CTL on race day)": _in_order(fitness, [b[2] for b in CTL_BUCKETS] + ["CTL unknown"]),
    }


def _in_order(table: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """`table`'s rows in the order of `labels` (every row is one of them)."""
    return table.reindex([label for label in labels if label in table.index])


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def calibration_png(frame: pd.DataFrame) -> bytes:
    """Predicted against actual finish time (minutes, log scales), with the P10-P90 range and y = x."""
    fig = Figure(figsize=(6, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    actual, predicted = frame["actual_s"] / 60, frame["predicted_s"] / 60
    # The range itself, not offsets around the point: a point outside its own range stays drawable.
    ax.vlines(actual, frame["p10_s"] / 60, frame["p90_s"] / 60, color="#1f5fbf", alpha=0.35, linewidth=0.6)
    ax.plot(actual, predicted, "o", markersize=3, alpha=0.7, color="#1f5fbf", label="race (bar: P10-P90)")
    ends = [min(actual.min(), predicted.min()) * 0.9, max(actual.max(), predicted.max()) * 1.1]
    ax.plot(ends, ends, color="#555555", linewidth=1.0, label="predicted = actual")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Actual finish time (min)")
    ax.set_ylabel("Predicted finish time (min)")
    ax.legend(loc="upper left")
    ax.grid(color="#dddddd", linewidth=0.6)
    return _png(fig)


def residuals_png(frame: pd.DataFrame) -> bytes:
    """The percentage error ((predicted - actual) / actual) of each race, per distance."""
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    distances = sorted(frame["distance_m"].unique())
    errors = [
        100
        * (frame.loc[frame["distance_m"] == d, "predicted_s"] - frame.loc[frame["distance_m"] == d, "actual_s"])
        / frame.loc[frame["distance_m"] == d, "actual_s"]
        for d in distances
    ]
    ax.boxplot(errors, tick_labels=[distance_label(d) for d in distances])
    ax.axhline(0.0, color="#555555", linewidth=0.8)
    ax.set_ylabel("Error (% of actual time; + = predicted slower)")
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    return _png(fig)


def _table_html(title: str, table: pd.DataFrame) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("", "Races", "Model MAPE", "Riegel MAPE (races)", "P10-P90 coverage"))
    rows = []
    for label, r in table.iterrows():
        riegel = "–" if np.isnan(r["riegel_mape"]) else f"{r['riegel_mape']:.2%} ({int(r['riegel_races'])})"
        coverage = "–" if np.isnan(r["p10_p90_coverage"]) else f"{r['p10_p90_coverage']:.0%}"
        cells = (str(label), f"{int(r['races'])}", f"{r['model_mape']:.2%}", riegel, coverage)
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f"<h2>{html.escape(title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th:first-child,td:first-child{text-align:left}"
    "th{background:#f0f2f5}.meta{color:#555}img{max-width:100%}"
)


def render(model_name: str, version: str, frame: pd.DataFrame, summary: dict[str, float]) -> str:
    """The card as one self-contained HTML page (plots embedded as data URIs)."""
    missing = [c for c in EVALUATION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"the evaluation frame lacks {missing}; it needs {list(EVALUATION_COLUMNS)}")
    if frame.empty:
        raise ValueError("no held-out races to evaluate: the model card needs at least one")
    facts = " &middot; ".join(f"{html.escape(k)} {v:.2%}" for k, v in summary.items())
    images = "".join(
        f'<h2>{title}</h2><img alt="{title}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for title, png in (
            ("Calibration: predicted against actual", calibration_png(frame)),
            ("Errors by race distance", residuals_png(frame)),
        )
    )
    body = (
        f"<h1>Model card: {html.escape(model_name)} v{html.escape(version)}</h1>"
        f"<p class=meta>{len(frame)} held-out races &middot; {facts}</p>"
        + "".join(_table_html(title, table) for title, table in tables(frame).items())
        + images
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(model_name)} v{html.escape(version)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )
