"""The live pace coach's promotion gate: pure functions on the scored held-out snapshots.

Bars (finish-time MAPE, lower is better), per group of held-out rows and per fraction-done
bucket:

- **even pace**: `elapsed_s / fraction_done`;
- **pre-race**: the time estimator champion's prediction for that race, made before the start;
- **live champion**: the current `live_pace_coach` champion on the same rows (when there is one).

Groups: **held-out races** are the races on or after the time cutoff of athletes that are
trained on; **held-out athletes** are every race of the athletes held out by
`training.pipeline.is_heldout_athlete` (never seen in training). The split is the time
estimator's own (`split_rows` on the same race frame), so its pre-race predictions are
out-of-sample on exactly these races.

A new version becomes champion only if it beats even pace *and* pre-race in every bucket of
both groups, and the live champion over all fractions of each group (as the time estimator
must beat its champion on its held-out set). A bucket without rows, or a bar that cannot be
scored (no time estimator champion), fails the gate: nothing unmeasured is promoted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

GROUPS: tuple[str, ...] = ("heldout_races", "heldout_athletes")
#: (low, high, tag): fraction done in [low, high); the last bucket includes 1.
BUCKETS: tuple[tuple[float, float, str], ...] = (
    (0.0, 0.25, "b00_25"),
    (0.25, 0.5, "b25_50"),
    (0.5, 0.75, "b50_75"),
    (0.75, 1.0, "b75_100"),
)
#: Predictor columns of the scored frame: the new model, then the bars.
PREDICTORS: tuple[str, ...] = ("live", "even_pace", "prerace", "champion")
BARS_PER_BUCKET = ("even_pace", "prerace")


def bucket_of(fraction: np.ndarray) -> np.ndarray:
    """The bucket tag of each fraction done."""
    fraction = np.asarray(fraction, float)
    tags = np.full(fraction.shape, "", dtype=object)
    for low, high, tag in BUCKETS:
        inside = (fraction >= low) & ((fraction < high) | ((high == 1.0) & (fraction <= 1.0)))
        tags[inside] = tag
    return tags


def _mape(predicted: pd.Series, actual: pd.Series) -> float:
    predicted, actual = predicted.to_numpy(float), actual.to_numpy(float)
    if len(actual) == 0 or not np.isfinite(predicted).all():
        return float("nan")
    return float(np.mean(np.abs(predicted - actual) / actual))


def gate_table(scored: pd.DataFrame) -> pd.DataFrame:
    """MAPE of each predictor per group and bucket (and `all`), with row counts.

    `scored` has `group`, `fraction`, `finish_time_s` and one column per predictor in PREDICTORS
    (`champion` may be absent or NaN: no live champion yet).
    """
    rows = []
    frame = scored.assign(bucket=bucket_of(scored["fraction"]))
    for group in GROUPS:
        in_group = frame[frame["group"] == group]
        for tag in [*(b[2] for b in BUCKETS), "all"]:
            part = in_group if tag == "all" else in_group[in_group["bucket"] == tag]
            row = {"group": group, "bucket": tag, "rows": len(part), "races": part["session_id"].nunique()}
            for name in PREDICTORS:
                row[name] = _mape(part[name], part["finish_time_s"]) if name in part else float("nan")
            rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    failures: tuple[str, ...]  # every bar not beaten, in words

    @property
    def summary(self) -> str:
        if self.promoted:
            return "beats even pace and pre-race in every bucket of both groups, and the live champion: promoted"
        shown = "; ".join(self.failures[:6]) + (
            f"; and {len(self.failures) - 6} more" if len(self.failures) > 6 else ""
        )
        return f"not promoted (champion unchanged): {shown}"


def gate_decision(table: pd.DataFrame, prerace_problem: str | None = None) -> GateDecision:
    """Whether the new version passes (see the module docstring); `prerace_problem` says why the
    pre-race bar could not be scored, if it could not."""
    failures: list[str] = [prerace_problem] if prerace_problem else []
    for row in table.itertuples(index=False):
        where = f"{row.group} {row.bucket}"
        if row.bucket != "all":
            if row.rows == 0:
                failures.append(f"{where}: no held-out snapshots")
                continue
            for bar in BARS_PER_BUCKET:
                live, other = row.live, getattr(row, bar)
                if bar == "prerace" and prerace_problem:
                    continue
                if not (np.isfinite(live) and np.isfinite(other) and live < other):
                    failures.append(f"{where}: live {live:.4f} vs {bar.replace('_', ' ')} {other:.4f}")
        elif np.isfinite(row.champion) and not (np.isfinite(row.live) and row.live < row.champion):
            failures.append(f"{where}: live {row.live:.4f} vs live champion {row.champion:.4f}")
    return GateDecision(not failures, tuple(failures))


def gate_metrics(table: pd.DataFrame) -> dict[str, float]:
    """Every number of the table as MLflow metrics: `<group>_<predictor>_mape_<bucket>`, `<group>_rows_<bucket>`."""
    out: dict[str, float] = {}
    for row in table.itertuples(index=False):
        out[f"{row.group}_rows_{row.bucket}"] = float(row.rows)
        for name in PREDICTORS:
            value = getattr(row, name)
            if np.isfinite(value):
                out[f"{row.group}_{name}_mape_{row.bucket}"] = float(value)
    return out


def format_gate_table(table: pd.DataFrame) -> str:
    """The table as text, one line per group and bucket, MAPE in percent."""
    lines = [
        f"{'group':<17} {'bucket':<8} {'rows':>6} {'races':>6} {'live':>7} {'even':>7} {'prerace':>8} {'champ':>7}"
    ]
    for row in table.itertuples(index=False):
        cells = [f"{100 * getattr(row, n):6.2f}%" if np.isfinite(getattr(row, n)) else f"{'-':>7}" for n in PREDICTORS]
        head = f"{row.group:<17} {row.bucket:<8} {row.rows:>6} {row.races:>6}"
        lines.append(f"{head} {cells[0]} {cells[1]} {cells[2]:>8} {cells[3]}")
    return "\n".join(lines)
