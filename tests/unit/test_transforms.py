"""Unit tests of every pure step transform (DataFrames in, DataFrame out) on tiny in-memory frames.

One plain Spark session (`local_spark`), a handful of rows per test, no tables: what each
transform decides, checked row by row. Timestamps are written as UTC strings and cast in
Spark (session time zone UTC), and read back as strings, so the Python process's time zone
never enters.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from athlete_platform.domain import physiology
from athlete_platform.domain.distances import RACE_DISTANCES_M
from athlete_platform.features.pipeline import feature_transform, plan_athletes
from athlete_platform.inference.batch import scoring_rows
from athlete_platform.ingestion.bronze import (
    DEVICE_ROW_SCHEMA,
    app_export_outputs,
    classify_lines,
    device_file_outputs,
)
from athlete_platform.ingestion.fields import ATHLETE_FIELDS, SESSION_FIELDS
from athlete_platform.ingestion.record_keys import landed_keys
from athlete_platform.ingestion.silver import (
    athlete_rule_failures,
    latest_per_key,
    parse_records,
    races_from_sessions,
    session_rule_failures,
    silver_transform,
    typed_athletes,
    typed_sessions,
)
from athlete_platform.lakehouse import tables
from athlete_platform.reporting.weekly_summary import SUMMARY_COLUMNS, weekly_summary

RUN_ID = "unit-run"
INGESTED_AT = datetime(2024, 3, 14, 5, 0)  # naive UTC, as wall_clock() gives
LINES_DDL = "path string, line_number bigint, line string"


def with_timestamps(frame: DataFrame, *columns: str) -> DataFrame:
    """Cast 'YYYY-MM-DD HH:MM:SS' (UTC) string columns to TIMESTAMP."""
    return frame.withColumns({c: F.to_timestamp(c) for c in columns})


def mar(day: int) -> date:
    """A day of March 2024, the month every test lives in."""
    return date(2024, 3, day)


def as_text(column: str) -> Column:
    """A timestamp column as its UTC text, so collect() does not convert it to local time."""
    return F.date_format(column, "yyyy-MM-dd HH:mm:ss").alias(column)


# --------------------------------------------------------------------------------------------
# bronze
# --------------------------------------------------------------------------------------------

GOOD_SESSION_LINE = '{"record_type": "session", "session_id": "s1"}'
GOOD_ATHLETE_LINE = '  {"record_type": "athlete", "athlete_id": "a1"}  '
NOT_STRICT = "malformed_json: not strict JSON (a nested duplicate key, single quotes, NaN or similar)"


def classify(spark: SparkSession, *lines: str) -> dict[str, tuple[str | None, str | None]]:
    frame = spark.createDataFrame([("/landing/a.jsonl", n, line) for n, line in enumerate(lines, 1)], LINES_DDL)
    return {row.line: (row.record_type, row.reason) for row in classify_lines(frame).collect()}


def test_classify_lines_accepts_well_formed_records_with_their_record_type(local_spark):
    result = classify(local_spark, GOOD_SESSION_LINE, GOOD_ATHLETE_LINE)
    assert result == {GOOD_SESSION_LINE: ("session", None), GOOD_ATHLETE_LINE: ("athlete", None)}


def test_classify_lines_rejects_bad_lines_with_their_reason(local_spark):
    malformed = "malformed_json: not one complete JSON object"
    cases = {
        '{"record_type": "session", "session_id": ': malformed,  # cut off
        '[{"record_type": "session"}]': malformed,  # an array, even of a good record
        '"session"': malformed,
        '{"session_id": "s1"}': "missing_record_type",
        '{"record_type": null}': "missing_record_type",
        '{"record_type": "workout"}': "unknown_record_type: workout",
    }
    result = classify(local_spark, *cases)
    assert {line: reason for line, (_, reason) in result.items()} == cases


def test_classify_lines_rejects_a_record_followed_by_more_text(local_spark):
    # Two records on one line (a lost newline): accepting it would silently drop the second one.
    line = '{"record_type": "session", "session_id": "s1"} {"record_type": "session", "session_id": "s2"}'
    (_, reason) = classify(local_spark, line)[line]
    assert reason is not None and reason.startswith("malformed_json")


def test_classify_lines_accepts_only_exactly_one_json_object(local_spark):
    """Spark's JSON readers stop after the first value; every kind of tail is caught."""
    after = "malformed_json: text after the JSON object"
    cases = {
        GOOD_SESSION_LINE + " x": after,
        GOOD_SESSION_LINE + "}": after,
        GOOD_SESSION_LINE + "] x": after,  # closes the [line] wrapper early: the {"_": line} one fails
        GOOD_SESSION_LINE + ', {"record_type": "athlete"}': after,  # a valid [line] of two values
        GOOD_SESSION_LINE + ', "b": 2': after,  # a valid {"_": line} with one more key
        GOOD_SESSION_LINE + "\t \r": None,  # JSON whitespace is fine
        "{'record_type': 'session'}": NOT_STRICT,
        '{"record_type": "session", "duration_s": NaN}': NOT_STRICT,
    }
    result = classify(local_spark, *cases)
    assert {line: reason for line, (_, reason) in result.items()} == cases


def test_classify_lines_quarantines_duplicate_keys(local_spark):
    """A key twice is ambiguous (which value is meant?): quarantined, the key named."""
    cases = {
        '{"record_type": "session", "session_id": "s1", "session_id": "s2"}': (
            'duplicate_key: "session_id" appears more than once (ambiguous record)'
        ),
        '{"record_type": "athlete", "record_type": "session"}': (
            'duplicate_key: "record_type" appears more than once (ambiguous record)'
        ),
        '{"record_type": "session", "x": {"a": 1, "a": 2}}': NOT_STRICT,
    }
    result = classify(local_spark, *cases)
    assert {line: reason for line, (_, reason) in result.items()} == cases


def test_classify_lines_rejects_raw_control_characters_and_keeps_read_errors_first(local_spark):
    control = "control_character: a raw control character (JSON needs them escaped)"
    frame = local_spark.createDataFrame(
        [
            ("/l/a.jsonl", 1, '{"record_type": "session", "notes": "a\u0001b"}', None),
            ("/l/a.jsonl", 2, '{"record_type": "session", "notes": "a\u0000b"}', None),
            ("/l/a.jsonl", 3, '{"record_type": "session", "notes": "a\\u0000b"}', None),  # escaped: fine
            ("/l/a.jsonl", 4, GOOD_SESSION_LINE, "invalid_utf8: byte 0xff at byte 3"),
            ("/l/b.jsonl", 0, '{"path": "/l/b.jsonl"}', "symlink leads outside the landing folder"),
        ],
        LINES_DDL + ", read_error string",
    )
    reasons = {(r.path, r.line_number): r.reason for r in classify_lines(frame).collect()}
    assert reasons == {
        ("/l/a.jsonl", 1): control,
        ("/l/a.jsonl", 2): control,
        ("/l/a.jsonl", 3): None,
        ("/l/a.jsonl", 4): "invalid_utf8: byte 0xff at byte 3",
        ("/l/b.jsonl", 0): "symlink leads outside the landing folder",
    }


def test_classify_lines_survives_hostile_lines(local_spark):
    """Deep nesting, a 100k-digit number, 50k keys (one twice), escaped lone surrogates, emoji:
    each line gets an answer (Jackson's limits make a line malformed, never a failed job)."""
    many_keys = ", ".join(f'"k{i}": {i}' for i in range(50_000))
    cases = [
        '{"record_type": "session", "x": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"record_type": "session", "x": 1' + "0" * 100_000 + "}",
        '{"record_type": "session", ' + many_keys + ', "k7": 0}',
        '{"record_type": "session", "notes": "\\ud800"}',
        '{"record_type": "session", "notes": "🏃‍♀️ 日本"}',
    ]
    result = classify(local_spark, *cases)
    reasons = [result[line][1] for line in cases]
    assert reasons[0] and reasons[0].startswith("malformed_json")
    assert reasons[1] is None or reasons[1].startswith("malformed_json")
    assert reasons[2] == 'duplicate_key: "k7" appears more than once (ambiguous record)'
    assert reasons[3] is None or reasons[3].startswith("malformed_json")
    assert reasons[4] is None


def test_app_export_outputs_count_a_refused_file_as_one_quarantined_record(local_spark):
    lines = local_spark.createDataFrame(
        [("/landing/link.jsonl", 0, '{"path": "/landing/link.jsonl"}', "symlink leads outside the landing folder")],
        LINES_DDL + ", read_error string",
    )
    sizes = local_spark.createDataFrame([("/landing/link.jsonl", None)], "path string, size_bytes bigint")
    accepted, rejected, manifest = app_export_outputs(classify_lines(lines), sizes, RUN_ID, INGESTED_AT)
    assert accepted.count() == 0
    assert [(r.record_key, r.reason) for r in rejected.collect()] == [
        ("file", "symlink leads outside the landing folder")
    ]
    assert [(r.lines, r.accepted, r.quarantined) for r in manifest.collect()] == [(1, 0, 1)]


def test_app_export_outputs_reconcile_every_line_per_file(local_spark):
    lines = local_spark.createDataFrame(
        [
            ("/landing/a.jsonl", 1, GOOD_SESSION_LINE),
            ("/landing/a.jsonl", 2, "{broken"),
            ("/landing/a.jsonl", 3, GOOD_ATHLETE_LINE),
            ("/landing/b.jsonl", 1, '{"record_type": "workout"}'),
        ],
        LINES_DDL,
    )
    sizes = local_spark.createDataFrame(
        [("/landing/a.jsonl", 300), ("/landing/b.jsonl", 30), ("/landing/empty.jsonl", 0)],
        "path string, size_bytes bigint",
    )
    accepted, rejected, manifest = app_export_outputs(classify_lines(lines), sizes, RUN_ID, INGESTED_AT)

    per_file = {r.path: (r.size_bytes, r.lines, r.accepted, r.quarantined) for r in manifest.collect()}
    assert per_file == {
        "/landing/a.jsonl": (300, 3, 2, 1),
        "/landing/b.jsonl": (30, 1, 0, 1),
        "/landing/empty.jsonl": (0, 0, 0, 0),  # a file with no lines is still logged
    }
    assert all(lines_ == ok + bad for _, lines_, ok, bad in per_file.values())

    accepted_rows = accepted.select(
        "record_type", "payload", "_source_file", "_line_number", as_text("_ingested_at"), "_run_id"
    ).collect()
    assert sorted(tuple(r) for r in accepted_rows) == [
        ("athlete", GOOD_ATHLETE_LINE, "/landing/a.jsonl", 3, "2024-03-14 05:00:00", RUN_ID),
        ("session", GOOD_SESSION_LINE, "/landing/a.jsonl", 1, "2024-03-14 05:00:00", RUN_ID),
    ]
    assert sorted((r.source_file, r.record_key, r.payload) for r in rejected.collect()) == [
        ("/landing/a.jsonl", "line 2", "{broken"),
        ("/landing/b.jsonl", "line 1", '{"record_type": "workout"}'),
    ]


def test_device_file_outputs_split_ingested_from_quarantined_files(local_spark):
    devices = local_spark.createDataFrame(
        [
            ("aaa", "/landing/devices/a1/run.fit", "fit", "a1", "ingested", None, 1000, '{"record_type": "session"}'),
            ("bbb", "/landing/devices/x.gpx", "gpx", None, "quarantined", "gpx: no athlete folder", 50, '{"p": 1}'),
        ],
        DEVICE_ROW_SCHEMA,
    )
    raw, rejected, manifest = device_file_outputs(devices, RUN_ID, INGESTED_AT)

    assert [tuple(r) for r in raw.select("record_type", "payload", "_source_file", "_line_number").collect()] == [
        ("session", '{"record_type": "session"}', "/landing/devices/a1/run.fit", 0)
    ]
    assert [tuple(r) for r in rejected.collect()] == [
        ("/landing/devices/x.gpx", "bbb", '{"p": 1}', "gpx: no athlete folder")
    ]
    assert "payload" not in manifest.columns
    assert sorted((r.sha256, r.status, r._run_id) for r in manifest.collect()) == [
        ("aaa", "ingested", RUN_ID),
        ("bbb", "quarantined", RUN_ID),
    ]


# --------------------------------------------------------------------------------------------
# silver
# --------------------------------------------------------------------------------------------


def raw_records(spark: SparkSession, *records: tuple[dict, str]) -> DataFrame:
    """bronze.sessions_raw rows from (payload, _ingested_at UTC text), one file in line order."""
    rows = [
        (payload["record_type"], json.dumps(payload), "/landing/app_export/day.jsonl", n, ingested_at, "bronze-run")
        for n, (payload, ingested_at) in enumerate(records, 1)
    ]
    ddl = "record_type string, payload string, _source_file string, _line_number bigint, _ingested_at string, "
    frame = spark.createDataFrame(rows, ddl + "_run_id string")
    # The key columns as bronze writes them (`ingestion.record_keys`).
    return with_timestamps(frame, "_ingested_at").select("*", *landed_keys()).select(*tables.SESSIONS_RAW.column_names)


def athlete_payload(athlete_id: str = "a1", **changes) -> dict:
    record = {
        "record_type": "athlete",
        "athlete_id": athlete_id,
        "sex": "F",
        "birth_date": "1990-05-01",
        "weight_kg": 58.0,
        "hr_rest": 48.0,
        "hr_max": 188.0,
        "lthr": 170.0,
        "timezone": "Europe/Oslo",
        "updated_at": "2024-01-01T00:00:00Z",
    }
    return record | changes


def session_payload(session_id: str, start_time: str, **changes) -> dict:
    record = {
        "record_type": "session",
        "session_id": session_id,
        "athlete_id": "a1",
        "sport": "run",
        "start_time": start_time,
        "duration_s": 3600.0,
        "distance_m": 10000.0,
        "elevation_gain_m": 50.0,
        "avg_hr": 150.0,
        "max_hr": 175.0,
        "rpe": 5,
        "notes": None,
        "is_race": False,
        "source": "app",
        "updated_at": start_time,
    }
    return record | changes


def test_latest_per_key_wins_on_updated_at_then_landing_order(local_spark):
    rows = [
        # key, tag, updated_at, _ingested_at, _source_file, _line_number
        ("s1", "older version, landed later", "2024-03-01 10:00:00", "2024-03-05 00:00:00", "b.jsonl", 1),
        ("s1", "newer version", "2024-03-01 11:00:00", "2024-03-02 00:00:00", "a.jsonl", 1),
        ("s2", "same version, landed first", "2024-03-01 10:00:00", "2024-03-02 00:00:00", "z.jsonl", 9),
        ("s2", "same version, landed last", "2024-03-01 10:00:00", "2024-03-03 00:00:00", "a.jsonl", 1),
        ("s3", "same run, earlier file", "2024-03-01 10:00:00", "2024-03-02 00:00:00", "a.jsonl", 9),
        ("s3", "same run, later file", "2024-03-01 10:00:00", "2024-03-02 00:00:00", "b.jsonl", 1),
        ("s4", "same file, line 3", "2024-03-01 10:00:00", "2024-03-02 00:00:00", "a.jsonl", 3),
        ("s4", "same file, line 7", "2024-03-01 10:00:00", "2024-03-02 00:00:00", "a.jsonl", 7),
        ("s5", "no updated_at", None, "2024-03-09 00:00:00", "c.jsonl", 1),
        ("s5", "with updated_at", "2024-03-01 10:00:00", "2024-03-02 00:00:00", "a.jsonl", 1),
    ]
    frame = local_spark.createDataFrame(
        rows,
        "session_id string, tag string, updated_at string, _ingested_at string, _source_file string, "
        "_line_number bigint",
    )
    latest, superseded = latest_per_key(with_timestamps(frame, "updated_at", "_ingested_at"), "session_id")

    assert {r.session_id: r.tag for r in latest.collect()} == {
        "s1": "newer version",
        "s2": "same version, landed last",
        "s3": "same run, later file",
        "s4": "same file, line 7",
        "s5": "with updated_at",
    }
    assert superseded.count() == len(rows) - 5
    assert "_rank" not in latest.columns


def test_typed_sessions_convert_offsets_to_utc_and_date_on_the_utc_day(local_spark):
    raw = raw_records(
        local_spark,
        (session_payload("west", "2024-03-10T23:30:00-02:00", sport=" Run "), "2024-03-12 00:00:00"),
        (session_payload("east", "2024-03-11T00:30:00+02:00", is_race=None, source=None), "2024-03-12 00:00:00"),
        (session_payload("zulu", "2024-03-10T07:00:00Z"), "2024-03-12 00:00:00"),
        (athlete_payload(), "2024-03-12 00:00:00"),  # not a session: left out
    )
    sessions = typed_sessions(parse_records(raw, "session", SESSION_FIELDS))
    rows = sessions.select("session_id", as_text("start_time"), "session_date", "sport", "is_race", "source")

    assert {r.session_id: tuple(r)[1:] for r in rows.collect()} == {
        "west": ("2024-03-11 01:30:00", mar(11), "run", False, "app"),
        "east": ("2024-03-10 22:30:00", mar(10), "run", False, "app"),
        "zulu": ("2024-03-10 07:00:00", mar(10), "run", False, "app"),
    }
    assert dict(sessions.dtypes)["start_time"] == "timestamp"


VALID_SESSION = {
    "athlete_id": "a1",
    "sport": "run",
    "start_time": "2024-03-10 07:00:00",
    "duration_s": 3600.0,
    "distance_m": 10000.0,
    "elevation_gain_m": 120.0,
    "avg_hr": 150.0,
    "max_hr": 175.0,
    "rpe": 6,
    "updated_at": "2024-03-10 09:00:00",
    "_ingested_at": "2024-03-11 05:00:00",
    "field_reason": None,
}
# case -> (changes to the valid session, expected reason)
RULE_CASES: dict[str, tuple[dict, str | None]] = {
    "valid": ({}, None),
    "no_heart_rate": ({"avg_hr": None, "max_hr": None}, None),
    "start_exactly_a_day_after_landing": ({"start_time": "2024-03-12 05:00:00"}, None),
    "missing_session_id": ({"session_id": None}, "required_fields"),
    "unknown_sport": ({"sport": "yoga"}, "sport_known"),
    "zero_duration": ({"duration_s": 0.0}, "duration_positive"),
    "negative_distance": ({"distance_m": -1.0}, "distance_non_negative"),
    "avg_hr_too_low": ({"avg_hr": 20.0}, "hr_range"),
    "max_hr_too_high": ({"max_hr": 260.0}, "hr_range"),
    "run_too_fast": ({"duration_s": 600.0}, "speed_plausible"),  # 10 km in 10 min: 16.7 m/s
    "start_a_second_too_late": ({"start_time": "2024-03-12 05:00:01"}, "start_not_in_future"),
    "unknown_athlete": ({"athlete_id": "a-ghost"}, "athlete_known"),
    "two_rules_broken": ({"sport": "yoga", "max_hr": 300.0}, "sport_known,hr_range"),
    "a_year_long": ({"duration_s": 365 * 86400.0, "distance_m": 0.0}, "duration_plausible"),
    "negative_elevation": ({"elevation_gain_m": -5.0}, "elevation_plausible"),
    "no_elevation": ({"elevation_gain_m": None}, None),
    "avg_above_max_hr": ({"avg_hr": 200.0, "max_hr": 30.0}, "hr_order"),
    "avg_above_max_hr_in_range": ({"avg_hr": 180.0, "max_hr": 170.0}, "hr_order"),
    "rpe_negative": ({"rpe": -7}, "rpe_range"),
    "started_in_1900": ({"start_time": "1900-01-01 07:00:00"}, "start_plausible"),
    "version_in_year_9999": ({"updated_at": "2199-12-31 00:00:00"}, "updated_at_not_in_future"),
    # Field rules found while reading the JSON come first (and a wrongly typed field is null).
    "field_rule_broken": ({"field_reason": "avg_hr_type", "avg_hr": None}, "avg_hr_type"),
    "field_and_row_rules": ({"field_reason": "rpe_type", "rpe": None, "sport": "yoga"}, "rpe_type,sport_known"),
}


@pytest.fixture(scope="module")
def session_reasons(local_spark) -> dict[str, str | None]:
    """reason per RULE_CASES case, from one session_rule_failures run over all the cases."""
    columns = ["case", "session_id", *VALID_SESSION]
    rows = [
        tuple(({"case": case, "session_id": f"s-{case}"} | VALID_SESSION | changes)[c] for c in columns)
        for case, (changes, _) in RULE_CASES.items()
    ]
    ddl = (
        "case string, session_id string, athlete_id string, sport string, start_time string, duration_s double, "
        "distance_m double, elevation_gain_m double, avg_hr double, max_hr double, rpe int, updated_at string, "
        "_ingested_at string, field_reason string"
    )
    frame = local_spark.createDataFrame(rows, ddl)
    sessions = with_timestamps(frame, "start_time", "updated_at", "_ingested_at")
    athletes = local_spark.createDataFrame([("a1",)], "athlete_id string")
    return {r.case: r.reason for r in session_rule_failures(sessions, athletes).collect()}


@pytest.mark.parametrize("case", RULE_CASES)
def test_session_rule_failures_name_each_broken_rule(session_reasons, case):
    assert session_reasons[case] == RULE_CASES[case][1]


def test_typed_athletes_and_athlete_rule_failures(local_spark):
    raw = raw_records(
        local_spark,
        (athlete_payload("ok", sex=" f "), "2024-03-12 00:00:00"),
        (athlete_payload("bad-sex", sex="X"), "2024-03-12 00:00:00"),
        (athlete_payload("bad-hr", hr_rest=60.0, hr_max=60.0), "2024-03-12 00:00:00"),
        (athlete_payload("no-hr", hr_rest=None), "2024-03-12 00:00:00"),
        (athlete_payload("nan-hr", hr_rest="NaN"), "2024-03-12 00:00:00"),
        (athlete_payload("lthr-above-max", lthr=200.0), "2024-03-12 00:00:00"),
        (athlete_payload("heavy", weight_kg=900.0), "2024-03-12 00:00:00"),
        (athlete_payload("unborn", birth_date="2030-01-01"), "2024-03-12 00:00:00"),
        (athlete_payload("bad-zone", timezone="../../etc/passwd"), "2024-03-12 00:00:00"),
    )
    checked = athlete_rule_failures(typed_athletes(parse_records(raw, "athlete", ATHLETE_FIELDS)))
    rows = {r.athlete_id: (r.sex, r.birth_date, r.reason) for r in checked.collect()}

    born = date(1990, 5, 1)
    assert rows == {
        "ok": ("F", born, None),
        "bad-sex": ("X", born, "sex_valid"),
        "bad-hr": ("F", born, "hr_order,lthr_range"),
        "no-hr": ("F", born, "required_fields"),
        "nan-hr": ("F", born, "hr_rest_type,required_fields"),
        "lthr-above-max": ("F", born, "lthr_range"),
        "heavy": ("F", born, "weight_plausible"),
        "unborn": ("F", date(2030, 1, 1), "birth_date_plausible"),
        "bad-zone": ("F", born, "timezone_unknown"),
    }


DUE_BEFORE = datetime(2024, 3, 11)  # the logical time of the run for 2024-03-10
LANDED = "2024-03-11 05:00:00"


@pytest.fixture(scope="module")
def silver(local_spark):
    raw = raw_records(
        local_spark,
        (athlete_payload(), LANDED),
        (session_payload("past", "2024-03-10T07:00:00Z"), LANDED),
        (session_payload("last-second", "2024-03-10T23:59:59Z"), LANDED),
        (session_payload("at-due-time", "2024-03-11T00:00:00Z"), LANDED),
        (session_payload("next-morning", "2024-03-11T04:00:00Z"), LANDED),
        (session_payload("far-future", "2024-06-01T07:00:00Z", updated_at="2024-03-11T04:00:00Z"), LANDED),
        (session_payload("race", "2024-03-09T09:00:00Z", is_race=True, duration_s=2400.0), LANDED),
    )
    out = silver_transform(raw, DUE_BEFORE, RUN_ID)
    yield out
    for frame in (out.athletes_checked, out.sessions_all, out.checked, out.sessions_valid):
        frame.unpersist()


def test_silver_transform_defers_sessions_from_due_before_on(silver):
    checked = {r.session_id: (r._deferred, r.reason) for r in silver.checked.collect()}
    assert checked == {
        "past": (False, None),
        "last-second": (False, None),
        "race": (False, None),
        "at-due-time": (True, None),
        "next-morning": (True, None),
        # Not a later run's session but one that cannot have happened yet when it landed.
        "far-future": (False, "start_not_in_future"),
    }


def test_silver_transform_keeps_due_valid_sessions_and_quarantines_the_rest(silver):
    valid = silver.sessions_valid.collect()
    assert sorted(r.session_id for r in valid) == ["last-second", "past", "race"]
    assert {r._run_id for r in valid} == {RUN_ID}
    assert all(r.session_load > 0 and r.load_imputed is False for r in valid)
    assert [(r.record_key, r.reason) for r in silver.rejected.collect()] == [("far-future", "start_not_in_future")]
    assert [r.athlete_id for r in silver.athletes_valid.collect()] == ["a1"]


POISON_SESSIONS = {
    "number-start": {"start_time": 1735628400},
    "not-a-date": {"start_time": "not-a-date"},
    "month-13": {"start_time": "2024-13-45T07:00:00Z"},
    "year-1": {"start_time": "0001-01-01T07:00:00Z"},
    "infinite": {"duration_s": "Infinity"},
    "text-hr": {"avg_hr": "140"},
    "yes-race": {"is_race": "yes"},
    "half-rpe": {"rpe": 4.5},
}


def test_silver_transform_quarantines_poison_records_and_keeps_the_last_valid_version(local_spark):
    """One bad record never stops silver: it is quarantined with its rule, and a broken
    correction or profile update leaves the last valid version in place."""
    raw = raw_records(
        local_spark,
        (athlete_payload(), LANDED),
        (athlete_payload(hr_rest="NaN", updated_at="2024-03-01T00:00:00Z"), LANDED),  # a broken update
        (session_payload("good", "2024-03-10T07:00:00Z"), LANDED),
        (session_payload("corrected", "2024-03-09T07:00:00Z"), LANDED),
        (
            session_payload("corrected", "2024-03-09T07:00:00Z", duration_s=1e308, updated_at="2024-03-10T12:00:00Z"),
            LANDED,
        ),
        *((session_payload(key, "2024-03-10T08:00:00Z") | change, LANDED) for key, change in POISON_SESSIONS.items()),
    )
    out = silver_transform(raw, DUE_BEFORE, RUN_ID)

    athletes = out.athletes_valid.collect()
    assert [(a.athlete_id, a.hr_rest) for a in athletes] == [("a1", 48.0)]
    valid = {r.session_id: r.duration_s for r in out.sessions_valid.collect()}
    assert valid == {"good": 3600.0, "corrected": 3600.0}
    rejected = {r.record_key: r.reason for r in out.rejected.collect()}
    assert rejected == {
        "a1": "hr_rest_type,required_fields",
        "corrected": "duration_plausible",
        "number-start": "start_time_type,required_fields",
        "not-a-date": "start_time_unparseable,required_fields",
        "month-13": "start_time_unparseable,required_fields",
        "year-1": "start_time_out_of_range,required_fields",
        "infinite": "duration_s_type,required_fields",
        "text-hr": "avg_hr_type",
        "yes-race": "is_race_type",
        "half-rpe": "rpe_type",
    }
    records, superseded = out.sessions_all.count(), out.superseded.count()
    assert records == len(valid) + superseded + len(POISON_SESSIONS) + 1  # in = accepted + quarantined
    for frame in (out.athletes_checked, out.sessions_all, out.checked, out.sessions_valid):
        frame.unpersist()


def test_races_from_sessions_keep_run_races_with_their_daniels_vdot(local_spark):
    sessions = local_spark.createDataFrame(
        [
            ("10k", "a1", mar(9), 10000.0, 2400.0, True, "run"),
            ("5k", "a1", date(2024, 4, 6), 5000.0, 1260.5, True, "run"),
            ("training-run", "a1", mar(10), 10000.0, 3000.0, False, "run"),
            ("bike-race", "a1", mar(11), 40000.0, 3600.0, True, "ride"),
            ("no-distance", "a1", mar(12), 0.0, 1800.0, True, "run"),
        ],
        "session_id string, athlete_id string, session_date date, distance_m double, duration_s double, "
        "is_race boolean, sport string",
    )
    races = {r.session_id: r for r in races_from_sessions(sessions).collect()}

    assert sorted(races) == ["10k", "5k"]
    race = races["10k"]
    assert (race.athlete_id, race.race_date, race.distance_m, race.finish_time_s) == (
        "a1",
        mar(9),
        10000.0,
        2400.0,
    )
    for race in races.values():
        assert race.vdot == pytest.approx(physiology.vdot(race.distance_m, race.finish_time_s), abs=1e-9)


# --------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------

FEATURE_SESSIONS_DDL = (
    "athlete_id string, session_date date, sport string, duration_s double, distance_m double, avg_hr double, "
    "session_load double, is_race boolean"
)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def test_plan_athletes_starts_resumes_and_goes_back_to_dirty_days(local_spark):
    sessions = local_spark.createDataFrame(
        [
            ("new", mar(5)),
            ("new", mar(8)),
            ("resumed", mar(1)),
            ("resumed", mar(10)),
            ("dirty", mar(1)),
            ("dirty", mar(4)),  # changed in silver since the last run
            ("up-to-date", mar(1)),
        ],
        "athlete_id string, session_date date",
    )
    stored = [(athlete, day) for athlete in ("resumed", "dirty") for day in days(mar(1), mar(15))]
    stored += [("up-to-date", day) for day in days(mar(1), mar(20))]
    features = local_spark.createDataFrame(stored, "athlete_id string, feature_date date")
    dirty_from = local_spark.createDataFrame([("dirty", mar(4))], "athlete_id string, dirty_from date")

    plan = plan_athletes(sessions, features, dirty_from, mar(20))
    rows = {r.athlete_id: (r.first_session_date, r.start_date, r.end_date) for r in plan.collect()}

    assert rows == {
        "new": (mar(5), mar(5), mar(20)),  # no feature rows yet: from its first session day
        "resumed": (mar(1), mar(16), mar(20)),  # the day after its last feature row
        "dirty": (mar(1), mar(4), mar(20)),  # back to the first day silver changed
        # "up-to-date" has rows up to the run date: nothing to compute, not planned
    }


def test_plan_athletes_without_stored_features_starts_everyone_at_the_first_session(local_spark):
    sessions = local_spark.createDataFrame(
        [("a1", mar(3)), ("a1", mar(1)), ("late", mar(25))],
        "athlete_id string, session_date date",
    )
    plan = plan_athletes(sessions, None, None, mar(20))
    assert [tuple(r) for r in plan.collect()] == [("a1", mar(1), mar(1), mar(20))]


def test_feature_transform_gives_one_row_per_day_with_the_daily_load(local_spark):
    sessions = local_spark.createDataFrame(
        [
            ("a1", mar(1), "run", 3600.0, 10000.0, 150.0, 50.0, False),
            ("a1", mar(1), "ride", 1800.0, 15000.0, None, 30.0, False),  # same day: loads add up
            ("a1", mar(3), "run", 2400.0, 8000.0, 160.0, 70.0, False),
            ("a2", mar(5), "swim", 1200.0, 1500.0, 130.0, 20.0, False),
        ],
        FEATURE_SESSIONS_DDL,
    )
    races = local_spark.createDataFrame([], "athlete_id string, race_date date, vdot double")

    plan, features = feature_transform(sessions, races, None, None, mar(5))
    rows = sorted(features.collect(), key=lambda r: (r.athlete_id, r.feature_date))

    assert [(r.athlete_id, r.feature_date) for r in rows] == [
        *[("a1", day) for day in days(mar(1), mar(5))],
        ("a2", mar(5)),
    ]
    assert [r.daily_load for r in rows] == pytest.approx([80.0, 0.0, 70.0, 0.0, 0.0, 20.0])
    assert [r.history_days for r in rows] == [0, 1, 2, 3, 4, 0]
    assert [r.days_since_last_session for r in rows] == [0, 1, 0, 1, 2, 0]
    assert rows[4].distance_7d_m == pytest.approx(33000.0)
    assert plan.count() == 2


# --------------------------------------------------------------------------------------------
# inference
# --------------------------------------------------------------------------------------------


def test_scoring_rows_cross_feature_rows_with_distances_and_the_latest_race_so_far(local_spark):
    features = local_spark.createDataFrame(
        [
            ("a1", mar(5), 40.0),
            ("a1", mar(10), 42.0),
            ("a1", mar(20), 45.0),
            ("a2", mar(5), 30.0),  # no race yet
        ],
        "athlete_id string, feature_date date, ctl double",
    )
    races = local_spark.createDataFrame(
        [
            ("a1", mar(1), "r1", 5000.0, 1200.0),
            ("a1", mar(10), "r2", 10000.0, 2500.0),  # on a feature day: counts for it
            ("a1", mar(25), "r3", 21097.5, 5400.0),  # after every feature day
        ],
        "athlete_id string, race_date date, session_id string, distance_m double, finish_time_s double",
    )
    athletes = local_spark.createDataFrame(
        [("a1", "F", date(1990, 5, 1), 58.0, 48.0, 188.0), ("a2", "M", date(1985, 1, 1), 70.0, 50.0, 185.0)],
        "athlete_id string, sex string, birth_date date, weight_kg double, hr_rest double, hr_max double",
    )
    rows = scoring_rows(features, races, athletes).collect()

    assert len(rows) == 4 * len(RACE_DISTANCES_M)
    by_day: dict[tuple, list] = {}
    for r in rows:
        by_day.setdefault((r.athlete_id, r.feature_date), []).append(r)
    assert {key: sorted(r.distance_m for r in group) for key, group in by_day.items()} == {
        key: sorted(RACE_DISTANCES_M)
        for key in [
            ("a1", mar(5)),
            ("a1", mar(10)),
            ("a1", mar(20)),
            ("a2", mar(5)),
        ]
    }
    previous = {
        key: {(r.prev_race_date, r.prev_distance_m, r.prev_finish_time_s) for r in g} for key, g in by_day.items()
    }
    assert previous == {
        ("a1", mar(5)): {(mar(1), 5000.0, 1200.0)},
        ("a1", mar(10)): {(mar(10), 10000.0, 2500.0)},
        ("a1", mar(20)): {(mar(10), 10000.0, 2500.0)},
        ("a2", mar(5)): {(None, None, None)},
    }
    for r in rows:
        assert r.as_of_date == r.feature_date
        assert r.event_date == r.feature_date + timedelta(days=1)
        assert (r.sex, r.hr_max) == (("F", 188.0) if r.athlete_id == "a1" else ("M", 185.0))


# --------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------

NAN = float("nan")


def test_weekly_summary_sums_each_week_and_takes_the_week_end_state(local_spark):
    run_date = mar(13)  # a Wednesday: its week is partial
    sessions = local_spark.createDataFrame(
        [
            ("a1", mar(6), 5000.0, 1800.0),
            ("a1", mar(9), 10000.0, 3600.0),
            ("a1", mar(10), 8000.0, 2700.0),  # Sunday: still the week of 03-04
            ("a1", mar(12), 6000.0, 2000.0),
            ("a1", mar(14), 9999.0, 9999.0),  # after the run date: ignored
        ],
        "athlete_id string, session_date date, distance_m double, duration_s double",
    )
    loads = {mar(6): 40.0, mar(9): 60.0, mar(10): 50.0, mar(12): 45.0}
    # state: ctl, atl, tsb, acwr_rolling, acwr_ewma, monotony_7d
    states = {
        mar(3): (20.0, 25.0, -5.0, NAN, NAN, 1.0),  # end of a week without sessions
        mar(10): (30.0, 45.0, -10.0, 1.6, 1.4, 2.5),
        mar(13): (31.0, 70.0, -35.0, NAN, 1.1, 1.2),
    }
    features = local_spark.createDataFrame(
        [
            ("a1", day, 99.0 if day > run_date else loads.get(day, 0.0), *states.get(day, (1.0,) * 6))
            for day in days(date(2024, 2, 29), mar(14))
        ],
        "athlete_id string, feature_date date, daily_load double, ctl double, atl double, tsb double, "
        "acwr_rolling double, acwr_ewma double, monotony_7d double",
    )
    summary = weekly_summary(sessions, features, run_date)

    assert summary.columns == SUMMARY_COLUMNS
    weeks = {r.week_start: r for r in summary.collect()}
    assert sorted(weeks) == [date(2024, 2, 26), mar(4), mar(11)]

    quiet, full, current = weeks[date(2024, 2, 26)], weeks[mar(4)], weeks[mar(11)]
    assert (quiet.week_end, quiet.sessions, quiet.distance_m, quiet.duration_s) == (mar(3), 0, 0.0, 0.0)
    assert quiet.weekly_load == pytest.approx(0.0)
    assert (quiet.ctl, quiet.acwr_rolling, quiet.flags) == (20.0, None, [])

    assert (full.week_end, full.sessions) == (mar(10), 3)
    assert (full.distance_m, full.duration_s, full.weekly_load) == pytest.approx((23000.0, 8100.0, 150.0))
    assert (full.ctl, full.atl, full.tsb, full.acwr_rolling, full.acwr_ewma, full.monotony_7d) == pytest.approx(
        states[mar(10)]
    )
    assert full.flags == ["acwr_high", "monotony_high"]

    assert (current.week_end, current.sessions, current.distance_m) == (run_date, 1, 6000.0)
    assert current.weekly_load == pytest.approx(45.0)
    assert (current.tsb, current.acwr_rolling) == (-35.0, None)  # NaN state is returned as null
    assert current.flags == ["form_very_low"]


# The point-in-time join (FeatureView.get_training_data) reads the feature table itself
# (`self._features()`); it has no pure part to test here (see tests/integration/test_feature_view.py).


def test_profile_history_keeps_every_valid_version_as_scd2(local_spark):
    """SCD type 2: version 1 open at the start, each next one from its updated_at; a broken
    update is not a version; the same updated_at twice is one version (the later landing)."""
    raw = raw_records(
        local_spark,
        (athlete_payload(weight_kg=60.0), LANDED),
        (athlete_payload(weight_kg=58.0, updated_at="2024-03-01T00:00:00Z"), LANDED),
        (athlete_payload(weight_kg=57.5, updated_at="2024-03-01T00:00:00Z"), LANDED),  # same time: a correction
        (athlete_payload(hr_rest="NaN", updated_at="2024-03-05T00:00:00Z"), LANDED),  # broken: no version
        (athlete_payload("a2", sex="M"), LANDED),
    )
    out = silver_transform(raw, DUE_BEFORE, RUN_ID)
    rows = sorted(out.profile_history.collect(), key=lambda r: (r.athlete_id, r.profile_version))
    got = [(r.athlete_id, r.profile_version, r.valid_from, r.valid_to, r.is_current, r.weight_kg) for r in rows]
    assert got == [
        ("a1", 1, None, datetime(2024, 3, 1), False, 60.0),
        ("a1", 2, datetime(2024, 3, 1), None, True, 57.5),
        ("a2", 1, None, None, True, 58.0),
    ]
    current = {r.athlete_id: r.weight_kg for r in out.athletes_valid.collect()}
    assert current == {r[0]: r[5] for r in got if r[4]}  # the current version is silver.athletes
    assert out.profile_history.columns == tables.ATHLETE_PROFILE_HISTORY.column_names
    for frame in (out.athletes_checked, out.sessions_all, out.checked, out.sessions_valid):
        frame.unpersist()


def test_a_race_gets_the_profile_valid_on_its_day_not_a_later_one(local_spark):
    """No leakage: the weight changed after the first race, so only the second race sees it."""
    from athlete_platform.training.dataset import profile_as_of

    history = local_spark.createDataFrame(
        [
            ("a1", None, datetime(2024, 3, 5, 12), "F", date(1990, 5, 1), 60.0, 48.0, 188.0),
            ("a1", datetime(2024, 3, 5, 12), None, "F", date(1990, 5, 1), 54.0, 45.0, 190.0),
        ],
        "athlete_id string, valid_from timestamp, valid_to timestamp, sex string, birth_date date, "
        "weight_kg double, hr_rest double, hr_max double",
    )
    labels = local_spark.createDataFrame(
        [("r1", "a1", date(2024, 3, 5)), ("r2", "a1", date(2024, 3, 6)), ("r3", "b", date(2024, 3, 6))],
        "session_id string, athlete_id string, race_date date",
    )
    rows = {r.session_id: r.weight_kg for r in profile_as_of(labels, history).collect()}
    assert rows == {"r1": 60.0, "r2": 54.0}  # a change at noon on the race day is not known at its start
