"""Incremental silver equals a full rebuild (issue 16, item 1), on the real session and catalog.

Three daily runs judge only the athletes whose records changed or became due, and leave the
others alone; the data holds what makes incremental work hard: a late record, a correction, a
broken correction (the last valid version stays), a session moved to another athlete by a
correction, sessions landed early and deferred to their day, sessions accepted only once their
athlete's profile lands, a stored session whose imputed load a late record changes, and an
erasure (rows deleted from bronze). A full rebuild of the last
day must then change no row of silver or quarantine.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from athlete_platform.ingestion.silver_scope import SILVER_TABLES
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.delta import current_version, table_properties
from athlete_platform.lakehouse.tables import FEATURE_PIPELINE_TABLES

pytestmark = pytest.mark.integration

LINEAGE = {"_run_id", "computed_at", "_ingested_at", "rejected_at"}
SILVER = SILVER_TABLES  # every table silver writes, the SCD type 2 profile history too
# Three run days, well inside the plausible history of records landed now.
TODAY = datetime.now(UTC).date()
D1, D2, D3 = (TODAY - timedelta(days=n) for n in (12, 11, 10))


def athlete(athlete_id: str, updated: str = "2024-01-01T00:00:00Z", **changes) -> dict:
    return {
        "record_type": "athlete",
        "athlete_id": athlete_id,
        "sex": "F",
        "birth_date": "1990-05-01",
        "weight_kg": 60.0,
        "hr_rest": 48,
        "hr_max": 188,
        "lthr": 170,
        "timezone": "UTC",
        "updated_at": updated,
    } | changes


def session(session_id: str, athlete_id: str, day, hour: int = 7, version: int = 0, **changes) -> dict:
    start = datetime.combine(day, datetime.min.time()) + timedelta(hours=hour)
    return {
        "record_type": "session",
        "session_id": session_id,
        "athlete_id": athlete_id,
        "sport": "run",
        "start_time": start.isoformat() + "Z",
        "duration_s": 3600.0,
        "distance_m": 10000.0,
        "elevation_gain_m": 50.0,
        "avg_hr": 145.0,
        "max_hr": 170.0,
        "rpe": 5,
        "notes": None,
        "is_race": False,
        "source": "app",
        "updated_at": (start + timedelta(hours=2 + version)).isoformat() + "Z",
    } | changes


def land(settings, name: str, records: list[dict]) -> None:
    folder = settings.landing_path / "app_export"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records))


def recorded_state(spark, table: str) -> dict[str, str]:
    properties = table_properties(spark, table)
    return {
        k: v for k, v in properties.items() if k.startswith(("athlete_platform.source.", "athlete_platform.silver."))
    }


def snapshot(spark, table: str) -> list[tuple]:
    frame = spark.table(table)
    return sorted(tuple(r) for r in frame.select(*[c for c in frame.columns if c not in LINEAGE]).collect())


@pytest.fixture(scope="module")
def lake(spark, module_lake):
    names, settings = module_lake.names, module_lake.settings
    for table in FEATURE_PIPELINE_TABLES:
        spark.sql(f"DROP TABLE IF EXISTS {names(table)}")
    shutil.rmtree(settings.landing_path, ignore_errors=True)
    race = session("a-race", "ath_a", D1, hour=9, is_race=True, duration_s=2400.0, distance_m=10000.0)
    race["splits"] = [{"km": k, "distance_m": 1000.0, "time_s": 240.0, "avg_hr": 160.0} for k in range(1, 11)]
    land(
        settings,
        "day1.jsonl",
        [
            athlete("ath_a"),
            athlete("ath_c"),
            athlete("ath_d"),
            athlete("ath_e"),
            session("a1", "ath_a", D1),
            # No heart rate: its load is imputed from ath_a's sessions of the 28 days before, so
            # the late a0 of day 2 changes it though no record of it changes.
            session("a-nohr", "ath_a", D1, hour=12, avg_hr=None, max_hr=None),
            race,
            session("a3", "ath_a", D3),  # landed early: deferred until the run of D3
            session("c1", "ath_c", D1),
            session("m1", "ath_c", D1, hour=18),  # moved to ath_a by a correction on day 2
            session("d1", "ath_d", D1),  # erased from bronze before day 3
            session("e1", "ath_e", D1),  # ath_e gets nothing later: never judged again
            session("b1", "ath_b", D1),  # no profile yet: quarantined, accepted on day 3
        ],
    )
    runs = {}
    runs["d1"] = (module_lake.run("ingest", D1, "d1"), module_lake.run("silver", D1, "d1"))
    land(
        settings,
        "day2.jsonl",
        [
            session("a1", "ath_a", D1, version=1, duration_s=4200.0),  # a correction
            session("a0", "ath_a", D1 - timedelta(days=5)),  # late
            session("a2", "ath_a", D2),
            session("c1", "ath_c", D1, version=1, duration_s=-5.0),  # broken correction: quarantined
            session("m1", "ath_a", D1, hour=18, version=1),  # moved from ath_c to ath_a
            athlete("ath_d", f"{D2}T06:00:00Z", weight_kg=57.0),  # a profile update: version 2 of ath_d
        ],
    )
    runs["d2"] = (module_lake.run("ingest", D2, "d2"), module_lake.run("silver", D2, "d2"))
    land(settings, "day3.jsonl", [athlete("ath_b")])
    runs["d3-ingest"] = module_lake.run("ingest", D3, "d3")
    spark.sql(f"DELETE FROM {names(tables.SESSIONS_RAW)} WHERE payload LIKE '%\"d1\"%'")  # an erasure
    runs["d3"] = module_lake.run("silver", D3, "d3")
    incremental = {t.name: snapshot(spark, names(t)) for t in SILVER}
    versions = {t.name: current_version(spark, names(t)) for t in SILVER}
    runs["rerun"] = module_lake.run("silver", D3, "d3-rerun")
    after_rerun = {t.name: current_version(spark, names(t)) for t in SILVER}
    runs["full"] = module_lake.run("silver", D3, "d3-full", full_refresh=True)
    full = {t.name: snapshot(spark, names(t)) for t in SILVER}
    recorded = recorded_state(spark, names(tables.SESSIONS))
    runs["backfill"] = module_lake.run("silver", D1, "d1-again")  # a past day again
    backfill = {t.name: snapshot(spark, names(t)) for t in SILVER}
    return {
        "backfill": backfill,
        "recorded": recorded,
        "recorded_after_backfill": recorded_state(spark, names(tables.SESSIONS)),
        "names": names,
        "runs": runs,
        "incremental": incremental,
        "full": full,
        "versions": versions,
        "after_rerun": after_rerun,
    }


def test_a_full_rebuild_changes_no_row_of_the_incremental_runs(lake):
    for table in lake["full"]:
        assert lake["incremental"][table] == lake["full"][table], table


def test_each_day_judges_only_what_changed(lake):
    runs = lake["runs"]
    assert runs["d1"][1].athletes_in_scope is None  # nothing recorded yet: every record
    # Day 2: the five sessions of the day's file, whose records belong to ath_a and ath_c (m1
    # moved), and ath_d judged whole for its profile update (its session d1).
    assert (runs["d2"][1].sessions_in_scope, runs["d2"][1].athletes_in_scope) == (6, 3)
    # Day 3: ath_b's profile (judged whole: b1), d1 erased, a3 now due; nothing of ath_c or ath_e.
    assert (runs["d3"].sessions_in_scope, runs["d3"].athletes_in_scope) == (3, 3)
    assert runs["d3"].reconciles and runs["d2"][1].reconciles
    assert runs["full"].athletes_in_scope is None


def test_a_rerun_of_the_same_day_judges_nothing_and_commits_nothing(lake):
    assert (lake["runs"]["rerun"].sessions_in_scope, lake["runs"]["rerun"].athletes_in_scope) == (0, 0)
    assert lake["after_rerun"] == lake["versions"]


def test_late_corrected_moved_deferred_and_erased_records_end_where_they_belong(spark, lake):
    sessions = {r.session_id: r for r in spark.table(lake["names"](tables.SESSIONS)).collect()}
    assert set(sessions) == {"a0", "a1", "a-nohr", "a-race", "a2", "a3", "b1", "c1", "e1", "m1"}
    assert sessions["a-nohr"].load_imputed and sessions["a-nohr"].session_load > 0  # from a0's rate
    assert sessions["a1"].duration_s == 4200.0  # the correction won
    assert sessions["c1"].duration_s == 3600.0  # the broken correction did not
    assert sessions["m1"].athlete_id == "ath_a"
    races = spark.table(lake["names"](tables.RACES)).collect()
    assert [r.session_id for r in races] == ["a-race"]
    splits = spark.table(lake["names"](tables.RACE_SPLITS)).where("session_id = 'a-race'").count()
    assert splits == 10
    quarantined = {
        (r.record_key, r.reason.split(",")[0])
        for r in spark.table(lake["names"](tables.QUARANTINE)).where("source = 'silver'").collect()
    }
    assert ("c1", "duration_positive") in quarantined
    assert ("b1", "athlete_known") in quarantined
    history = spark.table(lake["names"](tables.ATHLETE_PROFILE_HISTORY)).where("athlete_id = 'ath_d'")
    versions = [
        (r.profile_version, r.valid_from, r.is_current, r.weight_kg)
        for r in history.orderBy("profile_version").collect()
    ]
    assert versions == [
        (1, None, False, 60.0),
        (2, datetime.combine(D2, datetime.min.time()) + timedelta(hours=6), True, 57.0),
    ]


def test_a_run_for_a_past_day_changes_nothing_and_records_nothing(lake):
    """It is a full rebuild that defers every later session (and may not delete them), so the
    state stays where the later run left it: the next run still sees every change since."""
    assert lake["runs"]["backfill"].athletes_in_scope is None
    assert lake["backfill"] == lake["full"]
    assert lake["recorded"] and lake["recorded_after_backfill"] == lake["recorded"]
