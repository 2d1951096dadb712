"""The inference log: line format, reading files being written, matching races, the A/B score."""

from __future__ import annotations

import json
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from athlete_platform.inference import online_log as ol
from athlete_platform.reporting import ab_report as ab


def record(**overrides) -> dict:
    line = {
        "request_id": "a" * 32,
        "logged_at": "2026-12-02T07:00:00.123456Z",
        "route": "race-predictions",
        "athlete_id": "ath_0001",
        "variant": "champion",
        "model_name": "uc_athlete_data.ml.time_estimator",
        "model_version": "3",
        "feature_date": "2024-12-30",
        "race_date": "2024-12-31",
        "inputs": {"race_distance_m": [5000, 10000]},
        "outputs": [
            {"race_distance_m": 5000.0, "predicted_finish_time_s": 1500.5},
            {"race_distance_m": 10000.0, "predicted_finish_time_s": 3120.25},
        ],
        "latency_ms": 1.25,
    }
    line.update(overrides)
    return line


def test_a_line_gives_one_row_per_prediction_with_its_fields_typed():
    rows = ol.parse_line(json.dumps(record()))
    assert [r["prediction_index"] for r in rows] == [0, 1]
    assert [r["race_distance_m"] for r in rows] == [5000.0, 10000.0]
    assert [r["predicted_finish_time_s"] for r in rows] == [1500.5, 3120.25]
    assert rows[0]["logged_at"] == datetime(2026, 12, 2, 7, 0, 0, 123456)  # naive UTC
    assert rows[0]["feature_date"] == date(2024, 12, 30) and rows[0]["race_date"] == date(2024, 12, 31)
    assert json.loads(rows[1]["output_json"]) == {"race_distance_m": 10000.0, "predicted_finish_time_s": 3120.25}
    assert json.loads(rows[0]["inputs_json"]) == {"race_distance_m": [5000, 10000]}


def test_an_offset_timestamp_is_converted_to_utc():
    rows = ol.parse_line(json.dumps(record(logged_at="2026-12-02T09:00:00+02:00")))
    assert rows[0]["logged_at"] == datetime(2026, 12, 2, 7, 0)


def test_live_coaching_takes_the_distance_from_its_inputs():
    line = record(
        route="live-coaching",
        inputs={"race_distance_m": 21097.5, "elapsed_s": 1800},
        outputs=[{"predicted_finish_time_s": 5400.0}],
    )
    (row,) = ol.parse_line(json.dumps(line))
    assert row["race_distance_m"] == 21097.5 and row["predicted_finish_time_s"] == 5400.0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "line_unparseable"),
        ("[1, 2]", "line_not_an_object"),
        (json.dumps({k: v for k, v in record().items() if k != "variant"}), "variant_missing"),
        (json.dumps(record(latency_ms="fast")), "latency_ms_type"),
        (json.dumps(record(latency_ms=True)), "latency_ms_type"),
        (json.dumps(record(athlete_id=7)), "athlete_id_type"),
        (json.dumps(record(route="v3")), "route_unknown"),
        (json.dumps(record(outputs=[])), "outputs_empty"),
        (json.dumps(record(outputs=[3.5])), "outputs_type"),
        (json.dumps(record(feature_date="yesterday")), "feature_date_format"),
        (json.dumps(record(logged_at="noon")), "logged_at_format"),
        ("[" * 100_000, "line_unparseable"),
    ],
)
def test_a_line_that_is_not_a_record_is_rejected_with_its_reason(text, reason):
    with pytest.raises(ol.LineRejected, match=f"^{reason}$"):
        ol.parse_line(text)


def test_a_non_finite_or_absent_prediction_is_kept_as_null_not_rejected():
    (row,) = ol.parse_line(json.dumps(record(outputs=[{"race_distance_m": 5000, "predicted_finish_time_s": None}])))
    assert row["predicted_finish_time_s"] is None


def test_files_of_past_hours_are_closed_and_the_current_hour_is_open(tmp_path):
    now = datetime(2026, 12, 2, 7, 30)
    assert ol.log_file_name(now, 42) == "inference-2026120207-42.jsonl"
    assert ol.is_closed(tmp_path / "inference-2026120206-42.jsonl", now)
    assert not ol.is_closed(tmp_path / "inference-2026120207-42.jsonl", now)
    assert not ol.is_closed(tmp_path / "notes.jsonl", now)


def test_an_open_file_leaves_its_unterminated_last_line_for_the_next_flush(tmp_path):
    path = tmp_path / "inference-2026120207-1.jsonl"
    whole = json.dumps(record())
    path.write_text(whole + "\n" + "garbage\n" + whole[:40])
    read = ol.read_file(path, closed=False)
    assert read.lines == 2 and len(read.rows) == 2
    assert [(where, reason) for where, _, reason in read.rejected] == [(f"{path.name}:2", "line_unparseable")]
    assert all(row["source_file"] == str(path) for row in read.rows)


def test_a_closed_file_quarantines_a_last_line_cut_by_a_crash(tmp_path):
    path = tmp_path / "inference-2026120206-1.jsonl"
    whole = json.dumps(record())
    path.write_text(whole + "\n" + whole[:40])
    read = ol.read_file(path, closed=True)
    assert read.lines == 2
    assert len(read.rows) == 2  # the first line's two predictions
    assert [reason for _, _, reason in read.rejected] == ["line_truncated"]


def test_moving_a_flushed_file_files_it_by_day(tmp_path):
    path = tmp_path / "inference-2026120206-1.jsonl"
    path.write_text("x\n")
    assert ol.move_flushed(path, tmp_path)
    assert (tmp_path / "flushed" / "2026-12-02" / path.name).read_text() == "x\n"
    assert not path.exists()


# --- A/B report ---------------------------------------------------------------------------------


def matched_frame(variant: str, athletes: int, races_each: int, error: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(athletes):
        for r in range(races_each):
            actual = 1200 + 100 * rng.random()
            signed = error * (1 + 0.2 * rng.standard_normal()) * rng.choice([-1, 1])
            rows.append(
                (variant, f"{variant}_{a}", f"s{a}_{r}", date(2024, 6, 1), 5000.0, "1", actual * (1 + signed), actual)
            )
    return pd.DataFrame(rows, columns=list(ab.MATCHED_COLUMNS))


def test_a_clearly_better_challenger_wins_and_its_interval_holds_its_mape():
    matched = pd.concat([matched_frame("champion", 30, 3, 0.08, 1), matched_frame("challenger", 30, 3, 0.03, 2)])
    report = ab.ab_report(matched, pd.Series({"champion": 400, "challenger": 90}), samples=500)
    scores = {s.variant: s for s in report.scores}
    for s in scores.values():
        assert s.races == 90 and s.athletes == 30
        assert s.mape_low <= s.mape <= s.mape_high
    assert scores["challenger"].requests == 90
    assert scores["champion"].mape == pytest.approx(
        (
            matched_frame("champion", 30, 3, 0.08, 1).eval(
                "abs(predicted_finish_time_s - finish_time_s) / finish_time_s"
            )
        ).mean()
    )
    (comparison,) = report.comparisons
    assert (comparison.variant, comparison.control, comparison.verdict) == ("challenger", "champion", "variant")
    assert comparison.high < 0
    assert any(line.startswith("  winner: challenger beats champion") for line in report.lines())


def test_equal_variants_are_not_declared_a_winner():
    matched = pd.concat([matched_frame("champion", 20, 2, 0.05, 3), matched_frame("challenger", 20, 2, 0.05, 4)])
    report = ab.ab_report(matched, pd.Series({"champion": 40, "challenger": 40}), samples=500)
    (comparison,) = report.comparisons
    assert comparison.verdict == "none" and comparison.low < 0 < comparison.high
    assert any("no significant difference yet" in line for line in report.lines())


def test_a_variant_without_scored_races_is_listed_but_not_compared():
    matched = matched_frame("champion", 5, 2, 0.05, 5)
    report = ab.ab_report(matched, pd.Series({"champion": 10, "challenger": 2}), samples=100)
    assert {s.variant: s.races for s in report.scores} == {"challenger": 0, "champion": 10}
    assert report.comparisons[0].verdict == "none"
    assert any("not comparable yet" in line for line in report.lines())


def test_races_are_matched_once_per_variant_athlete_and_race_with_the_latest_prediction(local_spark):
    log = local_spark.createDataFrame(
        [
            # two predictions of the same race: the one on later features counts
            (
                "r1",
                0,
                datetime(2026, 1, 1),
                "race-predictions",
                "ath_1",
                "champion",
                "1",
                date(2024, 5, 1),
                None,
                5000.0,
                1300.0,
            ),
            (
                "r2",
                0,
                datetime(2026, 1, 2),
                "race-predictions",
                "ath_1",
                "champion",
                "1",
                date(2024, 5, 20),
                None,
                5000.0,
                1250.0,
            ),
            # a distance the athlete did not race within the horizon
            (
                "r2",
                1,
                datetime(2026, 1, 2),
                "race-predictions",
                "ath_1",
                "champion",
                "1",
                date(2024, 5, 20),
                None,
                10000.0,
                2600.0,
            ),
            # an explicit race day after the race: nothing to match
            (
                "r3",
                0,
                datetime(2026, 1, 3),
                "race-predictions",
                "ath_1",
                "challenger",
                "2",
                date(2024, 5, 20),
                date(2024, 6, 2),
                5000.0,
                1200.0,
            ),
            # a live-coaching prediction is not a pre-race prediction
            (
                "r4",
                0,
                datetime(2026, 1, 3),
                "live-coaching",
                "ath_1",
                "champion",
                "1",
                date(2024, 5, 31),
                None,
                5000.0,
                1240.0,
            ),
        ],
        "request_id string, prediction_index int, logged_at timestamp, route string, athlete_id string, "
        "variant string, model_version string, feature_date date, race_date date, race_distance_m double, "
        "predicted_finish_time_s double",
    )
    races = local_spark.createDataFrame(
        [
            ("ath_1", "s1", date(2024, 6, 1), 5000.0, 1240.0),
            ("ath_1", "s2", date(2024, 9, 1), 10000.0, 2500.0),  # beyond 28 days
        ],
        "athlete_id string, session_id string, race_date date, distance_m double, finish_time_s double",
    )
    matched = ab.match_races(log, races).toPandas()
    assert matched[["variant", "session_id", "predicted_finish_time_s", "finish_time_s"]].values.tolist() == [
        ["champion", "s1", 1250.0, 1240.0]
    ]
