"""The API's inference log into Delta (real Spark, Delta, quarantine) and the A/B report on it."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest

from athlete_platform.inference import online_log as ol
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.ddl import ensure_table
from athlete_platform.lakehouse.step import wall_clock
from athlete_platform.reporting.ab_report import build_ab_report

pytestmark = pytest.mark.integration

RACES = [  # athlete, session, day, distance, finish time
    ("ath_1", "s1", date(2024, 6, 1), 5000.0, 1200.0),
    ("ath_2", "s2", date(2024, 6, 3), 5000.0, 1500.0),
    ("ath_3", "s3", date(2024, 6, 5), 10000.0, 2400.0),
]


def line(request_id: str, athlete: str, variant: str, predicted: dict[float, float], feature_date: str) -> str:
    return json.dumps(
        {
            "request_id": request_id,
            "logged_at": "2026-12-01T10:00:00.000001Z",
            "route": "race-predictions",
            "athlete_id": athlete,
            "variant": variant,
            "model_name": "uc_athlete_data.ml.time_estimator",
            "model_version": "1" if variant == "champion" else "2",
            "feature_date": feature_date,
            "race_date": None,
            "inputs": {"race_distance_m": list(predicted)},
            "outputs": [{"race_distance_m": d, "predicted_finish_time_s": t} for d, t in predicted.items()],
            "latency_ms": 0.9,
        }
    )


@pytest.fixture(scope="module")
def log_files(module_lake):
    folder = ol.log_folder(module_lake.settings)
    folder.mkdir(parents=True, exist_ok=True)
    past = folder / ol.log_file_name(wall_clock() - timedelta(hours=2), 101)
    current = folder / ol.log_file_name(wall_clock() + timedelta(hours=2), 102)  # "open" for the whole module
    past.write_text(
        line("r1", "ath_1", "champion", {5000.0: 1260.0, 10000.0: 2600.0}, "2024-05-25")
        + "\n"
        + line("r2", "ath_2", "challenger", {5000.0: 1470.0}, "2024-05-30")
        + "\n"
        + "this is not json\n"
        + line("r3", "ath_3", "champion", {10000.0: 2300.0}, "2024-06-01")[:50]  # cut by a crash
    )
    finished = line("r4", "ath_3", "challenger", {10000.0: 2450.0}, "2024-06-02")
    current.write_text(line("r5", "ath_1", "champion", {5000.0: 1230.0}, "2024-05-31") + "\n" + finished[:30])
    return folder, past, current, finished


def counts(lake) -> tuple[int, int]:
    spark, names = lake.spark, lake.names
    rows = spark.table(names(tables.ONLINE_INFERENCE_LOG)).count()
    quarantined = spark.table(names(tables.QUARANTINE)).where("source = 'inference_log'").count()
    return rows, quarantined


def test_flush_moves_complete_lines_to_delta_quarantines_the_rest_and_reruns_change_nothing(module_lake, log_files):
    folder, past, current, finished = log_files
    first = module_lake.run("flush-inference-log", date(2026, 12, 1))
    # past file: 4 lines (2 records with 3 predictions, 1 unparseable, 1 truncated); current: 1 complete line
    assert (first.files, first.lines, first.rows_read, first.quarantined, first.files_moved) == (2, 5, 4, 2, 1)
    assert first.rows_inserted == 4
    assert counts(module_lake) == (4, 2)
    assert not past.exists() and (folder / "flushed").is_dir() and current.exists()
    reasons = {
        r.reason
        for r in module_lake.spark.table(module_lake.names(tables.QUARANTINE))
        .where("source = 'inference_log'")
        .collect()
    }
    assert reasons == {"line_unparseable", "line_truncated"}

    again = module_lake.run("flush-inference-log", date(2026, 12, 1))
    assert (again.rows_read, again.rows_inserted, again.files_moved) == (1, 0, 0)
    assert counts(module_lake) == (4, 2)

    current.write_text(current.read_text()[: -len(finished[:30])] + finished + "\n")  # the writer finished the line
    third = module_lake.run("flush-inference-log", date(2026, 12, 1))
    assert (third.rows_read, third.rows_inserted) == (2, 1)
    assert counts(module_lake) == (5, 2)
    row = (
        module_lake.spark.table(module_lake.names(tables.ONLINE_INFERENCE_LOG))
        .where("request_id = 'r1' AND prediction_index = 1")
        .first()
    )
    assert (row.race_distance_m, row.predicted_finish_time_s, row.variant, str(row.feature_date)) == (
        10000.0,
        2600.0,
        "champion",
        "2024-05-25",
    )
    assert row.logged_at == datetime(2026, 12, 1, 10, 0, 0, 1)


def test_the_ab_report_scores_each_variant_on_the_races_that_followed(module_lake, log_files):
    spark, names = module_lake.spark, module_lake.names
    table = ensure_table(spark, names, tables.RACES)
    spark.createDataFrame(
        [(*race, 40.0, "t") for race in RACES],
        "athlete_id string, session_id string, race_date date, distance_m double, finish_time_s double, "
        "vdot double, _run_id string",
    ).select(*tables.RACES.column_names).writeTo(table).append()
    report = build_ab_report(spark, names, horizon_days=28)
    scores = {s.variant: s for s in report.scores}
    # champion: r1's 5 km on features of 05-25 and r5's on 05-31 predict the same race s1; r5 (later
    # features) counts. r1's 10 km has no 10 km race of ath_1. challenger: r2 -> s2, r4 -> s3.
    assert scores["champion"].races == 1
    assert scores["champion"].mape == pytest.approx(abs(1230 - 1200) / 1200)
    assert scores["challenger"].races == 2
    assert scores["challenger"].mape == pytest.approx((abs(1470 - 1500) / 1500 + abs(2450 - 2400) / 2400) / 2)
    assert (scores["champion"].requests, scores["challenger"].requests) == (2, 2)
    assert scores["challenger"].model_versions == ("2",)
