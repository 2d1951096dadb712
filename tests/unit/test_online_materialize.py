"""Materialization's pure parts on tiny in-memory frames (the `local_spark` session), and the check's
comparison: which row per athlete goes online, with which profile and last race, and what counts
as a difference."""

from __future__ import annotations

from datetime import date

import pytest

from athlete_platform.features.model_inputs import REQUIRED_COLUMNS
from athlete_platform.features.rolling import FEATURE_COLUMNS
from athlete_platform.inference.batch import scoring_rows
from athlete_platform.lakehouse import tables
from athlete_platform.online.check import ROW, Difference, compare_rows, difference_table
from athlete_platform.online.materialize import (
    LAST_RACE_FIELDS,
    ONLINE_COLUMNS,
    online_rows,
    same_fields,
    to_online_row,
)


def features_frame(spark, rows: list[tuple[str, date, float]]):
    """Feature rows with `ctl` given and every other feature 1."""
    full = []
    for athlete_id, day, ctl in rows:
        values = {"athlete_id": athlete_id, "feature_date": day, "ctl": ctl, "computed_at": None, "_run_id": "t"}
        for column in tables.ATHLETE_ROLLING_FEATURES.columns:
            values.setdefault(column.name, 1 if column.type == "INT" else 1.0)
        full.append(tuple(values[c] for c in tables.ATHLETE_ROLLING_FEATURES.column_names))
    return spark.createDataFrame(full, tables.ATHLETE_ROLLING_FEATURES.struct())


def athletes_frame(spark, ids: list[str]):
    rows = [(i, "F", date(1990, 1, 1), 60.0, 50.0, 190.0, 170.0, "UTC", None, "t") for i in ids]
    return spark.createDataFrame(rows, tables.ATHLETES.struct())


def races_frame(spark, rows: list[tuple[str, str, date, float, float]]):
    full = [(sid, a, d, dist, t, 50.0, "t") for sid, a, d, dist, t in rows]
    return spark.createDataFrame(full, tables.RACES.struct())


@pytest.fixture(scope="module")
def frames(local_spark):
    features = features_frame(
        local_spark,
        [
            ("a", date(2024, 3, 1), 1.0),
            ("a", date(2024, 3, 3), 3.0),  # a's latest
            ("a", date(2024, 3, 2), 2.0),
            ("b", date(2024, 2, 1), 9.0),  # b's only row
            ("c", date(2024, 3, 3), 5.0),  # c has no profile in silver
        ],
    )
    athletes = athletes_frame(local_spark, ["a", "b", "z"])  # z: a profile without features
    races = races_frame(
        local_spark,
        [
            ("r1", "a", date(2024, 2, 10), 5000.0, 1500.0),
            ("r2", "a", date(2024, 3, 3), 10000.0, 3000.0),  # on the feature day: counts
            ("r2b", "a", date(2024, 3, 3), 21097.5, 7000.0),  # same day, greater session_id: wins
            ("r3", "a", date(2024, 3, 4), 42195.0, 11000.0),  # after the latest feature day: not yet
            ("r4", "b", date(2024, 2, 2), 5000.0, 1600.0),  # after b's latest row
        ],
    )
    return features, athletes, races


def test_one_row_per_athlete_the_latest_with_profile_and_last_race(frames):
    rows = {r.athlete_id: r.asDict() for r in online_rows(*frames, source_version=7).collect()}

    assert sorted(rows) == ["a", "b", "c"]  # z has no feature row: nothing to serve
    a = rows["a"]
    assert (a["feature_date"], a["ctl"], a["source_version"]) == (date(2024, 3, 3), 3.0, 7)
    assert (a["sex"], a["birth_date"], a["weight_kg"], a["hr_rest"], a["hr_max"]) == (
        "F",
        date(1990, 1, 1),
        60.0,
        50.0,
        190.0,
    )
    assert (a["prev_race_date"], a["prev_distance_m"], a["prev_finish_time_s"]) == (date(2024, 3, 3), 21097.5, 7000.0)
    assert all(rows["b"][c] is None for c in LAST_RACE_FIELDS)
    assert rows["c"]["sex"] is None and rows["c"]["ctl"] == 5.0
    assert list(a) == list(ONLINE_COLUMNS)


def test_touched_athletes_only(frames, local_spark):
    touched = local_spark.createDataFrame([("b",), ("b",), ("gone",)], "athlete_id string")
    rows = online_rows(*frames, source_version=1, touched=touched).collect()
    assert [(r.athlete_id, r.ctl) for r in rows] == [("b", 9.0)]


def test_last_race_equals_what_batch_scoring_takes(frames):
    features, athletes, races = frames
    online = {r.athlete_id: r for r in online_rows(features, athletes, races, 1).collect()}
    latest = features.where("(athlete_id = 'a' AND feature_date = '2024-03-03') OR athlete_id = 'b'")
    for row in scoring_rows(latest, races, athletes).collect():
        for column in LAST_RACE_FIELDS:
            assert row[column] == online[row.athlete_id][column], (row.athlete_id, column)


def test_an_online_row_holds_every_input_a_serving_request_needs():
    request_supplied = {"distance_m", "event_date"}  # the request's race distance and day
    assert set(REQUIRED_COLUMNS) - request_supplied <= set(ONLINE_COLUMNS)
    assert set(FEATURE_COLUMNS) <= set(ONLINE_COLUMNS)


def test_values_become_json_friendly():
    row = to_online_row({"athlete_id": "a", "feature_date": date(2024, 3, 3), "x": float("nan"), "n": 3, "s": None})
    assert row == {"athlete_id": "a", "feature_date": "2024-03-03", "x": None, "n": 3, "s": None}


def test_same_fields_ignores_lineage_and_extra_stored_fields():
    new = {"athlete_id": "a", "ctl": 1.0, "source_version": 9}
    assert same_fields({"athlete_id": "a", "ctl": 1.0, "source_version": 3, "today_load": 5.0}, new)
    assert not same_fields({"athlete_id": "a", "ctl": 1.5, "source_version": 9}, new)
    assert not same_fields({"athlete_id": "a", "source_version": 9}, new)
    assert not same_fields(None, new)


def test_compare_rows_names_each_difference():
    offline = {
        "a": {"athlete_id": "a", "ctl": 1.0, "sex": "F"},
        "b": {"athlete_id": "b", "ctl": 2.0, "sex": "M"},
        "c": {"athlete_id": "c", "ctl": 3.0, "sex": "M"},
    }
    online = {
        "a": {"athlete_id": "a", "ctl": 1.0 + 1e-15, "sex": "F", "today_load": 9.0, "source_version": 1},
        "b": {"athlete_id": "b", "ctl": 2.5},
        "d": {"athlete_id": "d", "ctl": 4.0},
    }
    got = compare_rows(online, offline, columns=("ctl", "sex"))
    assert got == [
        Difference("b", "ctl", 2.5, 2.0),
        Difference("b", "sex", "(no field)", "M"),
        Difference("c", ROW, "missing", "present"),
        Difference("d", ROW, "present", "missing"),
    ]
    assert compare_rows({"a": offline["a"]}, {"a": offline["a"]}, columns=("ctl", "sex")) == []
    table = difference_table(got, limit=2)
    assert table[0].split() == ["athlete_id", "column", "online", "offline"]
    assert len(table) == 4 and table[-1].strip() == "... and 2 more"
