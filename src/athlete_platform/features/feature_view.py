"""The offline feature view over ``feature_store.athlete_rolling_features``.

Feature-store vocabulary (as in Hopsworks): a *feature view* is a read-only, versioned
selection of features that training and batch inference read through, so both see the
same columns. Each view reads ONE Delta version of the feature table: the latest at
construction time unless a version is pinned, so every read of one view is consistent and
:attr:`FeatureView.table_version` says exactly what was read (for traceability).

Rows returned carry ``athlete_id`` plus :data:`~athlete_platform.features.rolling.FEATURE_COLUMNS`
(``feature_date`` and the features); the lineage columns ``computed_at`` and ``_run_id`` are
not features and are left out.

Online, as in Hopsworks, the same view answers ``get_feature_vector`` / ``get_feature_vectors``
(inherited from :class:`~athlete_platform.features.online_view.OnlineFeatureView`, which the
serving API uses on its own: it needs no Spark session).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from athlete_platform.errors import SetupError
from athlete_platform.features.online_view import ATHLETE_KEY, FEATURE_DATE, OnlineFeatureView, OnlineRows
from athlete_platform.features.rolling import FEATURE_COLUMNS
from athlete_platform.lakehouse.tables import ATHLETE_ROLLING_FEATURES, TableNames

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# ATHLETE_KEY (the entity key) and FEATURE_DATE (the calendar day a feature row describes, end
# of that day) are named once, in online_view, for the offline and the online reads.

_JOIN_KEY = "_fv_athlete_id"
_JOIN_DAY = "_fv_feature_day"
_RANK = "_fv_rank"


class FeatureView(OnlineFeatureView):
    """Read-only view of the athlete rolling features at one Delta version of the table.

    Offline reads use Spark; the online vector methods (``get_feature_vector[s]``) read the
    online store given as ``store`` here or per call, as :class:`OnlineFeatureView` does.
    """

    def __init__(
        self, spark: SparkSession, names: TableNames, version: int | None = None, store: OnlineRows | None = None
    ) -> None:
        """Open the view on ``names(ATHLETE_ROLLING_FEATURES)``.

        Args:
            spark: The platform's Spark session.
            names: Table names of the configured catalog.
            version: Delta version to read (time travel); None pins the latest version now.
            store: The online store for ``get_feature_vector[s]`` (or pass it per call).

        Raises:
            SetupError: the feature table does not exist yet.
            ValueError: ``version`` is negative or newer than the table's latest version.
        """
        super().__init__(store)
        self._spark = spark
        self.table_name = names(ATHLETE_ROLLING_FEATURES)
        latest = self._latest_version()
        if version is not None and not 0 <= version <= latest:
            raise ValueError(
                f"version {version} of {self.table_name} does not exist: pick one in 0..{latest} "
                f"(see DESCRIBE HISTORY {self.table_name})."
            )
        self._version = latest if version is None else int(version)

    @property
    def table_version(self) -> int:
        """The Delta version of the feature table this view reads."""
        return self._version

    def get_batch_data(self, start_time: date, end_time: date) -> DataFrame:
        """Feature rows with ``start_time <= feature_date <= end_time`` (both bounds inclusive)."""
        features = self._features()
        return features.filter(features[FEATURE_DATE].between(_date_literal(start_time), _date_literal(end_time)))

    def get_latest(self, as_of: date) -> DataFrame:
        """Per athlete, the row with the latest ``feature_date <= as_of`` (athletes with none are absent)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        features = self._features().filter(F.col(FEATURE_DATE) <= _date_literal(as_of))
        newest_first = Window.partitionBy(ATHLETE_KEY).orderBy(F.col(FEATURE_DATE).desc())
        return features.withColumn(_RANK, F.row_number().over(newest_first)).filter(F.col(_RANK) == 1).drop(_RANK)

    def get_training_data(self, labels: DataFrame, event_date_col: str = "race_date") -> DataFrame:
        """Point-in-time join of labels with the features of the day before each event.

        A label for an event on day ``r`` gets the feature row of day ``r - 1`` (DESIGN.md
        section 5: features of day ``r`` include the race itself), never a later one. It is
        a left join: a label without a feature row for ``r - 1`` (e.g. no history yet) keeps
        null features, so no label is silently dropped; filter on ``feature_date IS NOT NULL``
        to keep only labels with features.

        Args:
            labels: Must hold ``athlete_id`` and ``event_date_col`` (DATE or TIMESTAMP; a
                timestamp's UTC date is used); must not hold feature column names.
            event_date_col: Column with the event's day.

        Returns:
            The label columns (unchanged, same order) followed by :data:`FEATURE_COLUMNS`;
            ``feature_date`` is ``r - 1`` where a feature row was found, else null.
        """
        from pyspark.sql import functions as F

        _check_labels(labels, event_date_col)
        features = self._features().withColumnRenamed(ATHLETE_KEY, _JOIN_KEY)
        keyed = labels.withColumn(_JOIN_DAY, F.date_sub(F.to_date(labels[event_date_col]), 1))
        on = (keyed[ATHLETE_KEY] == features[_JOIN_KEY]) & (keyed[_JOIN_DAY] == features[FEATURE_DATE])
        joined = keyed.join(features, on, "left")
        return joined.select(*[keyed[c] for c in labels.columns], *[features[c] for c in FEATURE_COLUMNS])

    def _features(self) -> DataFrame:
        table = self._spark.read.option("versionAsOf", self._version).table(self.table_name)
        return table.select(ATHLETE_KEY, *FEATURE_COLUMNS)

    def _latest_version(self) -> int:
        if not self._spark.catalog.tableExists(self.table_name):
            raise SetupError(
                f"The feature table {self.table_name} does not exist: run the feature pipeline first "
                "(it creates the table)."
            )
        return int(self._spark.sql(f"DESCRIBE HISTORY {self.table_name} LIMIT 1").first()["version"])


def _date_literal(day: date):
    """A DATE literal (a datetime is cut to its date so bounds compare as calendar days)."""
    from pyspark.sql import functions as F

    return F.lit(day).cast("date")


def _check_labels(labels: DataFrame, event_date_col: str) -> None:
    missing = [c for c in (ATHLETE_KEY, event_date_col) if c not in labels.columns]
    if missing:
        raise ValueError(f"labels is missing the columns {missing}; it has {labels.columns}")
    clashing = sorted(set(labels.columns) & set(FEATURE_COLUMNS))
    if clashing:
        raise ValueError(
            f"labels has columns {clashing} that are also feature columns; rename them before "
            "get_training_data so label and feature columns stay distinct."
        )
