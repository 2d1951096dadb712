"""A/B report: which serving variant predicted the races that followed better.

The serving API routes each athlete, sticky, to one variant (a registry alias such as
`champion` or `challenger`) and logs every prediction (`gold.online_inference_log`). Once the
athletes have raced, each variant's predictions can be scored against the real finish times:

- **Matching.** A logged race prediction (route `race-predictions`) is for a race on or after
  its anchor day: the request's `race_date`, else the day after its `feature_date` (what the
  API predicts by default, as batch inference does). It is matched to the athlete's first race
  at that distance (within 0.5 m) from the anchor day to `horizon_days` later.
- **One prediction per race and variant.** An athlete who asked ten times before a race would
  otherwise weigh ten times: per (variant, athlete, race) only the prediction made on the
  latest features before the race counts (ties: the latest logged).
- **Score.** MAPE of the finish time per variant, with a 95 % interval from a bootstrap over
  athletes (an athlete's races are not independent of each other, so athletes are resampled,
  not races). Each variant is compared with the control (`champion` when it is a variant,
  else the variant with most requests) on the bootstrap distribution of the MAPE difference:
  a variant "wins" only when the whole 95 % interval of the difference is on its side;
  otherwise the report says there is no significant difference yet and how many races each
  side has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from athlete_platform.lakehouse import tables

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from athlete_platform.lakehouse.tables import TableNames

ROUTE = "race-predictions"
DEFAULT_HORIZON_DAYS = 28
DISTANCE_TOLERANCE_M = 0.5
BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95
MATCHED_COLUMNS = (
    "variant",
    "athlete_id",
    "session_id",
    "race_date",
    "race_distance_m",
    "model_version",
    "predicted_finish_time_s",
    "finish_time_s",
)


def match_races(log: DataFrame, races: DataFrame, horizon_days: int = DEFAULT_HORIZON_DAYS) -> DataFrame:
    """Pure transform: logged race predictions x silver.races -> one row per (variant, athlete, race)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    predictions = (
        log.where((F.col("route") == ROUTE) & F.col("predicted_finish_time_s").isNotNull())
        .where(F.col("athlete_id").isNotNull() & F.col("race_distance_m").isNotNull())
        .withColumn("anchor", F.coalesce("race_date", F.date_add("feature_date", 1), F.to_date("logged_at")))
        .select(
            "request_id",
            "prediction_index",
            "logged_at",
            "variant",
            "model_version",
            "athlete_id",
            "feature_date",
            "anchor",
            "race_distance_m",
            "predicted_finish_time_s",
        )
    )
    r = races.select(
        "athlete_id",
        "session_id",
        F.col("race_date").alias("actual_race_date"),
        F.col("distance_m").alias("actual_distance_m"),
        "finish_time_s",
    )
    joined = predictions.join(r, "athlete_id").where(
        (F.abs(F.col("actual_distance_m") - F.col("race_distance_m")) <= DISTANCE_TOLERANCE_M)
        & (F.col("actual_race_date") >= F.col("anchor"))
        & (F.col("actual_race_date") <= F.date_add("anchor", horizon_days))
    )
    first_race = Window.partitionBy("request_id", "prediction_index").orderBy("actual_race_date", "session_id")
    latest_prediction = Window.partitionBy("variant", "athlete_id", "session_id").orderBy(
        F.col("feature_date").desc_nulls_last(), F.col("logged_at").desc(), F.col("request_id").desc()
    )
    return (
        joined.withColumn("nth_race", F.row_number().over(first_race))
        .where("nth_race = 1")
        .withColumn("nth_prediction", F.row_number().over(latest_prediction))
        .where("nth_prediction = 1")
        .select(
            "variant",
            "athlete_id",
            "session_id",
            F.col("actual_race_date").alias("race_date"),
            "race_distance_m",
            "model_version",
            "predicted_finish_time_s",
            "finish_time_s",
        )
    )


@dataclass(frozen=True)
class VariantScore:
    variant: str
    requests: int
    races: int
    athletes: int
    model_versions: tuple[str, ...]
    mape: float  # nan without races
    mape_low: float
    mape_high: float


@dataclass(frozen=True)
class Comparison:
    variant: str
    control: str
    difference: float  # MAPE(variant) - MAPE(control)
    low: float
    high: float
    verdict: str  # "variant", "control" or "none"


@dataclass(frozen=True)
class ABReport:
    scores: list[VariantScore]
    comparisons: list[Comparison]
    control: str | None
    horizon_days: int

    def lines(self) -> list[str]:
        out = [
            f"A/B report: race predictions scored on the athlete's first race at that distance within "
            f"{self.horizon_days} days (one prediction per variant, athlete and race; 95 % bootstrap intervals "
            "over athletes)",
            f"  {'variant':<14} {'requests':>9} {'races':>6} {'athletes':>8}  {'MAPE':>7}  "
            f"{'95 % interval':<17} versions",
        ]
        for s in self.scores:
            interval = f"{s.mape_low:.2%} – {s.mape_high:.2%}" if np.isfinite(s.mape_low) else "-"
            mape = f"{s.mape:.2%}" if np.isfinite(s.mape) else "-"
            out.append(
                f"  {s.variant:<14} {s.requests:>9,} {s.races:>6,} {s.athletes:>8,}  {mape:>7}  {interval:<17} "
                f"{', '.join('v' + v for v in s.model_versions) or '-'}"
            )
        if not self.scores:
            out.append("  no logged race predictions: serve some (athlete-platform serve), then flush-inference-log")
        for c in self.comparisons:
            if not np.isfinite(c.difference):
                out.append(f"  {c.variant} vs {c.control}: not comparable yet (a side has no scored races)")
                continue
            diff = f"{c.difference:+.2%} (95 % interval {c.low:+.2%} to {c.high:+.2%})"
            if c.verdict == "variant":
                out.append(f"  winner: {c.variant} beats {c.control}: MAPE {diff}")
            elif c.verdict == "control":
                out.append(f"  winner: {c.control} beats {c.variant}: MAPE difference {diff}")
            else:
                out.append(f"  no significant difference yet between {c.variant} and {c.control}: {diff}")
        return out


def bootstrap_mape(frame: pd.DataFrame, rng: np.random.Generator, samples: int) -> np.ndarray:
    """MAPE of `samples` resamples of the athletes (with replacement), all of each athlete's races."""
    ape = (frame["predicted_finish_time_s"] - frame["finish_time_s"]).abs() / frame["finish_time_s"]
    per_athlete = ape.groupby(frame["athlete_id"]).agg(["sum", "count"])
    sums, counts = per_athlete["sum"].to_numpy(float), per_athlete["count"].to_numpy(float)
    picks = rng.integers(0, len(sums), size=(samples, len(sums)))
    return sums[picks].sum(axis=1) / counts[picks].sum(axis=1)


def ab_report(
    matched: pd.DataFrame,
    requests: pd.Series,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> ABReport:
    """Pure: per-variant scores and comparisons with the control.

    Args:
        matched: rows of `match_races` (MATCHED_COLUMNS).
        requests: logged race-prediction requests per variant (index: variant).
    """
    rng = np.random.default_rng(seed)
    tail = (1 - CONFIDENCE) / 2
    variants = sorted(set(requests.index) | set(matched["variant"]))
    scores, draws = [], {}
    for variant in variants:
        rows = matched[matched["variant"] == variant]
        if len(rows):
            ape = (rows["predicted_finish_time_s"] - rows["finish_time_s"]).abs() / rows["finish_time_s"]
            draws[variant] = bootstrap_mape(rows, rng, samples)
            mape = float(ape.mean())
            low, high = np.quantile(draws[variant], [tail, 1 - tail])
        else:
            mape = low = high = float("nan")
        scores.append(
            VariantScore(
                variant,
                int(requests.get(variant, 0)),
                len(rows),
                int(rows["athlete_id"].nunique()),
                tuple(sorted(rows["model_version"].astype(str).unique(), key=_version_order)),
                mape,
                float(low),
                float(high),
            )
        )
    control = "champion" if "champion" in variants else (requests.idxmax() if len(requests) else None)
    comparisons = []
    for variant in variants:
        if variant == control:
            continue
        if variant not in draws or control not in draws:
            comparisons.append(Comparison(variant, control, float("nan"), float("nan"), float("nan"), "none"))
            continue
        difference = draws[variant] - draws[control]
        low, high = np.quantile(difference, [tail, 1 - tail])
        point = next(s.mape for s in scores if s.variant == variant) - next(
            s.mape for s in scores if s.variant == control
        )
        verdict = "variant" if high < 0 else "control" if low > 0 else "none"
        comparisons.append(Comparison(variant, control, point, float(low), float(high), verdict))
    return ABReport(scores, comparisons, control, horizon_days)


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)


def build_ab_report(
    spark: SparkSession, names: TableNames, horizon_days: int = DEFAULT_HORIZON_DAYS, seed: int = 0
) -> ABReport:
    """Read the inference log and silver.races, match, score."""
    from pyspark.sql import functions as F

    from athlete_platform.errors import PlatformError

    log_table = names(tables.ONLINE_INFERENCE_LOG)
    if not spark.catalog.tableExists(log_table):
        raise PlatformError(
            f"{log_table} does not exist yet: serve predictions (athlete-platform serve), then run "
            "`athlete-platform flush-inference-log` to move the API's log into it."
        )
    log = spark.table(log_table)
    requests = (
        log.where(F.col("route") == ROUTE).groupBy("variant").agg(F.countDistinct("request_id").alias("n")).toPandas()
    )
    matched = match_races(log, spark.table(names(tables.RACES)), horizon_days).toPandas()
    return ab_report(matched, requests.set_index("variant")["n"], horizon_days, seed=seed)
