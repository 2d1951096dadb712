"""The live pace coach's pure parts: inputs (one definition for training and serving), race
snapshots, the per-bucket gate and the response arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from athlete_platform.errors import InvalidRequest
from athlete_platform.features import live_inputs as li
from athlete_platform.features import model_inputs as mi
from athlete_platform.features import on_demand as odt
from athlete_platform.features.live_prediction import live_prediction
from athlete_platform.features.online_view import OnlineFeatureView
from athlete_platform.training import live_gate
from athlete_platform.training.live_pace import race_groups
from athlete_platform.training.live_snapshots import race_snapshots, snapshot_rows, snapshots
from athlete_platform.training.pipeline import is_heldout_athlete

# --------------------------------------------------------------------------- inputs


def test_live_inputs_need_only_the_race_distance_and_what_the_online_store_holds():
    needs = odt.dependencies(li.LIVE_INPUTS)
    assert needs.request == {"race_distance_m"}
    assert needs.passed == set(li.PASSED_LIVE_FEATURES)
    assert needs.stored <= set(mi.STORED_INPUTS)
    view = OnlineFeatureView(features=li.LIVE_INPUTS, request_defaults={})
    assert view.required_request_parameters == ("race_distance_m",)
    assert set(view.required_passed_features) == set(li.PASSED_LIVE_FEATURES)


def test_live_odt_values_by_hand():
    assert odt.remaining_distance_m(10000.0, 2500.0) == 7500.0
    assert odt.remaining_distance_m(10000.0, 10100.0) == 0.0
    assert math.isnan(odt.remaining_distance_m(10000.0, -1.0))
    assert odt.prerace_projection_s(10000.0, math.log(0.3)) == pytest.approx(3000.0)
    assert odt.log_prerace_over_even_pace(3000.0, 2800.0) == pytest.approx(math.log(3000 / 2800))
    assert math.isnan(odt.log_prerace_over_even_pace(3000.0, float("nan")))
    assert odt.pace_ratio_so_far(330.0, 1500.0, 5000.0) == pytest.approx(1.1)  # 300 s/km so far, 330 now
    assert math.isnan(odt.pace_ratio_so_far(330.0, 0.0, 0.0))
    assert odt.pace_ratio_vdot(10000.0, 270.0, 3000.0) == pytest.approx(0.9)


class DictStore:
    """A tiny in-memory `get(keys)` (pure logic only; the real backends are tested elsewhere)."""

    def __init__(self, rows):
        self.rows = rows

    def get(self, keys):
        return {k: dict(self.rows[k]) for k in keys if k in self.rows}


def snapshot_frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 24
    frame = pd.DataFrame({c: rng.uniform(1, 100, n) for c in li.LIVE_STORED_INPUTS})
    frame["distance_m"] = np.resize([5000.0, 10000.0, 21097.5, 42195.0], n)
    frame["distance_done_m"] = frame["distance_m"] * rng.uniform(0.05, 0.95, n)
    frame["elapsed_s"] = frame["distance_done_m"] * rng.uniform(0.22, 0.4, n)
    frame["current_pace_s_per_km"] = rng.uniform(220, 420, n)
    frame["current_hr"] = np.where(np.arange(n) % 5 == 0, np.nan, rng.uniform(130, 185, n))
    frame["avg_pace_28d_s_per_km"] = np.where(np.arange(n) % 7 == 0, np.nan, rng.uniform(260, 400, n))
    frame["vdot_best_90d"] = np.where(np.arange(n) % 3 == 0, np.nan, rng.uniform(35, 65, n))
    frame["hr_rest"], frame["hr_max"] = 50.0, 190.0
    frame["sex"] = np.resize(["M", "F"], n)
    frame["prev_distance_m"] = np.where(np.arange(n) % 4 == 1, np.nan, 10000.0)
    frame["prev_finish_time_s"] = np.where(np.arange(n) % 4 == 1, np.nan, rng.uniform(2400, 3600, n))
    frame["run_hr_mean_42d"] = rng.uniform(130, 150, n)
    frame["run_log_speed_mean_42d"] = rng.uniform(0.9, 1.3, n)
    frame["run_log_speed_per_bpm_42d"] = np.where(np.arange(n) % 6 == 0, np.nan, rng.uniform(0.003, 0.008, n))
    return frame


def test_training_snapshots_and_online_vectors_are_equal_for_the_same_inputs():
    """One definition, two uses: `live_inputs` on a snapshot frame == the online view on one request."""
    frame = snapshot_frame()
    training = li.live_inputs(frame)
    view = OnlineFeatureView(features=li.LIVE_INPUTS, request_defaults={})
    stored_names = sorted(odt.dependencies(li.LIVE_INPUTS).stored)
    for i, r in frame.iterrows():
        row = {"athlete_id": "a", "feature_date": "2025-01-11"}
        row.update({c: (None if isinstance(r[c], float) and math.isnan(r[c]) else r[c]) for c in stored_names})
        passed = {c: (None if math.isnan(r[c]) else float(r[c])) for c in li.PASSED_LIVE_FEATURES}
        vector = view.get_feature_vector(
            {"athlete_id": "a"},
            passed_features=passed,
            request_parameters={"race_distance_m": float(r["distance_m"])},
            store=DictStore({"a": row}),
        )
        expected = training.loc[i].to_numpy()
        assert np.array_equal(np.asarray(vector), expected, equal_nan=True), i


def test_the_online_view_asks_for_missing_live_values_by_name():
    view = OnlineFeatureView(DictStore({"a": {"athlete_id": "a"}}), features=li.LIVE_INPUTS, request_defaults={})
    with pytest.raises(InvalidRequest) as missing:
        view.get_feature_vector({"athlete_id": "a"}, {"elapsed_s": 600.0}, {"race_distance_m": 10000.0})
    assert missing.value.field in li.PASSED_LIVE_FEATURES


def test_target_and_prediction_invert_each_other_and_never_go_below_elapsed():
    even, finish, elapsed = np.array([3000.0, 6000.0]), np.array([3100.0, 5900.0]), np.array([1500.0, 5800.0])
    target = li.training_target(finish, even)
    assert li.predicted_finish_s(target, even, elapsed) == pytest.approx(finish)
    assert li.predicted_finish_s([-5.0, -5.0], even, elapsed).tolist() == elapsed.tolist()


# --------------------------------------------------------------------------- snapshots

SPLITS = pd.DataFrame(
    {
        "session_id": ["r"] * 3,
        "km": [3, 1, 2],  # any order
        "cumulative_distance_m": [2500.0, 1000.0, 2000.0],
        "cumulative_time_s": [800.0, 300.0, 640.0],
        "split_avg_hr": [170.0, 150.0, 160.0],
    }
)


def test_snapshots_interpolate_time_and_take_pace_and_hr_over_the_last_km():
    snap = race_snapshots(SPLITS, 2500.0, fractions=(0.2, 0.6, 1.0))
    assert snap["distance_done_m"].tolist() == [500.0, 1500.0, 2500.0]
    assert snap["elapsed_s"].tolist() == pytest.approx([150.0, 470.0, 800.0])
    # 500 m: the window is the 500 m run so far; 1500 m: 500 m at 300 s/km + 500 m at 340 s/km
    assert snap["current_pace_s_per_km"].tolist() == pytest.approx([300.0, 320.0, 330.0])
    assert snap["current_hr"].iloc[1] == pytest.approx((150 * 150 + 160 * 170) / 320)
    # 1500..2500 m: 500 m of km 2 (170 s) and km 3's 500 m (160 s)
    assert snap["current_hr"].iloc[2] == pytest.approx((160 * 170 + 170 * 160) / 330)


def test_snapshots_without_hr_have_none_and_races_without_splits_drop_out():
    splits = SPLITS.assign(split_avg_hr=[170.0, np.nan, 160.0])
    races = pd.DataFrame({"session_id": ["r", "no_splits"], "distance_m": [2500.0, 5000.0], "finish_time_s": [800, 1]})
    snaps = snapshots(splits, races, fractions=(0.2, 0.9))
    assert math.isnan(snaps["current_hr"].iloc[0]) and not math.isnan(snaps["current_hr"].iloc[1])
    rows = snapshot_rows(races, snaps)
    assert rows["session_id"].tolist() == ["r", "r"] and rows["finish_time_s"].tolist() == [800, 800]


def test_groups_follow_the_time_estimators_split():
    athletes = [f"ath_{i:04d}" for i in range(1, 40)]
    races = pd.DataFrame(
        {
            "athlete_id": athletes,
            "race_date": pd.date_range("2024-01-01", periods=len(athletes), freq="7D").date,
        }
    )
    groups, cutoff = race_groups(races)
    heldout = races["athlete_id"].map(is_heldout_athlete)
    assert heldout.any() and (~heldout).any()
    assert (groups[heldout] == "heldout_athletes").all()
    later = pd.to_datetime(races["race_date"]) >= pd.Timestamp(cutoff)
    assert (groups[~heldout & later] == "heldout_races").all() and (groups[~heldout & ~later] == "train").all()


# --------------------------------------------------------------------------- the gate


def scored(live_error: dict[tuple[str, float], float], champion: float | None = None) -> pd.DataFrame:
    """Rows for each group x fraction: actual 1000 s; even pace off by 5 %, pre-race by 4 %,
    live by `live_error[(group, fraction)]` (default 2 %)."""
    rows = []
    for group in live_gate.GROUPS:
        for fraction in (0.1, 0.3, 0.6, 0.9):
            error = live_error.get((group, fraction), 0.02)
            rows.append(
                {
                    "session_id": f"{group}-{fraction}",
                    "group": group,
                    "fraction": fraction,
                    "finish_time_s": 1000.0,
                    "live": 1000.0 * (1 + error),
                    "even_pace": 1050.0,
                    "prerace": 960.0,
                    "champion": np.nan if champion is None else 1000.0 * (1 + champion),
                }
            )
    return pd.DataFrame(rows)


def test_a_model_that_beats_both_bars_in_every_bucket_is_promoted():
    table = live_gate.gate_table(scored({}))
    decision = live_gate.gate_decision(table)
    assert decision.promoted and decision.failures == ()
    metrics = live_gate.gate_metrics(table)
    assert metrics["heldout_races_live_mape_b00_25"] == pytest.approx(0.02)
    assert metrics["heldout_athletes_even_pace_mape_b75_100"] == pytest.approx(0.05)
    assert metrics["heldout_athletes_prerace_mape_b25_50"] == pytest.approx(0.04)
    assert metrics["heldout_races_rows_b50_75"] == 1.0
    assert "heldout_races_champion_mape_b00_25" not in metrics  # no champion: no number invented


def test_losing_one_bucket_of_one_group_is_not_promoted():
    table = live_gate.gate_table(scored({("heldout_athletes", 0.6): 0.045}))  # worse than pre-race there only
    decision = live_gate.gate_decision(table)
    assert not decision.promoted
    assert len(decision.failures) == 1 and decision.failures[0].startswith("heldout_athletes b50_75")
    assert "pre-race" in decision.failures[0] or "prerace" in decision.failures[0]


def test_an_empty_bucket_or_no_pre_race_bar_fails_the_gate():
    frame = scored({})
    table = live_gate.gate_table(frame[frame["fraction"] != 0.9])
    assert "heldout_races b75_100: no held-out snapshots" in live_gate.gate_decision(table).failures
    missing = live_gate.gate_decision(live_gate.gate_table(scored({}).assign(prerace=np.nan)), "no time estimator")
    assert not missing.promoted and missing.failures == ("no time estimator",)


def test_the_live_champion_must_be_beaten_over_each_group():
    assert not live_gate.gate_decision(live_gate.gate_table(scored({}, champion=0.01))).promoted
    assert live_gate.gate_decision(live_gate.gate_table(scored({}, champion=0.03))).promoted


def test_the_gate_table_prints_every_cell():
    text = live_gate.format_gate_table(live_gate.gate_table(scored({})))
    assert len(text.splitlines()) == 1 + 2 * 5
    assert "2.00%" in text and "5.00%" in text and "4.00%" in text


# --------------------------------------------------------------------------- the response


def test_prediction_and_the_pace_to_hold_for_a_target():
    out = live_prediction(0.0, elapsed_s=1500.0, distance_done_m=5000.0, race_distance_m=10000.0, target_time_s=2900.0)
    assert out.predicted_finish_time_s == pytest.approx(3000.0)  # even pace when the model adds nothing
    assert out.remaining_distance_m == 5000.0 and out.remaining_time_s == pytest.approx(1500.0)
    assert out.predicted_pace_s_per_km == pytest.approx(300.0)
    assert out.required_pace_s_per_km == pytest.approx(280.0) and out.target_reachable and not out.on_track
    assert live_prediction(math.log(0.95), elapsed_s=1500.0, distance_done_m=5000.0, race_distance_m=10000.0).to_dict()[
        "predicted_finish_time_s"
    ] == pytest.approx(2850.0)


def test_a_target_already_passed_or_beyond_any_runner_is_unreachable():
    passed = live_prediction(0.0, elapsed_s=3000.0, distance_done_m=9000.0, race_distance_m=10000.0, target_time_s=2900)
    assert passed.target_reachable is False and passed.required_pace_s_per_km is None
    too_fast = live_prediction(
        0.0, elapsed_s=2800.0, distance_done_m=5000.0, race_distance_m=10000.0, target_time_s=2850
    )
    assert too_fast.target_reachable is False  # 5 km in 50 s
    with pytest.raises(ValueError, match="distance_done_m"):
        live_prediction(0.0, elapsed_s=0.0, distance_done_m=0.0, race_distance_m=10000.0)
