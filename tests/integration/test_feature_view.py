"""The offline feature view on a real Delta feature table: ranges, latest, point-in-time joins, versions.

The feature table is shared with other tests, so every row written here uses athlete ids
starting with ``fvtest_`` (deleted first) and every assertion filters on those ids.
"""

from __future__ import annotations

import datetime as dt

import pytest

from athlete_platform.features.feature_view import FeatureView
from athlete_platform.features.rolling import FEATURE_COLUMNS
from athlete_platform.lakehouse.ddl import ensure_table
from athlete_platform.lakehouse.tables import ATHLETE_ROLLING_FEATURES
from tests.own_lake import own_names, own_settings  # noqa: F401  (the module's own lakehouse)

pytestmark = pytest.mark.integration


PREFIX = "fvtest_"
A, B, LEAK, VERSIONED = (PREFIX + s for s in ("a", "b", "leak", "versioned"))
RACE_DAY = dt.date(2024, 5, 10)
LEAK_VALUE = 999.0  # on the race day and after: a leaking join would surface it


def day(month: int, day_of_month: int) -> dt.date:
    return dt.date(2024, month, day_of_month)


def feature_row(athlete_id: str, feature_date: dt.date, **values: float) -> tuple:
    """A full table row: every feature 1 (counts 1) unless given."""
    row = {"athlete_id": athlete_id, "feature_date": feature_date, "computed_at": dt.datetime(2024, 6, 1)}
    row["_run_id"] = "test_feature_view"
    for column in ATHLETE_ROLLING_FEATURES.columns:
        if column.name not in row:
            row[column.name] = values.get(column.name, 1 if column.type == "INT" else 1.0)
    return tuple(row[c] for c in ATHLETE_ROLLING_FEATURES.column_names)


def leak_rows() -> list[tuple]:
    rows = []
    for offset in range(-9, 11):
        current = RACE_DAY + dt.timedelta(days=offset)
        if offset < -1:
            values = {"ctl": 50.0, "atl": 50.0}
        elif offset == -1:  # r - 1: the only row a race on r may see
            values = {"ctl": 42.0, "atl": 7.0, "distance_7d_m": 1234.0, "sessions_7d": 3}
        else:
            values = {"ctl": LEAK_VALUE, "atl": LEAK_VALUE, "distance_7d_m": LEAK_VALUE, "sessions_7d": 999}
        rows.append(feature_row(LEAK, current, **values))
    return rows


@pytest.fixture(scope="module")
def feature_table(spark, names) -> str:
    table = ensure_table(spark, names, ATHLETE_ROLLING_FEATURES)
    spark.sql(f"DELETE FROM {table} WHERE athlete_id LIKE '{PREFIX}%'")
    rows = [feature_row(A, day(3, d), ctl=float(d)) for d in range(1, 11)]
    rows += [feature_row(B, day(3, d), ctl=100.0 + d) for d in range(1, 5)]
    rows += leak_rows()
    spark.createDataFrame(rows, ATHLETE_ROLLING_FEATURES.struct()).write.format("delta").mode("append").saveAsTable(
        table
    )
    return table


def ours(frame):
    return frame.filter(frame.athlete_id.startswith(PREFIX))


def test_batch_data_bounds_are_inclusive(spark, names, feature_table):
    view = FeatureView(spark, names)
    batch = ours(view.get_batch_data(day(3, 3), day(3, 5)))

    assert batch.columns == ["athlete_id", *FEATURE_COLUMNS]
    got = sorted((r.athlete_id, r.feature_date) for r in batch.collect())
    assert got == [(A, day(3, 3)), (A, day(3, 4)), (A, day(3, 5)), (B, day(3, 3)), (B, day(3, 4))]


def test_batch_data_single_day(spark, names, feature_table):
    batch = ours(FeatureView(spark, names).get_batch_data(day(3, 10), day(3, 10)))
    assert [(r.athlete_id, r.ctl) for r in batch.collect()] == [(A, 10.0)]


def test_latest_picks_newest_row_on_or_before_as_of_per_athlete(spark, names, feature_table):
    view = FeatureView(spark, names)
    latest = ours(view.get_latest(day(3, 6))).filter(f"athlete_id IN ('{A}', '{B}')")
    got = sorted((r.athlete_id, r.feature_date, r.ctl) for r in latest.collect())
    # A has a row on 03-06 itself (inclusive); B's history ends on 03-04.
    assert got == [(A, day(3, 6), 6.0), (B, day(3, 4), 104.0)]
    assert latest.columns == ["athlete_id", *FEATURE_COLUMNS]


def test_latest_before_any_history_has_no_row(spark, names, feature_table):
    assert ours(FeatureView(spark, names).get_latest(day(2, 29))).count() == 0


def test_training_data_sees_only_the_day_before_the_race(spark, names, feature_table):
    labels = spark.createDataFrame(
        [
            ("race_1", LEAK, RACE_DAY, 21097.5, 5400.0),
            ("race_2", LEAK, RACE_DAY + dt.timedelta(days=3), 10000.0, 2400.0),
        ],
        "session_id string, athlete_id string, race_date date, distance_m double, finish_time_s double",
    )
    training = FeatureView(spark, names).get_training_data(labels)

    assert training.columns == [*labels.columns, *FEATURE_COLUMNS]
    rows = {r.session_id: r for r in training.collect()}
    assert len(rows) == 2
    first = rows["race_1"]
    assert first.feature_date == RACE_DAY - dt.timedelta(days=1)
    assert (first.ctl, first.atl, first.distance_7d_m, first.sessions_7d) == (42.0, 7.0, 1234.0, 3)
    assert (first.distance_m, first.finish_time_s, first.race_date) == (21097.5, 5400.0, RACE_DAY)
    # race_2 on r+3 sees day r+2, which is itself after race_1: a later label may see it.
    assert rows["race_2"].feature_date == RACE_DAY + dt.timedelta(days=2)
    # No feature row on or after its own race day reaches a label.
    for row in training.collect():
        assert row.feature_date < row.race_date
    assert LEAK_VALUE not in [first[c] for c in FEATURE_COLUMNS if c != "feature_date"]


def test_training_data_from_timestamps_uses_the_utc_day(spark, names, feature_table):
    labels = spark.createDataFrame(
        [(LEAK, dt.datetime(2024, 5, 10, 23, 30))], "athlete_id string, start_time timestamp"
    )
    row = FeatureView(spark, names).get_training_data(labels, event_date_col="start_time").first()
    assert (row.feature_date, row.ctl) == (RACE_DAY - dt.timedelta(days=1), 42.0)


def test_training_data_keeps_labels_without_features_with_null_features(spark, names, feature_table):
    first_feature_day = RACE_DAY - dt.timedelta(days=9)
    labels = spark.createDataFrame(
        [("early", LEAK, first_feature_day), ("unknown", PREFIX + "nobody", RACE_DAY)],
        "session_id string, athlete_id string, race_date date",
    )
    rows = FeatureView(spark, names).get_training_data(labels).collect()
    assert sorted(r.session_id for r in rows) == ["early", "unknown"]
    for row in rows:
        assert all(row[c] is None for c in FEATURE_COLUMNS)


def test_training_data_rejects_labels_with_feature_column_names(spark, names, feature_table):
    labels = spark.createDataFrame([(LEAK, RACE_DAY, 1.0)], "athlete_id string, race_date date, ctl double")
    with pytest.raises(ValueError, match="ctl"):
        FeatureView(spark, names).get_training_data(labels)
    with pytest.raises(ValueError, match="event_day"):
        FeatureView(spark, names).get_training_data(labels.drop("ctl"), event_date_col="event_day")


def test_time_travel_reads_the_pinned_version(spark, names, feature_table):
    spark.createDataFrame(
        [feature_row(VERSIONED, day(4, 1), ctl=10.0)], ATHLETE_ROLLING_FEATURES.struct()
    ).write.format("delta").mode("append").saveAsTable(feature_table)
    pinned = FeatureView(spark, names)
    before = pinned.table_version
    spark.sql(f"UPDATE {feature_table} SET ctl = 20.0 WHERE athlete_id = '{VERSIONED}'")

    def ctl_of(view: FeatureView) -> list[float]:
        rows = view.get_batch_data(day(4, 1), day(4, 1)).filter(f"athlete_id = '{VERSIONED}'").collect()
        return [r.ctl for r in rows]

    latest = FeatureView(spark, names)
    assert latest.table_version > before
    assert ctl_of(latest) == [20.0]
    # A view pins its version at construction: the UPDATE after it is invisible...
    assert ctl_of(pinned) == [10.0]
    # ...and so it is for an explicit version.
    assert ctl_of(FeatureView(spark, names, version=before)) == [10.0]
    assert FeatureView(spark, names, version=before).table_version == before


def test_unknown_version_is_an_error_that_names_the_range(spark, names, feature_table):
    latest = FeatureView(spark, names).table_version
    with pytest.raises(ValueError, match=rf"0\.\.{latest}"):
        FeatureView(spark, names, version=latest + 1)
