"""Field-by-field reading of bronze JSON records: every poison value is named, none raises."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from athlete_platform.ingestion.fields import ATHLETE_FIELDS, SESSION_FIELDS, read_record, read_records

GOOD = {
    "record_type": "session",
    "session_id": "s1",
    "athlete_id": "a1",
    "sport": "run",
    "start_time": "2024-12-31T07:00:00+01:00",
    "duration_s": 3600,
    "distance_m": 10000.5,
    "elevation_gain_m": None,
    "avg_hr": 150,
    "max_hr": 172.0,
    "rpe": 6,
    "notes": "easy 🙂",
    "is_race": False,
    "updated_at": "2024-12-31T09:00:00Z",
}


def session(**changes) -> str:
    return json.dumps(GOOD | changes)


def test_a_good_record_reads_into_typed_values():
    values, reason = read_record(session(), SESSION_FIELDS)
    assert reason is None
    assert values["start_time"] == 1_735_624_800_000_000  # 06:00 UTC, in microseconds
    assert values["duration_s"] == 3600.0 and isinstance(values["duration_s"], float)
    assert (values["rpe"], values["is_race"], values["notes"]) == (6, False, "easy 🙂")
    assert values["elevation_gain_m"] is None and values["source"] is None  # null and absent alike


# The reproduced poison records of issue 10 and their kin: value -> the rule it breaks.
POISON = {
    "start_time as a number": ({"start_time": 1735628400}, "start_time_type"),
    "start_time not a date": ({"start_time": "not-a-date"}, "start_time_unparseable"),
    "month 13": ({"start_time": "2024-13-45T07:00:00Z"}, "start_time_unparseable"),
    "year 1": ({"start_time": "0001-01-01T07:00:00Z"}, "start_time_out_of_range"),
    "year 9999 version": ({"updated_at": "9999-01-01T00:00:00Z"}, "updated_at_out_of_range"),
    "duration 'Infinity'": ({"duration_s": "Infinity"}, "duration_s_type"),
    "duration 1e400": ('"duration_s": 1e400', "duration_s_not_finite"),
    "duration NaN token": ('"duration_s": NaN', "duration_s_not_finite"),
    "elevation -Infinity token": ('"elevation_gain_m": -Infinity', "elevation_gain_m_not_finite"),
    "a 400-digit integer": ('"distance_m": ' + "9" * 400, "distance_m_not_finite"),
    "heart rate as text": ({"avg_hr": "140"}, "avg_hr_type"),
    "heart rate as boolean": ({"max_hr": True}, "max_hr_type"),
    "is_race 'yes'": ({"is_race": "yes"}, "is_race_type"),
    "is_race 1": ({"is_race": 1}, "is_race_type"),
    "rpe 4.5": ({"rpe": 4.5}, "rpe_type"),
    "nested object": ({"distance_m": {"km": 10}}, "distance_m_type"),
    "list as id": ({"session_id": ["s1"]}, "session_id_type"),
    "blank id": ({"athlete_id": "  "}, "athlete_id_format"),
    "control character in id": ({"session_id": "s\u00011"}, "session_id_format"),
    "huge id": ({"session_id": "s" * 500}, "session_id_too_long"),
    "huge note": ({"notes": "x" * 20_000}, "notes_too_long"),
    "lone surrogate in a note": ('"notes": "\\ud800"', "notes_invalid_unicode"),
    "two broken fields": ({"avg_hr": "140", "rpe": 4.5}, "avg_hr_type,rpe_type"),
}


@pytest.mark.parametrize("case", POISON)
def test_poison_values_are_named_and_nulled(case):
    change, rule = POISON[case]
    # A raw JSON fragment (not expressible through json.dumps) is spliced in.
    payload = session()[:-1] + ", " + change + "}" if isinstance(change, str) else session(**change)
    values, reason = read_record(payload, SESSION_FIELDS)
    assert reason == rule
    for broken in rule.split(","):  # a broken field is null, never a half-read value
        (field,) = [f.name for f in SESSION_FIELDS if broken.startswith(f.name + "_")]
        assert values[field] is None


@pytest.mark.parametrize(
    "payload, rule",
    [
        ("[1, 2]", "record_not_an_object"),
        ('"just a string"', "record_not_an_object"),
        ("{not json", "record_unparseable"),
        ("[" * 100_000 + "]" * 100_000, "record_unparseable"),  # nesting deep enough to overflow a parser
    ],
)
def test_records_that_are_not_objects_are_named(payload, rule):
    assert read_record(payload, SESSION_FIELDS)[1] == rule


def test_offsets_are_honoured_and_a_naive_time_is_utc():
    east = read_record(session(start_time="2024-03-11T00:30:00+02:00"), SESSION_FIELDS)[0]["start_time"]
    naive = read_record(session(start_time="2024-03-10T22:30:00"), SESSION_FIELDS)[0]["start_time"]
    assert east == naive


@pytest.mark.parametrize(
    "changes, rule",
    [
        ({"hr_rest": "NaN"}, "hr_rest_type"),
        ({"birth_date": "1990-02-30"}, "birth_date_unparseable"),
        ({"birth_date": "0001-01-01"}, "birth_date_out_of_range"),
        ({"timezone": "Mars/Olympus"}, "timezone_unknown"),
        ({"timezone": "../../../etc/passwd"}, "timezone_unknown"),
        ({"weight_kg": "58"}, "weight_kg_type"),
    ],
)
def test_athlete_fields(changes, rule):
    good = {"athlete_id": "a1", "sex": "F", "birth_date": "1990-05-01", "hr_rest": 48, "hr_max": 188}
    assert read_record(json.dumps(good), ATHLETE_FIELDS)[1] is None
    assert read_record(json.dumps(good | changes), ATHLETE_FIELDS)[1] == rule


def test_read_records_keeps_nullable_types_and_passes_lineage_through():
    batch = pd.DataFrame({"payload": [session(), session(rpe=None, is_race="yes")], "_line_number": [1, 2]})
    (out,) = read_records(iter([batch]), SESSION_FIELDS, passthrough=("payload", "_line_number"))
    assert str(out["rpe"].dtype) == "Int64" and str(out["is_race"].dtype) == "boolean"
    assert out["rpe"].isna().tolist() == [False, True]
    assert out["field_reason"].tolist() == [None, "is_race_type"]
    assert out["_line_number"].tolist() == [1, 2] and out["payload"].tolist() == batch["payload"].tolist()


@pytest.mark.parametrize(
    "written, kept",
    [
        ("felt ok\u0000", "felt ok"),  # a NUL from a broken app: dropped, the session kept
        ("tempo,\r\nfelt ok\r\n", "tempo,\nfelt ok\n"),  # Windows line ends
        ("old\rmac", "old\nmac"),
        ("bell\u0007 esc\u001b[31m del\u007f c1\u0085", "bell esc[31m del c1"),
        ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
        ("", ""),
        ("   ", "   "),  # blank notes are kept as written: a blank note is the athlete's
    ],
)
def test_notes_lose_control_characters_only(written, kept):
    values, reason = read_record(session(notes=written), SESSION_FIELDS)
    assert reason is None and values["notes"] == kept


def test_long_foreign_and_emoji_notes_are_kept_intact():
    long_note = ("Beine schwer nach der harten Woche. piernas pesadas. 🏃\u200d♀️🥵 " * 200)[:9_990]
    for note in (long_note, "dormí fatal, mucho estrés 😴", "🏃\u200d♀️ 漢字 ünïcödé", "x" * 10_000):
        values, reason = read_record(session(notes=note), SESSION_FIELDS)
        assert reason is None and values["notes"] == note  # zero-width joiners and all
