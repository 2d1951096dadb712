"""Pure parts of the streaming path: intraday features (online.intraday), event rows
(ingestion.events) and the micro-batch's validation transform (online.streaming.checked_events)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from athlete_platform.domain import physiology
from athlete_platform.features import metrics
from athlete_platform.ingestion.events import (
    KEPT_PAYLOAD_CHARS,
    MAX_PAYLOAD_CHARS,
    EventError,
    event_rows,
    payload_text,
)
from athlete_platform.lakehouse.tables import SESSION_EVENTS
from athlete_platform.online import intraday
from athlete_platform.online.intraday import BatchBase, StreamedSession

DAY0 = date(2024, 3, 1)
NOW = "2024-04-10T12:00:00.000000Z"


def streamed(session_id: str, day: date, load: float, *, event: str = "e1", updated_at: str | None = None, **kw):
    fields = dict(
        session_id=session_id,
        session_date=day.isoformat(),
        start_time=f"{day.isoformat()}T07:00:00.000000Z",
        duration_s=3600.0,
        distance_m=10_000.0,
        avg_hr=150.0,
        load=load,
        load_imputed=False,
        updated_at=updated_at,
        event_id=event,
        received_at=f"{day.isoformat()}T08:00:00.000000Z",
    )
    return StreamedSession(**(fields | kw))


def batch_row(daily: np.ndarray, upto: int) -> dict:
    """The batch feature row of day `upto` (index into `daily`, day 0 = first session), as the
    feature pipeline computes it: metrics.compute from the first session day."""
    features, _ = metrics.compute(daily[: upto + 1])
    e7, e28 = metrics.acwr_ewma_states(daily[: upto + 1])
    return {
        "feature_date": (DAY0 + timedelta(days=upto)).isoformat(),
        "atl": features["atl"][-1],
        "ctl": features["ctl"][-1],
        "ewma_acute_load": e7[-1],
        "ewma_chronic_load": e28[-1],
        "history_days": upto,
    }


def test_intraday_values_equal_the_batch_functions_over_the_whole_history():
    rng = np.random.default_rng(3)
    daily = np.where(rng.random(40) < 0.6, rng.uniform(20, 150, 40), 0.0)
    daily[38] = 0.0
    daily[39] = 0.0
    base = BatchBase.from_row(batch_row(daily, 35))
    # Today's (day 39) two sessions and one on day 37 have arrived as events; day 36, 38 are rest days.
    today, earlier = DAY0 + timedelta(days=39), DAY0 + timedelta(days=37)
    state = {
        "a": streamed("a", today, 60.0),
        "b": streamed("b", today, 25.5),
        "c": streamed("c", earlier, 80.0),
    }
    fields = intraday.intraday_fields(state, base, NOW)

    full = daily.copy()
    full[36], full[37], full[38], full[39] = 0.0, 80.0, 0.0, 85.5
    expected, _ = metrics.compute(full)
    assert fields[intraday.DATE] == today.isoformat() and fields[intraday.BASE_DATE] == base.feature_date.isoformat()
    assert fields[intraday.LOAD] == pytest.approx(85.5) and fields[intraday.SESSIONS] == 2
    for column, name in ((intraday.ATL, "atl"), (intraday.CTL, "ctl"), (intraday.TSB, "tsb")):
        assert fields[column] == pytest.approx(expected[name][-1], rel=1e-12), column
    assert fields[intraday.ACWR_EWMA] == pytest.approx(expected["acwr_ewma"][-1], rel=1e-12)
    assert fields[intraday.DURATION] == 7200.0 and fields[intraday.DISTANCE] == 20_000.0
    assert json.loads(fields[intraday.STATE]).keys() == {"a", "b", "c"}


def test_acwr_is_null_before_28_days_of_history_as_in_the_batch():
    base = BatchBase.before_first_session(DAY0)
    fields = intraday.intraday_fields({"a": streamed("a", DAY0, 50.0)}, base, NOW)
    assert fields[intraday.ACWR_EWMA] is None
    assert fields[intraday.ATL] == pytest.approx(50.0 * metrics.K_ATL)
    assert fields[intraday.TSB] == 0.0


def test_a_reposted_session_is_an_update_and_a_replay_changes_nothing():
    base = BatchBase.before_first_session(DAY0)
    first = streamed("s1", DAY0, 40.0, event="0001")
    correction = streamed("s1", DAY0, 55.0, event="0002")
    row = {intraday.STATE: None}
    once = intraday.update_row(row, base, [first, correction], NOW)
    assert once[intraday.SESSIONS] == 1 and once[intraday.LOAD] == 55.0
    # The same events again (a replayed micro-batch), in any order: the same row.
    again = intraday.update_row(once, base, [correction, first], NOW)
    assert again == once
    # An older version arriving late does not win; a later updated_at does, whatever the arrival.
    stale = intraday.update_row(once, base, [streamed("s1", DAY0, 10.0, event="0000")], NOW)
    assert stale[intraday.LOAD] == 55.0
    newer = streamed("s1", DAY0, 70.0, event="0000", updated_at="2024-03-01T09:00:00.000000Z")
    assert intraday.update_row(once, base, [newer], NOW)[intraday.LOAD] == 70.0


def test_reset_rule_when_the_batch_catches_up():
    rows = {
        "ath_1": {
            "feature_date": "2024-03-05",
            **{k: v for k, v in batch_row(np.full(10, 30.0), 4).items() if k != "feature_date"},
        }
    }
    base = BatchBase.from_row(rows["ath_1"])
    day6, day7 = date(2024, 3, 6), date(2024, 3, 7)
    fields = intraday.intraday_fields({"x": streamed("x", day6, 30.0), "y": streamed("y", day7, 45.0)}, base, NOW)
    row = {**rows["ath_1"], **fields}
    assert intraday.is_current(row) and intraday.current_intraday(row)[intraday.LOAD] == 45.0
    assert intraday.STATE not in intraday.current_intraday(row)

    # The nightly batch materializes day 6: the values are stale until re-projected from it.
    caught_up = {**row, **batch_row(np.full(10, 30.0), 5)}
    assert caught_up["feature_date"] == "2024-03-06" and not intraday.is_current(caught_up)
    assert intraday.current_intraday(caught_up) is None
    [update] = intraday.reproject_updates({"ath_1": caught_up}, NOW)
    reprojected = {**caught_up, **update}
    assert intraday.is_current(reprojected)
    assert json.loads(reprojected[intraday.STATE]).keys() == {"y"}  # the batch covers x now
    assert reprojected[intraday.ATL] == pytest.approx(metrics.compute(np.r_[np.full(6, 30.0), 45.0])[0]["atl"][-1])

    # Day 7 lands too: nothing streamed is newer, so every intraday column is cleared.
    done = {**reprojected, **batch_row(np.full(10, 30.0), 6)}
    [cleared] = intraday.reproject_updates({"ath_1": done}, NOW)
    assert all(cleared[c] is None for c in intraday.INTRADAY_COLUMNS if c != intraday.UPDATED_AT)
    assert intraday.reproject_updates({"ath_1": {**done, **cleared}}, NOW) == []


def test_session_loads_are_silvers_trimp_and_imputation():
    profile = {"sex": "F", "hr_rest": 50.0, "hr_max": 190.0}
    day = date(2024, 3, 20)
    sessions = [
        {"session_date": day.isoformat(), "duration_s": 2400.0, "avg_hr": 160.0},
        {"session_date": day.isoformat(), "duration_s": 1800.0, "avg_hr": None},
    ]
    pool = [
        intraday.LoadPoolSession(day - timedelta(days=3), 3600.0, 60.0),  # 1.0 / min
        intraday.LoadPoolSession(day - timedelta(days=10), 1800.0, 60.0),  # 2.0 / min
        intraday.LoadPoolSession(day - timedelta(days=29), 600.0, 600.0),  # outside 28 days
    ]
    (hr_load, hr_imputed), (no_hr_load, no_hr_imputed) = intraday.session_loads(sessions, profile, pool)
    assert hr_load == pytest.approx(physiology.trimp(2400.0, 160.0, 50.0, 190.0, "F")) and not hr_imputed
    assert no_hr_imputed and no_hr_load == pytest.approx(30.0 * 1.5)  # same-day sessions never feed the median
    assert intraday.session_loads([sessions[1]], profile, []) == [(0.0, True)]


def test_base_from_an_online_row_needs_every_base_field():
    assert BatchBase.from_row({"feature_date": "2024-03-05", "atl": 1.0}) is None
    assert BatchBase.from_row(None) is None
    assert BatchBase.before_first_session(DAY0).load_state() == metrics.LoadState.initial()


# --- event rows (the writer's pure part) ---------------------------------------------------------


def test_event_rows_keep_every_payload_and_order_ids_by_arrival():
    received = datetime(2024, 4, 1, 12, 0, 0, 123456)
    events = [
        {"session_id": "s1", "athlete_id": "ath_0001", "duration_s": 60},
        '{"session_id": "s2", "athlete_id": 7}',
        "{not json",
        {"session_id": "x" * 200, "notes": "y" * (MAX_PAYLOAD_CHARS + 10)},
        {"duration_s": math.nan},
    ]
    rows = event_rows(events, "api", received)
    assert set(rows) == set(SESSION_EVENTS.column_names)
    assert rows["session_id"] == ["s1", "s2", None, None, None]
    assert rows["athlete_id"] == ["ath_0001", None, None, None, None]
    assert rows["payload"][2] == "{not json" and json.loads(rows["payload"][0])["duration_s"] == 60
    assert rows["payload_truncated"] == [False, False, False, True, False]
    assert len(rows["payload"][3]) == KEPT_PAYLOAD_CHARS
    assert rows["payload"][4] == '{"duration_s":NaN}'  # kept, so the stream names it (not_finite)
    assert rows["event_id"] == sorted(rows["event_id"]) and len(set(rows["event_id"])) == 5
    later = event_rows(events[:1], "api", received + timedelta(microseconds=1))
    assert later["event_id"][0] > rows["event_id"][-1]


def test_an_event_that_is_not_json_able_is_refused_with_its_position():
    with pytest.raises(EventError, match="event 1 cannot be written as JSON"):
        payload_text({"when": datetime(2024, 1, 1)}, 1)
    with pytest.raises(EventError, match="event 0 is a list"):
        payload_text(["a"], 0)


# --- the micro-batch's validation transform -----------------------------------------------------


def test_checked_events_apply_silvers_rules(local_spark):
    from athlete_platform.online.streaming import checked_events

    received = datetime(2024, 4, 29, 20, 0)
    good = {
        "session_id": "s1",
        "athlete_id": "ath_0001",
        "sport": "run",
        "start_time": "2024-04-29T07:00:00+02:00",
        "duration_s": 3000,
        "distance_m": 10000.0,
        "avg_hr": 150,
        "max_hr": 170,
    }
    events = [good, "{broken", good | {"session_id": "s2", "athlete_id": "ath_9999"}, good | {"duration_s": -5}]
    columns = event_rows(events, "api", received)
    rows = list(zip(*(columns[c] for c in SESSION_EVENTS.column_names), strict=True))
    frame = local_spark.createDataFrame(
        [(*r[:-1], received) for r in rows], ", ".join(f"{c.name} {c.type}" for c in SESSION_EVENTS.columns)
    )
    athletes = local_spark.createDataFrame([("ath_0001",)], "athlete_id string")
    out = {r["event_id"]: r.asDict() for r in checked_events(frame, athletes).collect()}
    by_position = [out[i] for i in columns["event_id"]]
    assert by_position[0]["reason"] is None
    assert (
        by_position[0]["start_time"] == "2024-04-29T05:00:00.000000Z" and by_position[0]["session_date"] == "2024-04-29"
    )
    assert by_position[0]["received_at"] == "2024-04-29T20:00:00.000000Z"
    assert by_position[1]["reason"].startswith("record_unparseable,")  # then every rule an empty record breaks
    assert by_position[2]["reason"] == "athlete_known"
    assert "duration_positive" in by_position[3]["reason"]


# --- the writer on a real Delta table (delta-rs only: no Spark) ---------------------------------


@pytest.fixture()
def event_settings(tmp_path):
    from athlete_platform.config import load_settings

    return load_settings(environ={"ATHLETE_DATA_DIR": str(tmp_path), "ATHLETE_CATALOG__SCHEMA_PREFIX": "unit_"})


def read_events(settings):
    from deltalake import DeltaTable

    from athlete_platform.ingestion.events import events_location

    rows = DeltaTable(str(events_location(settings))).to_pyarrow_table().to_pylist()
    return sorted(rows, key=lambda r: r["event_id"])  # ids sort by arrival


def test_ingest_events_appends_every_line_malformed_ones_too(event_settings, tmp_path):
    from athlete_platform.ingestion.events import events_location, ingest_event_file

    path = tmp_path / "sessions.jsonl"
    good = json.dumps({"session_id": "s1", "athlete_id": "ath_0001", "duration_s": 60})
    path.write_bytes(b"\xef\xbb\xbf" + good.encode() + b"\r\n\n{oops\n" + b'{"session_id": "s2", "n": "\xff"}\n')
    events, commits, _ = ingest_event_file(event_settings, str(path), batch_size=2)
    assert (events, commits) == (3, 2)
    rows = read_events(event_settings)
    assert [r["payload"] for r in rows] == [good, "{oops", '{"session_id": "s2", "n": "\ufffd"}']
    assert [r["session_id"] for r in rows] == ["s1", None, "s2"]
    assert {r["source"] for r in rows} == {"cli:sessions.jsonl"}
    assert events_location(event_settings) == tmp_path / "warehouse" / "unit_bronze.db" / "session_events"
    with pytest.raises(EventError, match="Cannot read .*missing.jsonl"):
        ingest_event_file(event_settings, str(tmp_path / "missing.jsonl"))


def test_concurrent_appends_from_threads_lose_nothing(event_settings):
    from concurrent.futures import ThreadPoolExecutor

    from athlete_platform.ingestion.events import append_session_events

    def post(n: int) -> list[str]:
        return append_session_events(event_settings, [{"session_id": f"s{n}", "athlete_id": "a"}]).event_ids

    with ThreadPoolExecutor(4) as pool:
        ids = [i for batch in pool.map(post, range(24)) for i in batch]
    rows = read_events(event_settings)
    assert sorted(r["event_id"] for r in rows) == sorted(ids) and len(set(ids)) == 24
    assert sorted(r["session_id"] for r in rows) == sorted(f"s{n}" for n in range(24))
