"""Poison records through bronze -> silver -> features on the real session and catalog.

The records of issue 10 that used to stop the pipeline for good (a numeric or impossible
start time, infinite durations, a broken profile update, a version stamp in year 9999) are
landed beside a clean sample: every step still runs, each poison record is in quarantine
with the rule it broke, and silver and the feature table equal the clean run's, apart from
the one valid correction landed with them.
"""

from __future__ import annotations

import json
import shutil
from datetime import date

import pytest
from pyspark.sql import functions as F

from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.tables import FEATURE_PIPELINE_TABLES
from tests.conftest import generate_sample
from tests.own_lake import non_finite_values

pytestmark = pytest.mark.integration

LINEAGE = {"_run_id", "computed_at", "_ingested_at", "rejected_at"}
WATCHED = (tables.ATHLETES, tables.SESSIONS, tables.RACES, tables.ATHLETE_ROLLING_FEATURES)


def snapshot(spark, table: str) -> list[tuple]:
    frame = spark.table(table)
    return sorted(tuple(r) for r in frame.select(*[c for c in frame.columns if c not in LINEAGE]).collect())


def poison_lines(athlete: dict, victim: dict) -> dict[str, str]:
    """record key -> JSON line: each breaks one rule; the keys are what quarantine names."""

    def session(session_id: str, **changes) -> str:
        record = victim | {"session_id": session_id} | changes
        return json.dumps(record)

    lines = {
        "p-number-start": session("p-number-start", start_time=1735628400),
        "p-not-a-date": session("p-not-a-date", start_time="not-a-date"),
        "p-month-13": session("p-month-13", start_time="2024-13-45T07:00:00Z"),
        "p-year-1": session("p-year-1", start_time="0001-01-01T07:00:00Z"),
        "p-year-1900": session("p-year-1900", start_time="1900-01-01T07:00:00Z"),
        "p-infinity-text": session("p-infinity-text", duration_s="Infinity"),
        "p-a-year-long": session("p-a-year-long", duration_s=365 * 86400.0, distance_m=0.0),
        "p-rpe-negative": session("p-rpe-negative", rpe=-7),
        "p-hr-order": session("p-hr-order", avg_hr=200, max_hr=30),
        "p-hr-text": session("p-hr-text", avg_hr="140"),
        "p-race-yes": session("p-race-yes", is_race="yes"),
        "p-rpe-half": session("p-rpe-half", rpe=4.5),
        # A correction of a real session stamped in year 9999 would hide every later one.
        victim["session_id"]: session(victim["session_id"], updated_at="9999-01-01T00:00:00Z", rpe=1),
        # A profile update that breaks a rule: the last valid profile must stay.
        athlete["athlete_id"]: json.dumps(athlete | {"hr_rest": "NaN", "updated_at": "2030-01-01T00:00:00Z"}),
    }
    # Not expressible through json.dumps: non-standard number tokens.
    without = lambda field, key: json.dumps({k: v for k, v in victim.items() if k != field} | {"session_id": key})  # noqa: E731
    lines["p-1e400"] = without("duration_s", "p-1e400")[:-1] + ', "duration_s": 1e400}'
    lines["p-elevation-nan"] = without("elevation_gain_m", "p-elevation-nan")[:-1] + ', "elevation_gain_m": NaN}'
    return lines


@pytest.fixture(scope="module")
def lake(spark, module_lake):
    """A clean sample run, its snapshot, then the poison file landed and every step run again."""
    names, settings = module_lake.names, module_lake.settings
    for table in FEATURE_PIPELINE_TABLES:
        spark.sql(f"DROP TABLE IF EXISTS {names(table)}")
    shutil.rmtree(settings.landing_path, ignore_errors=True)
    generate_sample(settings)
    run_date = settings.sample_data.last_date
    for step in ("ingest", "silver", "features"):
        module_lake.run(step, run_date, "clean")
    clean = {t.name: snapshot(spark, names(t)) for t in WATCHED}

    raw = spark.table(names(tables.SESSIONS_RAW))
    athlete = json.loads(raw.where("record_type = 'athlete'").orderBy("_source_file", "_line_number").first().payload)
    victim_row = spark.table(names(tables.SESSIONS)).where(~F.col("is_race")).orderBy("session_id").first()
    victim = json.loads(
        raw.where(F.get_json_object("payload", "$.session_id") == victim_row.session_id).first().payload
    )
    lines = poison_lines(athlete, victim)
    # A valid correction landed after the poison one: it must win over the year-9999 stamp.
    correction = victim | {"updated_at": f"{run_date}T23:00:00Z", "rpe": 2 if victim["rpe"] != 2 else 3}
    path = settings.landing_path / "app_export" / "zz-poison.jsonl"
    path.write_text("\n".join([*lines.values(), json.dumps(correction)]) + "\n")

    counts = {step: module_lake.run(step, run_date, "poisoned") for step in ("ingest", "silver", "features")}
    return {
        "names": names,
        "clean": clean,
        "lines": lines,
        "victim": victim,
        "athlete": athlete,
        "correction": correction,
        "counts": counts,
    }


def test_every_poison_record_is_quarantined_with_its_rule(spark, lake):
    quarantine = spark.table(lake["names"](tables.QUARANTINE)).where("source = 'silver' AND _run_id = 'poisoned'")
    reasons = {r.record_key: r.reason for r in quarantine.collect()}
    # A bare NaN token is not JSON: bronze already refuses that line (strict JSON).
    assert set(reasons) == set(lake["lines"]) - {"p-elevation-nan"}
    landing = spark.table(lake["names"](tables.QUARANTINE)).where("source = 'landing'")
    assert landing.where(F.col("payload").contains('"p-elevation-nan"')).count() == 1
    expected_first_rule = {
        "p-number-start": "start_time_type",
        "p-not-a-date": "start_time_unparseable",
        "p-month-13": "start_time_unparseable",
        "p-year-1": "start_time_out_of_range",
        "p-year-1900": "start_plausible",
        "p-infinity-text": "duration_s_type",
        "p-a-year-long": "duration_plausible",
        "p-rpe-negative": "rpe_range",
        "p-hr-order": "hr_order",
        "p-hr-text": "avg_hr_type",
        "p-race-yes": "is_race_type",
        "p-rpe-half": "rpe_type",
        "p-1e400": "duration_s_not_finite",
        lake["victim"]["session_id"]: "updated_at_out_of_range",
    }
    for key, rule in expected_first_rule.items():
        assert rule in reasons[key].split(","), (key, reasons[key])
    assert "hr_rest_type" in reasons[lake["athlete"]["athlete_id"]].split(",")
    assert lake["counts"]["silver"].reconciles


def test_silver_and_features_equal_the_clean_run_but_for_the_valid_correction(spark, lake):
    names, victim = lake["names"], lake["victim"]
    after = {t.name: snapshot(spark, names(t)) for t in WATCHED}
    assert after["athletes"] == lake["clean"]["athletes"]  # the broken profile update changed nothing
    assert after["races"] == lake["clean"]["races"]
    sessions = spark.table(names(tables.SESSIONS))
    assert sessions.count() == len(lake["clean"]["sessions"])
    assert sessions.where(F.col("session_id") == victim["session_id"]).first().rpe == lake["correction"]["rpe"]
    # RPE is not a feature input: the feature table is exactly the clean one.
    assert after["athlete_rolling_features"] == lake["clean"]["athlete_rolling_features"]


def test_no_non_finite_or_out_of_range_value_reaches_silver_or_features(spark, lake):
    names = lake["names"]
    assert non_finite_values(spark, names) == []
    oldest = spark.table(names(tables.SESSIONS)).agg(F.min("session_date")).first()[0]
    assert oldest >= date(2000, 1, 1)
