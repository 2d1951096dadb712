"""Unit tests for athlete_platform.features.rolling.

Expected values are worked out by hand in the comments (windows include day d; day 0 is the
first session day). The load columns are checked against ``metrics.compute``, which has its
own hand-checked tests. The incremental property compares split runs with one full run.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from athlete_platform.features import metrics
from athlete_platform.features.rolling import (
    FEATURE_COLUMNS,
    INT_COLUMNS,
    LOOKBACK_DAYS,
    PRIOR_DAYS,
    athlete_daily_features,
)
from athlete_platform.lakehouse.tables import ATHLETE_ROLLING_FEATURES

FIRST = dt.date(2024, 1, 1)
NO_PRIOR = pd.DataFrame()
NAN = float("nan")


def day(n: int) -> dt.date:
    return FIRST + dt.timedelta(days=n)


def session(
    n: int,
    sport: str = "run",
    duration_s: float = 3600.0,
    distance_m: float = 10000.0,
    avg_hr: float = NAN,
    session_load: float = 50.0,
) -> dict:
    return {
        "session_date": day(n),
        "sport": sport,
        "duration_s": duration_s,
        "distance_m": distance_m,
        "avg_hr": avg_hr,
        "session_load": session_load,
        "is_race": False,
    }


def sessions_frame(*rows: dict) -> pd.DataFrame:
    columns = ["session_date", "sport", "duration_s", "distance_m", "avg_hr", "session_load", "is_race"]
    return pd.DataFrame(list(rows), columns=columns)


def races_frame(*races: tuple[int, float]) -> pd.DataFrame:
    return pd.DataFrame({"race_date": [day(n) for n, _ in races], "vdot": [v for _, v in races]})


NO_RACES = races_frame()


def full(sessions: pd.DataFrame, last_day: int, races: pd.DataFrame = NO_RACES) -> pd.DataFrame:
    """Full recompute day 0 .. last_day; row i is day i."""
    return athlete_daily_features(sessions, races, NO_PRIOR, FIRST, day(last_day), FIRST)


def resume(
    sessions: pd.DataFrame, races: pd.DataFrame, before: pd.DataFrame, start: int, last_day: int
) -> pd.DataFrame:
    """Incremental run start .. last_day, given only what the feature job passes."""
    lookback = day(start - LOOKBACK_DAYS)
    return athlete_daily_features(
        sessions[sessions["session_date"] >= lookback],
        races[races["race_date"] >= lookback],
        before.tail(PRIOR_DAYS),
        day(start),
        day(last_day),
        FIRST,
    )


def assert_same_features(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == FEATURE_COLUMNS
    assert list(got["feature_date"]) == list(expected["feature_date"])
    for column in FEATURE_COLUMNS[1:]:
        if column in INT_COLUMNS:
            np.testing.assert_array_equal(got[column].to_numpy(), expected[column].to_numpy(), err_msg=column)
        else:
            np.testing.assert_allclose(
                got[column].to_numpy(),
                expected[column].to_numpy(),
                rtol=1e-9,
                atol=1e-9,
                equal_nan=True,
                err_msg=column,
            )


# --------------------------------------------------------------------------
# Output contract
# --------------------------------------------------------------------------


def test_output_follows_the_table_schema_one_row_per_day() -> None:
    out = full(sessions_frame(session(0), session(3)), 9)

    # The feature job adds athlete_id, computed_at and _run_id; every other column of the
    # table comes from here, with a dtype Spark writes as the table's type.
    table_types = ATHLETE_ROLLING_FEATURES.column_types()
    added = ["athlete_id", "computed_at", "_run_id"]
    assert list(out.columns) == [c for c in table_types if c not in added]
    assert list(out["feature_date"]) == [day(n) for n in range(10)]
    assert all(type(v) is dt.date for v in out["feature_date"])
    numpy_type = {"INT": np.int32, "DOUBLE": np.float64}
    for column in out.columns[1:]:
        assert out[column].dtype == numpy_type[table_types[column]], column
    assert list(out["history_days"]) == list(range(10))


def test_end_before_start_gives_an_empty_frame_with_the_columns() -> None:
    out = athlete_daily_features(sessions_frame(session(0)), NO_RACES, NO_PRIOR, FIRST, day(-1), FIRST)
    assert out.empty
    assert list(out.columns) == FEATURE_COLUMNS


# --------------------------------------------------------------------------
# Volumes
# --------------------------------------------------------------------------


def test_volume_windows_include_day_d_and_drop_day_d_minus_7_and_d_minus_28() -> None:
    sessions = sessions_frame(
        session(0, "run", duration_s=3600, distance_m=10000),
        session(6, "ride", duration_s=1800, distance_m=20000),
        session(7, "swim", duration_s=600, distance_m=2000),
        session(27, "run", duration_s=1500, distance_m=5000),
        session(28, "other", duration_s=1200, distance_m=0),
    )
    out = full(sessions, 56)

    def volumes(n: int) -> tuple:
        r = out.iloc[n]
        return (r.distance_7d_m, r.duration_7d_s, r.sessions_7d, r.distance_28d_m, r.duration_28d_s, r.sessions_28d)

    assert volumes(6) == (30000, 5400, 2, 30000, 5400, 2)
    assert volumes(7) == (22000, 2400, 2, 32000, 6000, 3)  # 7d: days 1..7 drop day 0
    assert volumes(13) == (2000, 600, 1, 32000, 6000, 3)
    assert volumes(14) == (0, 0, 0, 32000, 6000, 3)  # no session in 8..14: zero, not null
    assert volumes(27) == (5000, 1500, 1, 37000, 7500, 4)  # 28d: days 0..27
    assert volumes(28) == (5000, 2700, 2, 27000, 5100, 4)  # 28d: days 1..28 drop day 0


def test_longest_session_is_null_only_without_sessions_in_28_days() -> None:
    sessions = sessions_frame(
        session(0, distance_m=10000),
        session(6, "ride", distance_m=20000),
        session(27, distance_m=5000),
        session(28, "other", distance_m=0),
    )
    longest = full(sessions, 56)["longest_session_28d_m"]
    assert longest[27] == 20000
    assert longest[33] == 20000  # days 6..33
    assert longest[34] == 5000  # days 7..34
    assert longest[55] == 0  # days 28..55: one session without distance
    assert math.isnan(longest[56])  # days 29..56: no session


def test_pace_counts_runs_with_distance_only() -> None:
    sessions = sessions_frame(
        session(0, "run", duration_s=3000, distance_m=10000),
        session(0, "ride", duration_s=3600, distance_m=30000),
        session(0, "run", duration_s=600, distance_m=0),  # no distance: no pace
        session(0, "swim", duration_s=1800, distance_m=1500),
        session(1, "run", duration_s=1800, distance_m=5000),
        session(29, "ride", duration_s=3600, distance_m=30000),
    )
    pace = full(sessions, 29)["avg_pace_28d_s_per_km"]
    assert pace[0] == pytest.approx(300.0)  # 3000 s / 10 km
    assert pace[1] == pytest.approx(320.0)  # 4800 s / 15 km
    assert pace[28] == pytest.approx(360.0)  # days 1..28: 1800 s / 5 km
    assert math.isnan(pace[29])  # days 2..29: only a ride


def test_avg_hr_is_duration_weighted_over_sessions_with_hr() -> None:
    sessions = sessions_frame(
        session(0, duration_s=3600, avg_hr=150),
        session(0, duration_s=1800, avg_hr=120),
        session(0, duration_s=1200, avg_hr=NAN),
        session(3, duration_s=600, avg_hr=180),
        session(30, duration_s=900, avg_hr=NAN),
    )
    hr = full(sessions, 31)["avg_hr_28d"]
    assert hr[0] == pytest.approx(140.0)  # (3600*150 + 1800*120) / 5400
    assert hr[3] == pytest.approx(144.0)  # (540000 + 216000 + 108000) / 6000
    assert hr[28] == pytest.approx(180.0)  # days 1..28: the day-3 session
    assert math.isnan(hr[31])  # days 4..31: one session, without HR


# --------------------------------------------------------------------------
# Loads
# --------------------------------------------------------------------------


def test_heart_rate_speed_line_of_training_runs_over_42_days() -> None:
    # Runs on days 0..9 whose speed rises 1 % per bpm: ln(v) = ln(2.5) + 0.01 * (hr - 140).
    runs = [
        session(
            i, duration_s=3600.0, distance_m=2.5 * 3600.0 * np.exp(0.01 * (130 + 2 * i - 140)), avg_hr=130.0 + 2 * i
        )
        for i in range(10)
    ]
    others = [
        session(3, sport="ride", avg_hr=150.0, distance_m=40000.0),  # not a run
        session(4, avg_hr=NAN),  # no heart rate
        {**session(5, avg_hr=180.0, distance_m=21097.5, duration_s=5400.0), "is_race": True},  # a race
    ]
    out = full(sessions_frame(*runs, *others), 60)
    on_9 = out.iloc[9]
    assert on_9["runs_with_hr_42d"] == 10
    assert on_9["run_hr_mean_42d"] == pytest.approx(139.0)
    assert on_9["run_log_speed_mean_42d"] == pytest.approx(np.log(2.5) + 0.01 * (139.0 - 140))
    assert on_9["run_log_speed_per_bpm_42d"] == pytest.approx(0.01)
    # Four runs on day 3: too few for a slope, but the means exist.
    assert out.iloc[3]["runs_with_hr_42d"] == 4 and np.isnan(out.iloc[3]["run_log_speed_per_bpm_42d"])
    assert np.isfinite(out.iloc[3]["run_hr_mean_42d"])
    # Day 50 still sees days 9..50 (d-41..d): the last run only; day 51 none.
    assert out.iloc[50]["runs_with_hr_42d"] == 1 and np.isnan(out.iloc[50]["run_log_speed_per_bpm_42d"])
    assert out.iloc[51]["runs_with_hr_42d"] == 0 and np.isnan(out.iloc[51]["run_hr_mean_42d"])


def test_a_heart_rate_line_with_no_spread_has_no_slope() -> None:
    runs = [session(i, avg_hr=140.0 + (i % 2), distance_m=10000.0 + 10 * i) for i in range(10)]  # SD 0.5 bpm
    out = full(sessions_frame(*runs), 9)
    assert out.iloc[9]["runs_with_hr_42d"] == 10 and np.isnan(out.iloc[9]["run_log_speed_per_bpm_42d"])


def test_load_columns_follow_metrics_with_daily_sums() -> None:
    sessions = sessions_frame(
        session(0, session_load=30),
        session(0, session_load=20),
        session(2, session_load=10),
        session(40, session_load=100),
    )
    out = full(sessions, 59)

    loads = np.zeros(60)
    loads[[0, 2, 40]] = [50, 10, 100]
    np.testing.assert_array_equal(out["daily_load"], loads)
    assert out["ewma_acute_load"][0] == pytest.approx(12.5)  # 0.25 * 50
    assert out["ewma_chronic_load"][0] == pytest.approx(50 * 2 / 29)
    assert out["tsb"][0] == 0  # ctl(-1) - atl(-1), both 0
    reference, _ = metrics.compute(loads)
    for name, values in reference.items():
        np.testing.assert_allclose(out[name], values, rtol=1e-12, equal_nan=True, err_msg=name)
    e7, e28 = metrics.acwr_ewma_states(loads)
    np.testing.assert_allclose(out["ewma_acute_load"], e7, rtol=1e-12)
    np.testing.assert_allclose(out["ewma_chronic_load"], e28, rtol=1e-12)
    assert out["acwr_rolling"][:27].isna().all() and not math.isnan(out["acwr_rolling"][27])


# --------------------------------------------------------------------------
# days since last session, history, vdot
# --------------------------------------------------------------------------

GAP_SESSIONS = sessions_frame(session(0), session(5), session(200))


def test_days_since_last_session_counts_calendar_days() -> None:
    since = full(GAP_SESSIONS, 260)["days_since_last_session"]
    assert [since[n] for n in (0, 4, 5, 6, 199, 200, 201, 260)] == [0, 4, 0, 1, 194, 0, 1, 60]


@pytest.mark.parametrize("split", [100, 150, 199, 200])
def test_days_since_carries_over_a_gap_longer_than_the_lookback(split: int) -> None:
    # Resuming at `split`, the sessions passed start at split-89 > day 5: the last session
    # before the gap is only known through prior's last row.
    before = full(GAP_SESSIONS, split - 1)
    after = resume(GAP_SESSIONS, NO_RACES, before, split, 260)
    assert after["days_since_last_session"].iloc[0] == (split - 5 if split < 200 else 0)
    if split <= 199:
        assert after["days_since_last_session"].iloc[199 - split] == 194
    assert_same_features(pd.concat([before, after], ignore_index=True), full(GAP_SESSIONS, 260))


def test_vdot_best_90d_window_includes_d_minus_89_and_the_race_day() -> None:
    races = races_frame((10, 50.0), (30, 45.0), (40, NAN))
    best = full(sessions_frame(session(0)), 130, races)["vdot_best_90d"]
    assert math.isnan(best[9])
    assert best[10] == 50.0  # a race on d counts on d
    assert best[30] == 50.0
    assert best[99] == 50.0  # d-89 = 10 included
    assert best[100] == 45.0  # d-90 = 10 excluded
    assert best[119] == 45.0
    assert math.isnan(best[120])  # the NaN vdot on day 40 is ignored


def test_vdot_window_survives_an_incremental_split() -> None:
    races = races_frame((10, 50.0), (30, 45.0))
    sessions = sessions_frame(session(0))
    after = resume(sessions, races, full(sessions, 94, races), 95, 100)
    assert list(after["vdot_best_90d"]) == [50.0] * 5 + [45.0]


# --------------------------------------------------------------------------
# Incremental == full
# --------------------------------------------------------------------------


def random_athlete(seed: int, days: int = 420) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sessions on ~half the days (some doubled), a 120-day gap, missing HR, races."""
    rng = np.random.default_rng(seed)
    on = np.flatnonzero(rng.random(days) < 0.5)
    on = on[(on < 150) | (on >= 270)]
    on = np.sort(np.concatenate(([0], on, rng.choice(on, size=len(on) // 5))))
    n = len(on)
    sessions = pd.DataFrame(
        {
            "session_date": [day(int(i)) for i in on],
            "sport": rng.choice(["run", "ride", "swim", "other"], n, p=[0.5, 0.3, 0.1, 0.1]),
            "duration_s": rng.uniform(600, 9000, n),
            "distance_m": np.where(rng.random(n) < 0.1, 0.0, rng.uniform(500, 60000, n)),
            "avg_hr": np.where(rng.random(n) < 0.3, np.nan, rng.uniform(95, 185, n)),
            "session_load": np.where(rng.random(n) < 0.05, 0.0, rng.uniform(5, 300, n)),
            "is_race": rng.random(n) < 0.05,
        }
    )
    race_days = np.sort(rng.choice(on, size=8, replace=False))
    races = pd.DataFrame({"race_date": [day(int(i)) for i in race_days], "vdot": rng.uniform(35, 60, 8)})
    return sessions, races


SPLITS = [1, 2, 13, 26, 27, 28, 29, 88, 89, 90, 91, 149, 150, 151, 238, 239, 269, 270, 271, 300, 419]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_anywhere_equals_full_recompute(seed: int) -> None:
    sessions, races = random_athlete(seed)
    last = 419
    expected = full(sessions, last, races)
    random_splits = np.random.default_rng(seed).choice(np.arange(1, last + 1), 10, replace=False)
    for split in SPLITS + sorted(int(s) for s in random_splits):
        before = full(sessions, split - 1, races)
        after = resume(sessions, races, before, split, last)
        assert_same_features(pd.concat([before, after], ignore_index=True), expected)


def test_day_by_day_runs_equal_full_recompute() -> None:
    sessions, races = random_athlete(7, days=330)
    stored = full(sessions, 139, races)
    for n in range(140, 330):  # the daily job across the gap and back
        stored = pd.concat([stored, resume(sessions, races, stored, n, n)], ignore_index=True)
    assert_same_features(stored, full(sessions, 329, races))


def test_extra_prior_rows_and_input_order_do_not_matter() -> None:
    sessions, races = random_athlete(3)
    before = full(sessions, 199, races)
    shuffled = sessions.sample(frac=1.0, random_state=1)
    got = athlete_daily_features(shuffled, races, before, day(200), day(260), FIRST)  # all 200 prior rows
    assert_same_features(got, full(sessions, 260, races).iloc[200:].reset_index(drop=True))


def test_datetime64_dates_with_time_of_day_match_date_objects() -> None:
    sessions, races = random_athlete(4, days=120)
    as_timestamps = sessions.assign(session_date=pd.to_datetime(sessions["session_date"]) + pd.Timedelta(hours=23))
    races_ts = races.assign(race_date=pd.to_datetime(races["race_date"]))
    got = athlete_daily_features(as_timestamps, races_ts, NO_PRIOR, FIRST, day(119), FIRST)
    assert_same_features(got, full(sessions, 119, races))


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_empty_prior_requires_starting_at_the_first_session() -> None:
    with pytest.raises(ValueError, match="full recompute"):
        athlete_daily_features(sessions_frame(session(0)), NO_RACES, NO_PRIOR, day(1), day(5), FIRST)


def test_prior_with_a_missing_day_is_rejected() -> None:
    sessions = sessions_frame(session(0), session(20))
    before = full(sessions, 39)
    with pytest.raises(ValueError, match="exactly one row per day"):
        athlete_daily_features(sessions, NO_RACES, before.drop(index=30), day(40), day(45), FIRST)
    with pytest.raises(ValueError, match="exactly one row per day"):  # prior ends before start-1
        athlete_daily_features(sessions, NO_RACES, before.iloc[:-1], day(40), day(45), FIRST)


def test_start_before_first_session_is_rejected() -> None:
    with pytest.raises(ValueError, match="before first_session_date"):
        athlete_daily_features(sessions_frame(session(0)), NO_RACES, NO_PRIOR, day(-1), day(5), FIRST)


def test_sessions_before_first_session_date_are_rejected() -> None:
    with pytest.raises(ValueError, match="before first_session_date"):
        full(sessions_frame(session(-3), session(0)), 5)


def test_missing_columns_and_missing_loads_are_named() -> None:
    with pytest.raises(ValueError, match="avg_hr"):
        full(sessions_frame(session(0)).drop(columns="avg_hr"), 5)
    bad = sessions_frame(session(0))
    bad.loc[0, "session_load"] = NAN
    with pytest.raises(ValueError, match="session_load"):
        full(bad, 5)
