from datetime import date

import numpy as np
import pandas as pd
import pytest

from athlete_platform.errors import PlatformError
from athlete_platform.features import model_inputs as mi
from athlete_platform.inference.batch import ChampionModel, check_signature
from athlete_platform.training.pipeline import error_metrics, evaluate, is_heldout_athlete, split_rows


def _row(**over):
    row = {c: 1.0 for c in mi.REQUIRED_COLUMNS}
    row.update(
        distance_m=10000.0,
        event_date=date(2024, 6, 2),
        sex="F",
        birth_date=date(1994, 6, 2),
        prev_race_date=date(2024, 5, 3),
        prev_distance_m=5000.0,
        prev_finish_time_s=1200.0,
        vdot_best_90d=50.0,
    )
    row.update(over)
    return row


def test_model_inputs_columns_and_derived_values():
    out = mi.model_inputs(pd.DataFrame([_row()]))
    assert list(out.columns) == list(mi.MODEL_INPUTS)
    assert out.dtypes.eq("float64").all()
    first = out.iloc[0]
    assert first["sex_male"] == 0.0
    assert first["age_years"] == pytest.approx(30.0, abs=0.01)
    assert first["days_since_prev_race"] == 30.0
    # Riegel 5 km in 20:00 -> 10 km: 1200 * 2^1.06 s
    assert np.exp(first["riegel_log_pace"]) * 10000 == pytest.approx(1200 * 2**1.06)
    assert first["log_distance_m"] == pytest.approx(np.log(10000))


def test_missing_baseline_inputs_give_nan_not_errors():
    out = mi.model_inputs(pd.DataFrame([_row(prev_finish_time_s=None, prev_distance_m=None, vdot_best_90d=None)]))
    assert np.isnan(out.loc[0, "riegel_log_pace"]) and np.isnan(out.loc[0, "vdot_log_pace"])


def test_target_round_trip():
    t = np.array([1200.0, 3600.0])
    d = np.array([5000.0, 10000.0])
    # the target is log(seconds per metre): 5 km in 20:00 is 0.24 s/m
    assert mi.target_log_pace(t, d) == pytest.approx([np.log(0.24), np.log(0.36)])
    assert mi.time_from_log_pace(mi.target_log_pace(t, d), d) == pytest.approx(t)


# Held out at the default 20 %, pinned: a changed hash would move athletes between train and
# test from one run to the next, so a new model's score would no longer compare with the old.
HELDOUT_OF_FIRST_60 = (
    "ath_0004",
    "ath_0006",
    "ath_0011",
    "ath_0020",
    "ath_0023",
    "ath_0024",
    "ath_0025",
    "ath_0046",
    "ath_0052",
    "ath_0057",
    "ath_0058",
)
IDS_60 = [f"ath_{i:04d}" for i in range(60)]


def test_heldout_assignment_is_pinned_and_about_a_fifth():
    assert tuple(i for i in IDS_60 if is_heldout_athlete(i)) == HELDOUT_OF_FIRST_60
    ids = [f"ath_{i:04d}" for i in range(2000)]
    share = sum(map(is_heldout_athlete, ids)) / len(ids)
    assert 0.15 < share < 0.25
    # A larger fraction keeps every athlete a smaller one held out.
    at_10 = {i for i in ids if is_heldout_athlete(i, fraction=0.1)}
    at_20 = {i for i in ids if is_heldout_athlete(i)}
    assert at_10 < at_20 and 0.05 < len(at_10) / len(ids) < 0.15
    assert not any(is_heldout_athlete(i, fraction=0.0) for i in ids)


def test_split_puts_later_races_and_heldout_athletes_in_test():
    # 60 athletes x 5 races; race days 0..99 (2024-01-01..2024-04-09), each day 3 times.
    days = pd.date_range("2024-01-01", periods=100, freq="D")
    frame = pd.DataFrame({"athlete_id": np.repeat(IDS_60, 5), "race_date": np.tile(days, 3)})
    split = split_rows(frame)
    # 80th percentile of the race days: sorted position 0.8 * 299 = 239.2 -> day 79 + 0.2 -> day 79.
    assert split.cutoff_date == date(2024, 3, 20)
    assert split.heldout_athletes == HELDOUT_OF_FIRST_60
    late = frame["race_date"] >= pd.Timestamp("2024-03-20")
    heldout = frame["athlete_id"].isin(HELDOUT_OF_FIRST_60)
    expected_test = frame[late | heldout]
    expected_train = frame[~(late | heldout)]
    # 63 late rows (days 79..99) + 55 held-out rows - 10 both (ath_0057, ath_0058 race on days 85..94)
    assert (len(split.train), len(split.test)) == (192, 108)
    key = ["athlete_id", "race_date"]
    assert sorted(map(tuple, split.test[key].to_numpy().tolist())) == sorted(
        map(tuple, expected_test[key].to_numpy().tolist())
    )
    assert sorted(map(tuple, split.train[key].to_numpy().tolist())) == sorted(
        map(tuple, expected_train[key].to_numpy().tolist())
    )


def test_error_metrics_by_hand():
    m = error_metrics(np.array([110.0, 90.0]), np.array([100.0, 100.0]))
    assert m == {"mae_s": 10.0, "mape": 0.1, "rmse_s": 10.0}


def test_evaluate_scores_model_and_baselines_on_the_same_rows():
    test = pd.DataFrame(
        {
            "finish_time_s": [1200.0, 2500.0, 1300.0],
            "distance_m": [5000.0, 10000.0, 5000.0],
            "prev_finish_time_s": [1190.0, 1200.0, np.nan],  # third row has no Riegel baseline
            "prev_distance_m": [5000.0, 5000.0, np.nan],
            "vdot_best_90d": [50.0, 50.0, 50.0],
        }
    )
    metrics, common = evaluate(test, np.array([1200.0, 2500.0, 1000.0]))
    assert common.tolist() == [True, True, False]
    assert metrics["model_mape"] == 0.0  # the bad third prediction is outside the common rows
    assert metrics["model_all_rows_mape"] == pytest.approx((300 / 1300) / 3)
    assert metrics["riegel_mape"] > 0 and metrics["vdot_mape"] > 0


def test_signature_mismatch_is_a_clear_error():
    model = ChampionModel("m", "3", None, tuple(mi.MODEL_INPUTS[:-1]) + ("something_new",))
    with pytest.raises(PlatformError, match="v3 .* expects inputs .*Retrain"):
        check_signature(model)
    check_signature(ChampionModel("m", "3", None, tuple(mi.MODEL_INPUTS)))
