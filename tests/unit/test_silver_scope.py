"""The incremental scope of silver (`ingestion.silver_scope`): when a run may be incremental, and
which athletes and rows it judges. End to end (equal to a full rebuild): test_incremental_silver."""

from __future__ import annotations

from datetime import datetime

import pytest

from athlete_platform.ingestion.silver_scope import (
    Recorded,
    bronze_keys,
    full_rebuild_reason,
    judged_athletes,
    profile_athletes,
    scope_rows,
    should_record,
    silver_layout,
    touched_sessions,
)

T1, T2 = datetime(2026, 3, 2), datetime(2026, 3, 3)
RAW_DDL = (
    "record_type string, payload string, _source_file string, _line_number bigint, athlete_id string, session_id string"
)


def test_recorded_state_round_trips_and_unreadable_state_means_none():
    recorded = Recorded(7, datetime(2026, 3, 2, 0, 0, 0, 250), "table-id", silver_layout())
    assert Recorded.from_properties(recorded.properties()) == recorded
    assert Recorded.from_properties({}) == Recorded(None, None)
    broken = recorded.properties() | {"athlete_platform.silver.due_before": "yesterday"}
    assert Recorded.from_properties(broken) == Recorded(None, None)


LAYOUT = silver_layout()
BEFORE = Recorded(3, T1, "id-1", LAYOUT)


@pytest.mark.parametrize(
    ("recorded", "now", "refresh", "feed", "missing", "expected"),
    [
        (BEFORE, Recorded(5, T2, "id-1", LAYOUT), False, True, [], None),
        (BEFORE, Recorded(3, T1, "id-1", LAYOUT), False, True, [], None),  # a re-run of the same day
        (BEFORE, Recorded(5, T2, "id-1", LAYOUT), True, True, [], "--full-refresh"),
        (BEFORE, Recorded(5, T2, "id-1", LAYOUT), False, True, ["silver.races"], "silver.races not written"),
        (Recorded(None, None), Recorded(5, T2, "id-1", LAYOUT), False, True, [], "no silver run recorded yet"),
        (BEFORE, Recorded(5, T2, "id-1", LAYOUT), False, False, [], "no Change Data Feed"),
        (BEFORE, Recorded(5, T2, "id-2", LAYOUT), False, True, [], "not the table silver last read"),
        (BEFORE, Recorded(5, T2, "id-1", "other"), False, True, [], "columns changed"),
        (Recorded(6, T1, "id-1", LAYOUT), Recorded(5, T2, "id-1", LAYOUT), False, True, [], "before the recorded 6"),
        (Recorded(3, T2, "id-1", LAYOUT), Recorded(5, T1, "id-1", LAYOUT), False, True, [], "a backfill"),
    ],
)
def test_full_rebuild_reason(recorded, now, refresh, feed, missing, expected):
    reason = full_rebuild_reason(recorded, now, refresh, feed, missing)
    assert reason == expected if expected is None else expected in reason


def test_a_run_for_an_earlier_day_records_nothing():
    later = Recorded(5, T2, "id-1", LAYOUT)
    assert not should_record(later, Recorded(6, T1, "id-1", LAYOUT))  # the next run must still see 6's changes
    assert should_record(BEFORE, later)
    assert not should_record(later, later)  # nothing moved: no commit
    assert should_record(Recorded(None, None), BEFORE)


def raw(local_spark, rows):
    """Bronze rows (record_type, athlete, session); key columns null where `None` and the payload
    holds the keys, as in rows landed before bronze had the columns."""
    import json

    data = []
    for n, (kind, athlete, session, stored) in enumerate(rows, 1):
        payload = {"record_type": kind, "athlete_id": athlete} | ({"session_id": session} if session else {})
        keys = (athlete, session) if stored else (None, None)
        data.append((kind, json.dumps(payload), "f.jsonl", n, *keys))
    return local_spark.createDataFrame(data, RAW_DDL)


def ids(frame, column="athlete_id"):
    return sorted(r[column] for r in frame.collect())


def test_keys_come_from_the_columns_or_else_the_payload(local_spark):
    frame = raw(
        local_spark, [("session", "a", "s1", True), ("session", "b", "s2", False), ("athlete", "c", None, False)]
    )
    keys = {r["_line_number"]: (r["athlete_id"], r["session_id"]) for r in bronze_keys(frame).collect()}
    assert keys == {1: ("a", "s1"), 2: ("b", "s2"), 3: ("c", None)}


def scope_of(frame, seed_lines):
    keys = bronze_keys(frame).cache()
    seeds = keys.where(f"_line_number IN ({', '.join(map(str, seed_lines))})")
    whole = profile_athletes(seeds)
    sessions = touched_sessions(keys, seeds, whole)
    athletes = judged_athletes(keys, seeds, sessions, whole)
    rows = scope_rows(frame, whole, sessions, athletes, seeds)
    return whole, sessions, athletes, sorted(r["_line_number"] for r in rows.collect())


def test_a_changed_profile_judges_the_athlete_whole_and_whoever_shares_a_session(local_spark):
    frame = raw(
        local_spark,
        [
            ("athlete", "a", None, True),
            ("session", "a", "s1", True),
            ("session", "b", "s1", True),  # s1 moved from a to b
            ("athlete", "b", None, True),
            ("session", "b", "s2", True),  # b's own session: not touched
            ("session", "d", "s3", False),  # unrelated (an old row: keys in the payload)
        ],
    )
    whole, sessions, athletes, rows = scope_of(frame, [1])  # a's profile changed
    assert ids(whole) == ["a"]
    assert ids(sessions, "session_id") == ["s1"]
    assert ids(athletes) == ["a", "b"]
    assert rows == [1, 2, 3, 4]  # a's records, every record of s1, b's profile


def test_a_new_session_record_judges_that_session_only(local_spark):
    frame = raw(
        local_spark,
        [
            ("athlete", "a", None, True),
            ("session", "a", "s1", True),
            ("session", "a", "s2", True),
            ("session", "a", "s2", False),  # a correction of s2 just landed (an old-style row)
        ],
    )
    whole, sessions, athletes, rows = scope_of(frame, [4])
    assert ids(whole) == [] and ids(sessions, "session_id") == ["s2"] and ids(athletes) == ["a"]
    assert rows == [1, 3, 4]  # a's profile and both records of s2; not s1


def test_a_seed_without_a_usable_key_is_still_judged(local_spark):
    frame = raw(local_spark, [("session", None, None, True), ("session", "a", "s1", True)])
    whole, sessions, athletes, rows = scope_of(frame, [1])
    assert ids(athletes) == [] and ids(sessions, "session_id") == []
    assert rows == [1]
