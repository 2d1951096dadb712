"""Race splits: the generator's per-km splits and silver's field-by-field check of them (pure Python)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from athlete_platform.ingestion import race_splits as rs
from athlete_platform.ingestion.sample_data import GeneratorConfig, generate
from athlete_platform.ingestion.sample_data import generator as gen

CONFIG = GeneratorConfig(seed=3, n_athletes=12, n_days=300, start_date=date(2024, 1, 1), missing_hr_rate=0.2)


def records(root: Path) -> list[dict]:
    out = []
    for path in sorted((root / "app_export").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the generator's malformed lines
            out.append(record)
    return out


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> list[dict]:
    root = tmp_path_factory.mktemp("landing")
    generate(CONFIG, root)
    return records(root)


def races(landed: list[dict]) -> list[dict]:
    return [r for r in landed if r["record_type"] == "session" and r["is_race"]]


def test_every_race_has_splits_that_sum_to_its_time_and_distance(landed):
    found = races(landed)
    assert len(found) > 30
    for race in found:
        splits = race["splits"]
        assert [s["km"] for s in splits] == list(range(1, len(splits) + 1))
        assert round(sum(s["time_s"] for s in splits), 1) == race["duration_s"]
        assert sum(s["distance_m"] for s in splits) == pytest.approx(race["distance_m"], abs=1e-9)
        assert all(s["distance_m"] == 1000.0 for s in splits[:-1]) and 0 < splits[-1]["distance_m"] <= 1000.0
        assert all(s["time_s"] > 0 and round(s["time_s"], 1) == s["time_s"] for s in splits)
        # Every generated race passes silver's own check.
        assert rs.check_splits(splits, race["distance_m"], race["duration_s"])[1] is None
    assert not any("splits" in r for r in landed if r["record_type"] == "session" and not r["is_race"])


def test_split_heart_rates_follow_the_race_and_are_null_without_hr(landed):
    with_hr = [r for r in races(landed) if r["avg_hr"] is not None]
    without = [r for r in races(landed) if r["avg_hr"] is None]
    assert with_hr and without, "the config should give races with and without heart rate"
    assert all(s["avg_hr"] is None for r in without for s in r["splits"])
    drift = []
    for race in with_hr:
        hrs = np.array([s["avg_hr"] for s in race["splits"]], float)
        times = np.array([s["time_s"] for s in race["splits"]])
        assert hrs.max() <= race["max_hr"]
        assert abs(np.average(hrs, weights=times) - race["avg_hr"]) <= 2.0  # integer rounding and clipping
        half = len(hrs) // 2
        drift.append(hrs[half:].mean() - hrs[:half].mean())
    assert np.mean(drift) > 1.0  # HR rises over a race (first km lower, cardiac drift)


def test_long_races_fade_late_on_average(landed):
    """Fatigue: the last quarter of half marathons and marathons is slower than the middle."""
    ratios = []
    for race in races(landed):
        if race["distance_m"] < 21000:
            continue
        splits = race["splits"][:-1]  # whole kilometres
        pace = np.array([s["time_s"] for s in splits])
        n = len(pace)
        ratios.append(pace[3 * n // 4 :].mean() / pace[n // 4 : n // 2].mean())
    assert len(ratios) >= 5 and np.mean(ratios) > 1.0


def test_generation_is_deterministic(landed, tmp_path):
    generate(CONFIG, tmp_path)
    assert records(tmp_path) == landed


def test_splits_change_no_other_generated_value(landed, tmp_path, monkeypatch):
    """Splits come from their own stream: without them every record, field and order is the same."""
    monkeypatch.setattr(gen, "_race_splits", lambda *args, **kwargs: {})
    generate(CONFIG, tmp_path)
    without = records(tmp_path)
    stripped = [{k: v for k, v in r.items() if k != "splits"} for r in landed]
    assert stripped == without
    assert [list(r) for r in stripped] == [list(r) for r in without]  # field order too
    assert (tmp_path / "_generator" / "latent_fitness.csv").exists()


# --------------------------------------------------------------------------- silver's check

GOOD = [
    {"km": 1, "distance_m": 1000.0, "time_s": 300.0, "avg_hr": 150},
    {"km": 2, "distance_m": 1000.0, "time_s": 305.5, "avg_hr": None},
    {"km": 3, "distance_m": 97.5, "time_s": 30.0, "avg_hr": 160},
]


def with_split(index: int, **changes) -> list[dict]:
    splits = [dict(s) for s in GOOD]
    splits[index].update(changes)
    return splits


def test_good_splits_are_typed():
    typed, reason = rs.check_splits(GOOD, 2097.5, 635.5)
    assert reason is None
    assert [s["time_s"] for s in typed] == [300.0, 305.5, 30.0] and typed[1]["avg_hr"] is None


@pytest.mark.parametrize(
    ("splits", "finish_s", "reason"),
    [
        ("1:00,2:00", 635.5, "splits_type"),
        ([], 635.5, "splits_empty"),
        ([1, 2], 635.5, "splits_element_type"),
        (with_split(1, time_s="305.5"), 635.5, "splits_time_s_type"),
        (with_split(0, km=1.5), 635.5, "splits_km_type"),
        (with_split(0, time_s=float("nan")), 635.5, "splits_time_s_not_finite"),
        (with_split(2, time_s=None), 635.5, "splits_required_fields"),
        (with_split(2, km=4), 635.5, "splits_km_sequence"),
        (with_split(1, time_s=-5.0), 635.5, "splits_time_positive"),
        (with_split(0, avg_hr=300), 635.5, "splits_hr_range"),
        (with_split(2, distance_m=-97.5), 635.5, "splits_distance_positive"),
        (GOOD, 640.0, "splits_time_sum"),
        (with_split(0, time_s=60.0), 395.5, "splits_speed_plausible"),
        ([dict(GOOD[0], km=k + 1) for k in range(501)], 635.5, "splits_too_many"),
    ],
)
def test_broken_splits_are_named(splits, finish_s, reason):
    typed, found = rs.check_splits(splits, 2097.5, finish_s)
    assert typed == []
    assert reason in found.split(",")


def test_every_broken_rule_is_named_once():
    splits = with_split(1, time_s=-5.0) + [dict(GOOD[0], km=9, avg_hr=10)]
    _, reason = rs.check_splits(splits, 2097.5, 635.5)
    names = reason.split(",")
    assert len(names) == len(set(names))
    assert {"splits_km_sequence", "splits_time_positive", "splits_hr_range", "splits_time_sum"} <= set(names)


def test_split_results_accept_quarantine_or_pass_over_each_race():
    races = pd.DataFrame(
        {
            "session_id": ["ok", "bad", "none"],
            "athlete_id": ["a", "a", "b"],
            "race_date": [date(2024, 5, 1)] * 3,
            "distance_m": [2097.5, 2097.5, 5000.0],
            "finish_time_s": [635.5, 700.0, 1500.0],
            "payload": [json.dumps({"splits": GOOD}), json.dumps({"splits": GOOD}), json.dumps({"is_race": True})],
            "source_file": ["f1", "f2", "f3"],
        }
    )
    out = rs.split_results(races)
    status = out.groupby("session_id")["status"].agg(set).to_dict()
    assert status == {"ok": {rs.ACCEPTED}, "bad": {rs.QUARANTINED}, "none": {rs.ABSENT}}
    ok = out[out["session_id"] == "ok"]
    assert ok["cumulative_time_s"].tolist() == [300.0, 605.5, 635.5]
    assert ok["cumulative_distance_m"].tolist() == [1000.0, 2000.0, 2097.5]
    assert ok["km"].tolist() == [1, 2, 3] and ok["split_avg_hr"].isna().tolist() == [False, True, False]
    bad = out[out["session_id"] == "bad"].iloc[0]
    assert bad["reason"] == "splits_time_sum" and bad["source_file"] == "f2" and "splits" in bad["payload"]
