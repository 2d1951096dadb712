"""Training rows: race labels + the athlete's profile + the features of the day before.

The point-in-time join is the feature view's `get_training_data` (features of day r-1 for a
race on day r). The Riegel input is the athlete's latest race strictly before day r. The
profile is the version valid at the start of the race day (`silver.athlete_profile_history`,
SCD type 2), not the latest one: a weight or heart-rate change after the race is not known on
the race day, so it must not be in the race's training row (no leakage from the profile).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from athlete_platform.domain.distances import RACE_DISTANCES_M
from athlete_platform.features import model_inputs as mi
from athlete_platform.features.feature_view import FeatureView
from athlete_platform.lakehouse import tables

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from athlete_platform.lakehouse.tables import TableNames


def races_with_previous(races: DataFrame) -> DataFrame:
    """Pure transform: each race + the athlete's latest race on an earlier day (nulls if none)
    and how many races they ran on earlier days (`races_before`, for the model card)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    earlier = (
        Window.partitionBy("athlete_id")
        .orderBy(F.col("race_date").cast("timestamp").cast("long"))
        .rangeBetween(Window.unboundedPreceding, -1)
    )
    # The latest earlier race = the max over (date, session_id) of strictly earlier days.
    latest = F.max(F.struct("race_date", "session_id", "distance_m", "finish_time_s")).over(earlier)
    return races.select(
        "session_id",
        "athlete_id",
        "race_date",
        "distance_m",
        "finish_time_s",
        latest["race_date"].alias("prev_race_date"),
        latest["distance_m"].alias("prev_distance_m"),
        latest["finish_time_s"].alias("prev_finish_time_s"),
        F.count(F.lit(1)).over(earlier).alias("races_before"),
    )


def profile_as_of(labels: DataFrame, history: DataFrame) -> DataFrame:
    """Pure transform: each race + the profile version valid at the start of its race day
    (valid_from <= day start < valid_to; version 1 has no start). Races of athletes without a
    valid profile are dropped, as with the latest-profile join."""
    from pyspark.sql import functions as F

    day_start = F.col("race_date").cast("timestamp")
    versions = history.select("valid_from", "valid_to", *mi.PROFILE_COLUMNS)
    return (
        labels.join(versions, "athlete_id")
        .where(
            (F.col("valid_from").isNull() | (F.col("valid_from") <= day_start))
            & (F.col("valid_to").isNull() | (F.col("valid_to") > day_start))
        )
        .drop("valid_from", "valid_to")
    )


def training_rows(spark: SparkSession, names: TableNames, run_date: date) -> tuple[pd.DataFrame, dict[str, int]]:
    """All labelled races up to `run_date` with their inputs, and the Delta versions read."""
    from pyspark.sql import functions as F

    from athlete_platform.lakehouse.delta import current_version

    for table in (tables.RACES, tables.ATHLETE_PROFILE_HISTORY, tables.ATHLETE_ROLLING_FEATURES):
        if not spark.catalog.tableExists(names(table)):
            from athlete_platform.errors import SetupError

            raise SetupError(f"{names(table)} does not exist yet: run `silver` and `features` first.")
    versions = {
        "races": current_version(spark, names(tables.RACES)),
        "athlete_profile_history": current_version(spark, names(tables.ATHLETE_PROFILE_HISTORY)),
    }
    races = spark.read.option("versionAsOf", versions["races"]).table(names(tables.RACES))
    history = spark.read.option("versionAsOf", versions["athlete_profile_history"]).table(
        names(tables.ATHLETE_PROFILE_HISTORY)
    )
    labels = profile_as_of(races_with_previous(races.where(F.col("race_date") <= F.lit(run_date))), history)
    view = FeatureView(spark, names)
    versions["features"] = view.table_version
    rows = view.get_training_data(labels, event_date_col="race_date").withColumn("event_date", F.col("race_date"))
    frame = rows.toPandas().sort_values(["race_date", "athlete_id", "session_id"], kind="stable")
    return frame.reset_index(drop=True), versions


#: Days of athlete states, ending on the training run date, that make the monitoring reference.
REFERENCE_DAYS = 28


def reference_states(spark: SparkSession, names: TableNames, run_date: date, versions: dict[str, int]) -> pd.DataFrame:
    """Every athlete's state on each of the `REFERENCE_DAYS` days up to `run_date`, as batch
    scoring frames it (one row per athlete-day, for a race the next day at 5 km): the population
    the model is promoted to score, which monitoring compares later scoring windows against.
    Read at the Delta versions training read (`versions`), the profile as batch scoring reads it."""
    from datetime import timedelta

    from pyspark.sql import functions as F

    from athlete_platform.features.scoring_frame import scoring_rows

    view = FeatureView(spark, names, version=versions["features"])
    features = view.get_batch_data(run_date - timedelta(days=REFERENCE_DAYS - 1), run_date)
    races = spark.read.option("versionAsOf", versions["races"]).table(names(tables.RACES))
    rows = scoring_rows(features, races, spark.table(names(tables.ATHLETES)))
    frame = rows.where(F.col("distance_m") == F.lit(RACE_DISTANCES_M[0])).toPandas()
    return frame.sort_values(["feature_date", "athlete_id"], kind="stable").reset_index(drop=True)
