"""The frame batch scoring reads (pure Spark transform): each feature row of an athlete-day x the
standard race distances, with the athlete's profile and latest race so far. Batch inference
scores it; training builds the same frame over its last 28 days as the reference population
that monitoring compares scoring windows against (`training.reference`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from athlete_platform.domain.distances import RACE_DISTANCES_M
from athlete_platform.features import model_inputs as mi

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def scoring_rows(features: DataFrame, races: DataFrame, athletes: DataFrame) -> DataFrame:
    """Pure transform: feature rows x standard distances + profile + latest race so far."""
    from pyspark.sql import functions as F

    distances = features.sparkSession.createDataFrame([(d,) for d in RACE_DISTANCES_M], "distance_m double")
    days = features.select("athlete_id", "feature_date")
    previous = (
        days.join(races.select("athlete_id", "race_date", "session_id", "distance_m", "finish_time_s"), "athlete_id")
        .where(F.col("race_date") <= F.col("feature_date"))
        .groupBy("athlete_id", "feature_date")
        .agg(F.max(F.struct("race_date", "session_id", "distance_m", "finish_time_s")).alias("prev"))
        .select(
            "athlete_id",
            "feature_date",
            F.col("prev.race_date").alias("prev_race_date"),
            F.col("prev.distance_m").alias("prev_distance_m"),
            F.col("prev.finish_time_s").alias("prev_finish_time_s"),
        )
    )
    return (
        features.join(previous, ["athlete_id", "feature_date"], "left")
        .join(athletes.select(*mi.PROFILE_COLUMNS), "athlete_id")
        .crossJoin(distances)
        .withColumn("as_of_date", F.col("feature_date"))
        # The prediction is for a race the day after the features' day.
        .withColumn("event_date", F.date_add("feature_date", 1))
    )
