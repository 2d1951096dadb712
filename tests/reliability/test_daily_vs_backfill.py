"""30 simulated days: daily runs with late data, corrections and bad files each day must leave
the same silver and feature tables as one backfill over those 30 days.

The sample generator's daily files carry late records (1-3 days), exact and updated
duplicates and malformed lines; each day adds a file of poison records and a valid
correction of an earlier session. Daily: day k's files land, then ingest, silver and
features run for day k (90 runs). Backfill: every file has landed, then ONE run of ingest,
silver and features for the last day, from empty tables: the catch-up a site does after an
outage, and the strongest form of the check (every incremental path must end where a
from-scratch run ends). A backfill as one run per day through Airflow's scheduler is
`tests/integration/test_training_inference.py::test_airflow_backfill_equals_daily_runs...`.
"""

from __future__ import annotations

import json
import random
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from athlete_platform.ingestion.sample_data import GeneratorConfig, generate
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.tables import FEATURE_PIPELINE_TABLES
from tests.hostile import BAD_VALUES
from tests.reliability import ledger

pytestmark = [pytest.mark.integration, pytest.mark.reliability_slow]

DAYS = 30
LINEAGE = {"_run_id", "computed_at", "_ingested_at", "rejected_at"}
COMPARED = (tables.ATHLETES, tables.SESSIONS, tables.RACES, tables.ATHLETE_ROLLING_FEATURES)


def snapshot(spark, table: str) -> list[tuple]:
    frame = spark.table(table)
    return sorted(tuple(r) for r in frame.select(*[c for c in frame.columns if c not in LINEAGE]).collect())


def daily_extras(staging: Path, first: date, seed: int) -> dict[date, Path]:
    """Per day: poison records and a valid correction of a session landed on an earlier day."""
    rng = random.Random(seed)
    extras: dict[date, Path] = {}
    earlier: list[dict] = []
    for k in range(DAYS):
        day = first + timedelta(days=k)
        lines = []
        day_file = staging / "app_export" / f"{day}.jsonl"
        for line in day_file.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("record_type") == "session" and record.get("duration_s", 0) > 0:
                earlier.append(record)
        for n in range(3):
            field, raw = rng.choice(BAD_VALUES)
            record = json.dumps({"record_type": "session", "session_id": f"poison-{day}-{n}", "athlete_id": "ath_0001"})
            lines.append(record[:-1] + f', "{field}": {raw}}}')
        if earlier:
            victim = rng.choice(earlier)
            correction = victim | {
                "duration_s": round(victim["duration_s"] * 1.1),
                "updated_at": f"{day}T23:30:00Z",
            }
            lines.append(json.dumps(correction))
        path = staging / "extras" / f"{day}-extras.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        extras[day] = path
    return extras


def land(day: date, staging: Path, landing: Path, extras: dict[date, Path]) -> None:
    app = landing / "app_export"
    app.mkdir(parents=True, exist_ok=True)
    source = staging / "app_export" / f"{day}.jsonl"
    if source.exists():
        shutil.copy(source, app / source.name)
    shutil.copy(extras[day], app / extras[day].name)


def reset(spark, names, landing: Path) -> None:
    for table in FEATURE_PIPELINE_TABLES:
        spark.sql(f"DROP TABLE IF EXISTS {names(table)}")
    shutil.rmtree(landing, ignore_errors=True)


def test_thirty_daily_runs_equal_one_backfill(spark, module_lake, tmp_path):
    names, settings = module_lake.names, module_lake.settings
    first = date(2024, 1, 1)
    staging = tmp_path / "staging"
    generate(GeneratorConfig(seed=11, n_athletes=4, n_days=DAYS, start_date=first), staging)
    extras = daily_extras(staging, first, seed=11)
    days = [first + timedelta(days=k) for k in range(DAYS)]

    with ledger.scenario("30 daily runs = one backfill") as entry:
        entry.faults = sum(len(p.read_text().splitlines()) for p in extras.values())
        reset(spark, names, settings.landing_path)
        for day in days:
            land(day, staging, settings.landing_path, extras)
            for step in ("ingest", "silver", "features"):
                module_lake.run(step, day, f"daily-{day}")
                entry.runs += 1
        daily = {t.name: snapshot(spark, names(t)) for t in COMPARED}

        reset(spark, names, settings.landing_path)
        for day in days:
            land(day, staging, settings.landing_path, extras)
        for step in ("ingest", "silver", "features"):
            module_lake.run(step, days[-1], "backfill")
            entry.runs += 1
        backfill = {t.name: snapshot(spark, names(t)) for t in COMPARED}

        for table in COMPARED:
            entry.lost += len(set(daily[table.name]) - set(backfill[table.name]))
            entry.duplicated += len(backfill[table.name]) - len(set(backfill[table.name]))
        for table in COMPARED:
            assert backfill[table.name] == daily[table.name], table.name
