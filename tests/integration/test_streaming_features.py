"""Streaming features end to end (issue 11 item 5), real Spark, real Delta, the real SQLite online store.

The module's batch runs up to 2024-04-27 and is materialized; then every session record the app
exported (all landing files, malformed lines included) is posted as an event. The stream
(`processAllAvailable`, no timing) must leave each athlete's intraday values equal to the
nightly batch's row for the same day once silver and features have run over the same sessions;
bad events go to quarantine with their reason while the stream keeps going; the nightly batch
then resets the intraday values (online = offline). Last, the stream runs as a real process,
is killed with SIGKILL mid-stream and restarted from its checkpoint: every event counted once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import date, timedelta

import pytest

from athlete_platform.ingestion.events import append_session_events, events_location
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.delta_rs import table_location
from athlete_platform.online import intraday
from athlete_platform.online.backends import open_store
from athlete_platform.online.check import check_online_store
from athlete_platform.online.streaming import IntradayWriter, checkpoint_path, prepare_tables, start_query
from tests.conftest import generate_sample
from tests.integration.test_cli import CLI
from tests.own_lake import own_names, own_settings  # noqa: F401  (the module's own settings and names)

pytestmark = pytest.mark.integration

BASE_DAY = date(2024, 4, 27)  # the batch (and the online store) stop here before the events arrive
LAST_DAY = date(2024, 4, 29)  # the sample's last day
TODAY = LAST_DAY + timedelta(days=1)  # the kill test's sessions


@pytest.fixture(scope="module")
def lake(module_lake):
    return module_lake


@pytest.fixture(scope="module")
def batch(spark, lake):
    """Sample data landed, bronze for every file, silver + features + online store up to BASE_DAY."""
    import shutil

    settings = lake.settings
    shutil.rmtree(settings.landing_path, ignore_errors=True)
    shutil.rmtree(checkpoint_path(settings), ignore_errors=True)
    shutil.rmtree(events_location(settings), ignore_errors=True)
    settings.online_store_path.unlink(missing_ok=True)
    generate_sample(settings)
    lake.run("ingest", LAST_DAY)
    for step in ("silver", "features", "materialize"):
        lake.run(step, BASE_DAY)
    return settings


@pytest.fixture(scope="module")
def store(batch):
    with open_store(batch) as opened:
        yield opened


@pytest.fixture(scope="module")
def stream(spark, lake, batch, store):
    """The streaming query in this process, driven with processAllAvailable()."""
    source = prepare_tables(spark, lake.names, batch)
    writer = IntradayWriter(spark, lake.names, store, "test_streaming_features")
    query = start_query(spark, source, writer, checkpoint_path(batch), trigger_s=1)
    yield query, writer
    query.stop()


def exported_session_lines(settings) -> list[str]:
    """Every line of every app export except athlete profiles (malformed lines included), in landing order."""
    lines = []
    for path in sorted((settings.landing_path / "app_export").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                if json.loads(line).get("record_type") == "athlete":
                    continue
            except (ValueError, AttributeError):
                pass
            if line.strip():
                lines.append(line)
    return lines


def stream_quarantine(spark, names) -> dict[str, str]:
    rows = spark.table(names(tables.QUARANTINE)).where("source = 'stream'").collect()
    return {row.record_key: row.reason for row in rows}


def test_events_update_intraday_values_equal_to_the_nightly_batch(spark, lake, batch, store, stream):
    query, writer = stream
    lines = exported_session_lines(batch)
    assert len(lines) > 300
    result = append_session_events(batch, lines, source="cli:exports")
    assert result.accepted == len(lines)
    query.processAllAvailable()

    # The events table is in the catalog by its three-level name, written by delta-rs.
    events = spark.table(lake.names(tables.SESSION_EVENTS))
    assert events.count() == len(lines)
    assert (
        spark.sql(f"DESCRIBE DETAIL {lake.names(tables.SESSION_EVENTS)}")
        .first()["location"]
        .endswith(str(table_location(batch, tables.SESSION_EVENTS)))
    )
    quarantined = stream_quarantine(spark, lake.names)
    malformed = [eid for eid, line in zip(result.event_ids, lines, strict=True) if not line.startswith("{")]
    assert malformed and all(quarantined[eid].startswith("record_unparseable") for eid in malformed)

    online = {key: row for key, row in store.get(store.keys()).items() if intraday.is_current(row)}
    assert len(online) >= 4, "most athletes trained on the last two days"
    # The nightly batch over the same sessions: silver + features for the last day.
    for step in ("silver", "features"):
        lake.run(step, LAST_DAY)
    features = {
        (r.athlete_id, r.feature_date.isoformat()): r.asDict()
        for r in spark.table(lake.names(tables.ATHLETE_ROLLING_FEATURES))
        .where(f"feature_date > '{BASE_DAY}'")
        .collect()
    }
    sessions = spark.table(lake.names(tables.SESSIONS)).where(f"session_date > '{BASE_DAY}'").collect()
    for athlete, row in online.items():
        day = row[intraday.DATE]
        offline = features[(athlete, day)]
        assert row[intraday.BASE_DATE] == BASE_DAY.isoformat()
        assert row[intraday.LOAD] == pytest.approx(offline["daily_load"], rel=1e-9, abs=1e-9), athlete
        for column, name in ((intraday.ATL, "atl"), (intraday.CTL, "ctl"), (intraday.TSB, "tsb")):
            assert row[column] == pytest.approx(offline[name], rel=1e-9, abs=1e-9), (athlete, name)
        if offline["acwr_ewma"] is None:
            assert row[intraday.ACWR_EWMA] is None
        else:
            assert row[intraday.ACWR_EWMA] == pytest.approx(offline["acwr_ewma"], rel=1e-9)
        same_day = [s for s in sessions if s.athlete_id == athlete and s.session_date.isoformat() == day]
        assert row[intraday.SESSIONS] == len(same_day)
        last = max(same_day, key=lambda s: (s.start_time, s.session_id))
        assert row[intraday.LAST_SESSION_ID] == last.session_id
    # Athletes without a current intraday row had no session after BASE_DAY.
    assert {s.athlete_id for s in sessions} == set(online)


def test_bad_events_are_quarantined_with_their_reason_and_the_stream_keeps_going(spark, lake, batch, store, stream):
    query, writer = stream
    good = {
        "session_id": "late-good-1",
        "athlete_id": "ath_0001",
        "sport": "run",
        "start_time": f"{LAST_DAY}T18:00:00Z",
        "duration_s": 1800,
        "distance_m": 5000.0,
        "avg_hr": 140,
        "max_hr": 150,
    }
    bad = append_session_events(
        batch,
        ['{"session_id": "x", "athlete_id": ', good | {"athlete_id": "ath_9999"}, good | {"duration_s": -60}],
    )
    query.processAllAvailable()
    assert query.isActive and query.exception() is None
    quarantined = stream_quarantine(spark, lake.names)
    malformed, unknown, negative = (quarantined[eid] for eid in bad.event_ids)
    assert malformed.startswith("record_unparseable")
    assert unknown == "athlete_known"
    assert negative.split(",")[0] == "duration_positive"
    # The next good event is counted by the same running query.
    append_session_events(batch, [good])
    query.processAllAvailable()
    row = store.get(["ath_0001"])["ath_0001"]
    assert "late-good-1" in json.loads(row[intraday.STATE])
    assert query.isActive and query.exception() is None
    # A replayed micro-batch (crash after the store write, before the checkpoint commit) changes nothing.
    before = store.get(store.keys())
    writer(spark.table(lake.names(tables.SESSION_EVENTS)), 10_000)
    after = store.get(store.keys())
    strip = lambda rows: {k: {c: v for c, v in r.items() if c != intraday.UPDATED_AT} for k, r in rows.items()}  # noqa: E731
    assert strip(after) == strip(before)
    assert stream_quarantine(spark, lake.names) == quarantined | {}


def test_the_nightly_batch_resets_intraday_values(spark, lake, batch, store, stream):
    """After silver + features + materialize for the last day, online = offline, and the
    intraday values the batch now covers are reset (only later sessions stay)."""
    _, writer = stream
    lake.run("materialize", LAST_DAY)
    rows = store.get(store.keys())
    assert not any(intraday.is_current(r) for r in rows.values())
    writer.sweep()
    rows = store.get(store.keys())
    assert all(r.get(intraday.DATE) is None for r in rows.values())
    report = check_online_store(lake.context(LAST_DAY))
    assert report.differences == [], report.lines()


def test_killed_stream_restarts_from_its_checkpoint_and_counts_every_event_once(spark, lake, batch, store, stream):
    query, _ = stream
    query.stop()  # the job runs as its own process from here on
    source_name = lake.names(tables.SESSION_EVENTS)
    profiles = {r.athlete_id: r for r in spark.table(lake.names(tables.ATHLETES)).collect()}
    athletes = sorted(profiles)

    def session(athlete: str, n: int, duration_s: int, hr: int) -> dict:
        return {
            "session_id": f"{athlete}-today-{n}",
            "athlete_id": athlete,
            "sport": "run",
            "start_time": f"{TODAY}T{6 + n:02d}:00:00Z",
            "duration_s": duration_s,
            "distance_m": duration_s * 2.5,
            "avg_hr": hr,
            "max_hr": hr + 15,
            "updated_at": f"{TODAY}T{6 + n:02d}:30:00Z",
        }

    posts = [[session(a, n, 1200 + 60 * n, 130 + n) for a in athletes] for n in range(5)]
    # Re-posted sessions are updates: a corrected duration, and a plain duplicate.
    corrected = session(athletes[0], 1, 4000, 150) | {"updated_at": f"{TODAY}T20:00:00Z"}
    posts.append([corrected, session(athletes[1], 2, 1320, 132), '{"broken": '])
    expected = {}
    for post in posts:
        for event in post:
            if isinstance(event, dict):
                expected[event["session_id"]] = event

    env = os.environ.copy()
    log = open(batch.data_path / "stream-killed.log", "w")  # noqa: SIM115
    job = subprocess.Popen([*CLI, "stream", "--trigger-s", "1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)  # fmt: skip
    try:
        append_session_events(batch, posts[0])
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # the job is up and has counted the first post
            row = store.get([athletes[0]]).get(athletes[0], {})
            if row.get(intraday.DATE) == TODAY.isoformat():
                break
            assert job.poll() is None, (batch.data_path / "stream-killed.log").read_text()[-3000:]
            time.sleep(0.5)
        else:
            pytest.fail("the streaming job counted nothing in 300 s")
        for post in posts[1:4]:
            append_session_events(batch, post)
            time.sleep(0.4)
        os.killpg(job.pid, signal.SIGKILL)  # mid-stream: batches in flight or not yet started
        job.wait()
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
        log.close()
    append_session_events(batch, posts[4])
    append_session_events(batch, posts[5])

    # Restart from the checkpoint (in this process: a second JVM start would only cost time).
    restarted = start_query(spark, source_name, IntradayWriter(spark, lake.names, store, "restarted"),
                            checkpoint_path(batch), available_now=True)  # fmt: skip
    restarted.awaitTermination(600)
    assert not restarted.isActive and restarted.exception() is None
    killed_log = (batch.data_path / "stream-killed.log").read_text()
    assert "stream stopped" not in killed_log  # it really died mid-stream

    rows = store.get(athletes)
    base_rows = {a: intraday.BatchBase.from_row(rows[a]) for a in athletes}
    for athlete in athletes:
        mine = [e for e in expected.values() if e["athlete_id"] == athlete]
        loads = intraday.session_loads(
            [e | {"session_date": TODAY.isoformat()} for e in mine], profiles[athlete].asDict()
        )
        state = {
            e["session_id"]: intraday.StreamedSession(
                session_id=e["session_id"],
                session_date=TODAY.isoformat(),
                start_time=e["start_time"].replace("Z", ".000000Z"),
                duration_s=float(e["duration_s"]),
                distance_m=float(e["distance_m"]),
                avg_hr=float(e["avg_hr"]),
                load=load,
                load_imputed=imputed,
                updated_at=e["updated_at"],
                event_id="",
                received_at="",
            )
            for e, (load, imputed) in zip(mine, loads, strict=True)
        }
        want = intraday.intraday_fields(state, base_rows[athlete], "")
        got = rows[athlete]
        assert set(json.loads(got[intraday.STATE])) == set(state), athlete
        assert got[intraday.SESSIONS] == len(state) == 5
        for column in (intraday.LOAD, intraday.ATL, intraday.CTL, intraday.TSB, intraday.DURATION):
            assert got[column] == pytest.approx(want[column], rel=1e-12), (athlete, column)
    corrected_row = json.loads(rows[athletes[0]][intraday.STATE])[corrected["session_id"]]
    assert corrected_row["duration_s"] == 4000.0
