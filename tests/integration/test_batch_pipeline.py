"""Generator -> bronze -> silver -> features on a small seed, with the real session and catalog.

Checks the acceptance of the feature-pipeline issue: counts reconcile, bad records are in
quarantine with their rule, re-runs change nothing, the feature table has one row per
athlete per day and equals an independent day-by-day recomputation from silver.sessions,
and incremental runs (including late data) equal a full recompute.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import UTC, date, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from athlete_platform.ingestion.fields import clean_text
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.tables import FEATURE_PIPELINE_TABLES
from tests import device_file_factory as devices
from tests.conftest import generate_sample
from tests.own_lake import own_names, own_settings  # noqa: F401  (the module's own lakehouse)

pytestmark = pytest.mark.integration


BATCH_TABLES = [spec for spec in FEATURE_PIPELINE_TABLES]
LINEAGE = {"_run_id", "computed_at", "_ingested_at", "rejected_at"}


def snapshot(spark, table: str, keys: list[str]) -> list[tuple]:
    frame = spark.table(table)
    columns = [c for c in frame.columns if c not in LINEAGE]
    return sorted(tuple(r) for r in frame.select(*columns).collect())


@pytest.fixture(scope="module")
def batch(spark, names, settings, module_lake):
    """Land sample data + device files, run every step once for the last generated day."""
    for table in BATCH_TABLES:
        spark.sql(f"DROP TABLE IF EXISTS {names(table)}")
    shutil.rmtree(settings.landing_path, ignore_errors=True)
    summary = generate_sample(settings)
    run_date = settings.sample_data.last_date

    device_dir = settings.landing_path / "devices" / "ath_0001"
    device_dir.mkdir(parents=True)
    devices.write_gpx(device_dir / "morning.gpx", start=datetime(2024, 3, 3, 7, 0, tzinfo=UTC))
    shutil.copy(device_dir / "morning.gpx", device_dir / "same-content-again.gpx")
    devices.write_tcx(device_dir / "ride.tcx", start=datetime(2024, 3, 5, 17, 0, tzinfo=UTC), sport="Biking")
    devices.write_fit(device_dir / "broken.fit", start=datetime(2024, 3, 6, 6, 0, tzinfo=UTC))
    devices.truncate(device_dir / "broken.fit", 0.5)
    devices.write_gpx(
        settings.landing_path / "devices" / "no-athlete-folder.gpx", start=datetime(2024, 3, 7, 7, 0, tzinfo=UTC)
    )

    bronze = module_lake.run("ingest", date(2030, 1, 1), "run-1", settings=settings)
    silver = module_lake.run("silver", run_date, "run-1")
    features = module_lake.run("features", run_date, "run-1")
    return {"summary": summary, "run_date": run_date, "bronze": bronze, "silver": silver, "features": features}


def test_bronze_counts_reconcile_with_the_generator(spark, names, batch):
    summary, bronze = batch["summary"], batch["bronze"]
    assert bronze.reconciles
    # 120 daily files + 5 device files (one duplicate by content is skipped, not counted)
    assert bronze.files == summary.files_written + 4
    app = (
        spark.table(names(tables.LANDING_FILES)).agg({"lines": "sum", "accepted": "sum", "quarantined": "sum"}).first()
    )
    assert app["sum(lines)"] == summary.lines_written
    assert app["sum(quarantined)"] == summary.malformed_lines
    assert app["sum(accepted)"] == summary.records_written
    landing_q = spark.table(names(tables.QUARANTINE)).where("source = 'landing'").count()
    assert landing_q == summary.malformed_lines


def test_device_files_ingested_once_and_bad_ones_quarantined_with_reason(spark, names, batch):
    rows = {r.path.rsplit("/", 1)[-1]: r for r in spark.table(names(tables.DEVICE_FILES)).collect()}
    assert set(rows) == {"morning.gpx", "ride.tcx", "broken.fit", "no-athlete-folder.gpx"}
    assert rows["morning.gpx"].status == "ingested"
    assert rows["ride.tcx"].status == "ingested"
    assert rows["broken.fit"].status == "quarantined" and rows["broken.fit"].error.startswith("fit:")
    assert "no athlete folder" in rows["no-athlete-folder.gpx"].error
    reasons = [r.reason for r in spark.table(names(tables.QUARANTINE)).where("source = 'device_file'").collect()]
    assert len(reasons) == 2
    device_sessions = spark.table(names(tables.SESSIONS)).where("source LIKE 'device:%'").collect()
    assert sorted(s.source for s in device_sessions) == ["device:gpx", "device:tcx"]
    assert all(s.athlete_id == "ath_0001" and s.session_load >= 0 for s in device_sessions)


def test_invalid_sessions_are_quarantined_with_their_rule(spark, names, batch):
    summary = batch["summary"]
    quarantined = {}
    for row in spark.table(names(tables.QUARANTINE)).where("source = 'silver'").collect():
        quarantined.setdefault(row.record_key, set()).update(row.reason.split(","))
    expected = {sid: rule for rule, ids in summary.invalid_session_ids.items() for sid in ids}
    assert expected, "the generator should have produced invalid sessions at this seed"
    for session_id, rule in expected.items():
        assert rule in quarantined.get(session_id, set()), (session_id, rule)
    silver_ids = {r.session_id for r in spark.table(names(tables.SESSIONS)).select("session_id").collect()}
    assert not silver_ids & set(expected)
    assert batch["silver"].reconciles


def test_silver_is_deduplicated_latest_record_wins(spark, names, batch):
    summary = batch["summary"]
    sessions = spark.table(names(tables.SESSIONS))
    assert sessions.count() == sessions.select("session_id").distinct().count()
    app_sessions = sessions.where("source = 'app'").count()
    assert app_sessions == summary.distinct_valid_session_ids
    # For an updated duplicate, silver holds the payload with the greatest updated_at.
    raw = spark.table(names(tables.SESSIONS_RAW)).where("record_type = 'session'").collect()
    versions: dict[str, list[dict]] = {}
    for row in raw:
        record = json.loads(row.payload)
        versions.setdefault(record["session_id"], []).append(record)
    updated = [sid for sid in summary.dirt_session_ids["updated_duplicate"] if sid in versions]
    assert updated
    by_id = {r.session_id: r for r in sessions.where(F.col("session_id").isin(updated)).collect()}
    for sid in updated:
        latest = max(versions[sid], key=lambda rec: rec["updated_at"])
        if sid in by_id:
            # silver keeps a note as written, less control characters (ingestion.fields.clean_text)
            assert by_id[sid].notes == clean_text(latest["notes"]) and by_id[sid].rpe == latest["rpe"]


def test_start_times_are_utc(spark, names, batch):
    raw = spark.table(names(tables.SESSIONS_RAW)).where("record_type = 'session'").limit(200).collect()
    sample = {}
    for row in raw:
        record = json.loads(row.payload)
        sample[record["session_id"]] = datetime.fromisoformat(record["start_time"])
    found = spark.table(names(tables.SESSIONS)).where(F.col("session_id").isin(list(sample))).collect()
    assert found
    for row in found:
        local = sample[row.session_id]
        expected_utc = (local - local.utcoffset()).replace(tzinfo=None)
        assert row.start_time == expected_utc
        assert row.session_date == expected_utc.date()


def test_one_feature_row_per_athlete_per_day(spark, names, batch):
    run_date = batch["run_date"]
    features = spark.table(names(tables.ATHLETE_ROLLING_FEATURES))
    firsts = {
        r.athlete_id: r.first
        for r in spark.sql(
            f"SELECT athlete_id, min(session_date) AS first FROM {names(tables.SESSIONS)} GROUP BY 1"
        ).collect()
    }
    counts = {
        r.athlete_id: (r.n, r.lo, r.hi)
        for r in features.groupBy("athlete_id")
        .agg({"feature_date": "count"})
        .withColumnRenamed("count(feature_date)", "n")
        .join(
            features.groupBy("athlete_id").agg({"feature_date": "min"}).withColumnRenamed("min(feature_date)", "lo"),
            "athlete_id",
        )
        .join(
            features.groupBy("athlete_id").agg({"feature_date": "max"}).withColumnRenamed("max(feature_date)", "hi"),
            "athlete_id",
        )
        .collect()
    }
    assert set(counts) == set(firsts)
    for athlete, first in firsts.items():
        n, lo, hi = counts[athlete]
        assert (lo, hi) == (first, run_date)
        assert n == (run_date - first).days + 1
    assert features.count() == features.select("athlete_id", "feature_date").distinct().count()


def independent_features(sessions: list, races: list, first: date, run_date: date) -> dict[date, dict]:
    """Day-by-day recomputation straight from DESIGN.md section 4 (no shared code)."""
    days = [first + timedelta(days=i) for i in range((run_date - first).days + 1)]
    load = {d: 0.0 for d in days}
    for s in sessions:
        load[s.session_date] += s.session_load
    k_atl, k_ctl = 1 - math.exp(-1 / 7), 1 - math.exp(-1 / 42)
    lam7, lam28 = 2 / 8, 2 / 29
    atl = ctl = e7 = e28 = 0.0
    out = {}

    def window(d, n):
        return [load.get(d - timedelta(days=i), 0.0) for i in range(n)]

    for i, d in enumerate(days):
        tsb = ctl - atl
        atl += k_atl * (load[d] - atl)
        ctl += k_ctl * (load[d] - ctl)
        e7 = lam7 * load[d] + (1 - lam7) * e7
        e28 = lam28 * load[d] + (1 - lam28) * e28
        w7, w28 = window(d, 7), window(d, 28)
        chronic = sum(w28) / 28
        mean7 = sum(w7) / 7
        std7 = math.sqrt(sum((x - mean7) ** 2 for x in w7) / 7)
        monotony = mean7 / std7 if max(w7) != min(w7) else None
        in7 = [s for s in sessions if 0 <= (d - s.session_date).days < 7]
        in28 = [s for s in sessions if 0 <= (d - s.session_date).days < 28]
        past = [s.session_date for s in sessions if s.session_date <= d]
        vdots = [r.vdot for r in races if 0 <= (d - r.race_date).days < 90]
        out[d] = {
            "atl": atl,
            "ctl": ctl,
            "tsb": tsb,
            "acwr_rolling": (mean7 / chronic if chronic > 0 else None) if i >= 27 else None,
            "acwr_ewma": (e7 / e28 if e28 > 0 else None) if i >= 27 else None,
            "monotony_7d": monotony,
            "strain_7d": sum(w7) * monotony if monotony is not None else None,
            "distance_7d_m": sum(s.distance_m for s in in7),
            "sessions_28d": len(in28),
            "duration_28d_s": sum(s.duration_s for s in in28),
            "days_since_last_session": (d - max(past)).days,
            "vdot_best_90d": max(vdots) if vdots else None,
        }
    return out


def test_features_match_an_independent_recomputation(spark, names, batch):
    run_date = batch["run_date"]
    sessions = spark.table(names(tables.SESSIONS)).collect()
    races = spark.table(names(tables.RACES)).collect()
    rows = spark.table(names(tables.ATHLETE_ROLLING_FEATURES)).collect()
    by_athlete: dict[str, dict] = {}
    for row in rows:
        by_athlete.setdefault(row.athlete_id, {})[row.feature_date] = row
    checked = 0
    for athlete, stored in by_athlete.items():
        mine = [s for s in sessions if s.athlete_id == athlete]
        expected = independent_features(
            mine, [r for r in races if r.athlete_id == athlete], min(s.session_date for s in mine), run_date
        )
        assert set(expected) == set(stored)
        for day, values in expected.items():
            for column, want in values.items():
                got = stored[day][column]
                if want is None:
                    assert got is None or math.isnan(got), (athlete, day, column, got)
                else:
                    assert got == pytest.approx(want, rel=1e-6, abs=1e-6), (athlete, day, column)
                checked += 1
    assert checked > 1000


def test_rerunning_every_step_changes_no_row(spark, names, settings, batch, module_lake):
    run_date = batch["run_date"]
    watched = BATCH_TABLES
    before = {table: snapshot(spark, names(table), []) for table in watched}
    again = module_lake.run("ingest", date(2030, 1, 1), "run-2", settings=settings)
    assert again.files == 0 and again.records_in == 0
    module_lake.run("silver", run_date, "run-2")
    counts = module_lake.run("features", run_date, "run-2")
    assert counts.athletes == 0 and counts.rows_written == 0
    for table in watched:
        assert snapshot(spark, names(table), []) == before[table], table


def test_silver_for_an_earlier_date_defers_later_sessions(spark, names, batch, module_lake):
    """A backfill run of silver neither deletes nor quarantines sessions after its run date."""
    earlier = batch["run_date"] - timedelta(days=10)
    sessions, quarantine = names(tables.SESSIONS), names(tables.QUARANTINE)
    before = snapshot(spark, sessions, [])
    quarantined_before = spark.table(quarantine).count()
    counts = module_lake.run("silver", earlier, "run-earlier")
    assert counts.reconciles
    later = spark.table(sessions).where(f"session_date > DATE'{earlier}'").count()
    assert counts.sessions_deferred >= later > 0
    assert snapshot(spark, sessions, []) == before
    assert spark.table(quarantine).count() == quarantined_before


def test_incremental_days_and_late_data_equal_a_full_recompute(spark, names, settings, batch, module_lake):
    features = names(tables.ATHLETE_ROLLING_FEATURES)
    run_date = batch["run_date"]
    # A late record: a hard session 30 days ago for ath_0002, landing today.
    late_day = run_date - timedelta(days=30)
    late = {
        "record_type": "session",
        "session_id": "ath_0002-late-1",
        "athlete_id": "ath_0002",
        "sport": "run",
        "start_time": f"{late_day.isoformat()}T06:00:00+00:00",
        "duration_s": 5400,
        "distance_m": 16000.0,
        "elevation_gain_m": 120.0,
        "avg_hr": 160,
        "max_hr": 182,
        "rpe": 8,
        "notes": "late upload",
        "is_race": False,
        "source": "app",
        "updated_at": f"{run_date.isoformat()}T20:00:00Z",
    }
    (settings.landing_path / "app_export" / "late-upload.jsonl").write_text(json.dumps(late) + "\n")
    before_late = {r.feature_date: r.ctl for r in spark.table(features).where("athlete_id = 'ath_0002'").collect()}

    module_lake.run("ingest", date(2030, 1, 1), "run-3", settings=settings)
    module_lake.run("silver", run_date, "run-3")
    incremental = module_lake.run("features", run_date, "run-3")
    assert not incremental.full_refresh and incremental.athletes == 1  # only ath_0002 recomputed
    after_late = {r.feature_date: r.ctl for r in spark.table(features).where("athlete_id = 'ath_0002'").collect()}
    assert all(after_late[d] == before_late[d] for d in before_late if d < late_day)
    assert all(after_late[d] > before_late[d] for d in before_late if d >= late_day)

    # One more day of nothing new for everyone: carried forward from the stored state.
    next_day = run_date + timedelta(days=3)
    module_lake.run("features", next_day, "run-4")
    incremental_rows = snapshot(spark, features, [])
    module_lake.run("features", next_day, "run-5", full_refresh=True)
    full_rows = snapshot(spark, features, [])
    assert len(incremental_rows) == len(full_rows)
    for inc, full in zip(incremental_rows, full_rows, strict=True):
        assert inc[:2] == full[:2]
        for a, b in zip(inc[2:], full[2:], strict=True):
            if isinstance(a, float) and isinstance(b, float):
                assert a == pytest.approx(b, rel=1e-9, abs=1e-9) or (math.isnan(a) and math.isnan(b))
            else:
                assert a == b


def test_feature_rows_before_a_later_first_session_are_deleted(spark, names, settings, batch, module_lake):
    """When an athlete's first sessions move later (a correction), its feature history starts later."""
    run_date = batch["run_date"]
    sessions, features = names(tables.SESSIONS), names(tables.ATHLETE_ROLLING_FEATURES)
    athlete = "ath_0003"
    first_day = spark.table(sessions).where(f"athlete_id = '{athlete}'").agg(F.min("session_date")).first()[0]
    firsts = spark.table(sessions).where(f"athlete_id = '{athlete}' AND session_date = DATE'{first_day}'").collect()
    # Valid corrections that move those sessions to the run date's morning. (An invalid
    # correction would not do: it is quarantined and the last valid version stays.)
    corrections = [
        {
            "record_type": "session",
            "session_id": row.session_id,
            "athlete_id": athlete,
            "sport": row.sport,
            "start_time": f"{run_date.isoformat()}T06:00:00Z",
            "duration_s": row.duration_s,
            "distance_m": row.distance_m,
            "avg_hr": row.avg_hr,
            "max_hr": row.max_hr,
            "rpe": row.rpe,
            "is_race": row.is_race,
            "source": "app",
            "updated_at": f"{run_date.isoformat()}T23:00:00Z",
        }
        for row in firsts
    ]
    (settings.landing_path / "app_export" / "corrections.jsonl").write_text(
        "".join(json.dumps(c) + "\n" for c in corrections)
    )
    module_lake.run("ingest", date(2030, 1, 1), "run-first", settings=settings)
    module_lake.run("silver", run_date, "run-first")
    module_lake.run("features", run_date, "run-first")
    new_first = spark.table(sessions).where(f"athlete_id = '{athlete}'").agg(F.min("session_date")).first()[0]
    assert new_first > first_day
    rows = spark.table(features).where(f"athlete_id = '{athlete}'")
    lo, hi = rows.agg(F.min("feature_date"), F.max("feature_date")).first()
    assert lo == new_first and hi >= run_date
    assert rows.count() == (hi - lo).days + 1  # one row per day, none before the new first session


def test_landing_paths_with_spaces_percent_and_plus_are_tracked_as_written(
    spark, names, settings, tmp_path, module_lake
):
    """Spark reports file URIs percent-encoded; bronze must record the plain path it listed."""
    elsewhere = settings.model_copy(update={"data_dir": tmp_path / "data zone 100%+"})
    landing = elsewhere.landing_path
    (landing / "app_export").mkdir(parents=True)
    export = landing / "app_export" / "day 1%20+x.jsonl"
    export.write_text('{"record_type": "athlete", "athlete_id": "ath_path_test"}\nnot json\n')
    counts = module_lake.run("ingest", date(2030, 1, 1), "run-paths", settings=elsewhere)
    assert counts.files == 1 and counts.records_in == 2 and counts.reconciles
    path = str(export.resolve())
    tracked = spark.table(names(tables.LANDING_FILES)).where(f"path = '{path}'").first()
    assert (tracked.lines, tracked.accepted, tracked.quarantined) == (2, 1, 1)
    assert spark.table(names(tables.SESSIONS_RAW)).where(f"_source_file = '{path}'").count() == 1
    assert spark.table(names(tables.QUARANTINE)).where(f"source_file = '{path}'").count() == 1
    again = module_lake.run("ingest", date(2030, 1, 1), "run-paths-2", settings=elsewhere)
    assert again.files == 0  # seen: not read again
