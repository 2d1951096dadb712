"""On-demand transformations: one definition on scalars (serving) and columns (training, batch).

Every ODT is checked three ways on the same cases (edge cases included): one call per case
with Python scalars, one call on numpy arrays, one call on pandas Series; the answers must
be equal value for value (NaN where NaN). Then the values of each, by hand.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from athlete_platform.domain import physiology
from athlete_platform.features import model_inputs as mi
from athlete_platform.features import on_demand as odt
from athlete_platform.features.online_view import OnlineFeatureView

# Values per input name; case i of an ODT takes the i-th value of each of its inputs
# (cycled), so edge cases meet each other: no previous race, zero distance done, missing HR ...
CASES: dict[str, list] = {
    "race_distance_m": [5000.0, 10000.0, 21097.5, 42195.0, 0.0, 10000],
    "race_date": ["2025-01-12", dt.date(2025, 3, 1), "2024-06-02", dt.date(2024, 2, 29), "2025-01-12", "2024-12-31"],
    "ts": ["2025-01-05T08:00:00Z", "2025-02-28T23:30:00-02:00", dt.datetime(2024, 6, 1, 7), "2024-02-01", None],
    "sex": ["M", "F", None, "F", "M"],
    "birth_date": ["1990-05-01", dt.date(1985, 1, 1), None, "2000-02-29", "1970-12-31"],
    "prev_race_date": ["2024-11-03", None, dt.date(2024, 5, 3), "2024-02-28", None],
    "prev_distance_m": [5000.0, None, 10000.0, 21097.5, None],
    "prev_finish_time_s": [1200.0, None, 2500.0, 5400.0, None],
    "vdot_best_90d": [50.0, None, 42.5, 61.0, None, 35.0],
    "avg_pace_28d_s_per_km": [300.0, None, 330.5, 0.0, 280.0],
    "distance_done_m": [0.0, 2500.0, 21300.0, None, 10000.0, -5.0],
    "current_pace_s_per_km": [290.0, 350.0, None, 0.0, 300.0],
    "current_hr": [165.0, None, 140, 200.0, 45.0],
    "hr_rest": [50.0, 48.0, 55.0, 60.0, 50.0],
    "hr_max": [190.0, 185.0, 55.0, 200.0, None],
    "elapsed_s": [1800.0, 0.0, None, 600.0, 3000.0],
    # the heart-rate/speed line: a usual one, none, a flat one, one falling with HR, an absurd one
    "run_hr_mean_42d": [140.0, None, 150.0, 135.5, 145.0],
    "run_log_speed_mean_42d": [1.05, None, 0.9, 1.2, -5.0],
    "run_log_speed_per_bpm_42d": [0.006, None, 0.0, -0.01, 0.5],
}
N_CASES = 12


def case_values(name: str) -> list:
    values = CASES[name]
    return [values[i % len(values)] for i in range(N_CASES)]


def inputs_of(transform: odt.OnDemand, kind: str) -> dict:
    """The ODT's inputs for every case: ODT inputs computed from the cases of theirs."""
    values = {}
    for name in transform.inputs:
        if name in transform.on_demand:
            inner = inputs_of(odt.REGISTRY[name], "list")
            values[name] = [odt.REGISTRY[name](**{k: v[i] for k, v in inner.items()}) for i in range(N_CASES)]
        else:
            values[name] = case_values(name)
    if kind == "numpy":
        return {
            k: np.array(v, dtype=object if any(isinstance(x, str | dt.date) for x in v) else float)
            for k, v in values.items()
        }
    if kind == "pandas":
        return {k: pd.Series(v) for k, v in values.items()}
    return values


def same(a, b) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


@pytest.mark.parametrize("name", list(odt.REGISTRY))
def test_each_odt_gives_the_same_on_scalars_arrays_and_series(name):
    transform = odt.REGISTRY[name]
    listed = inputs_of(transform, "list")
    scalars = [transform(**{k: v[i] for k, v in listed.items()}) for i in range(N_CASES)]
    assert all(isinstance(s, float) for s in scalars), scalars  # one request -> plain floats
    for kind in ("numpy", "pandas"):
        vector = transform(**inputs_of(transform, kind))
        assert isinstance(vector, np.ndarray) and vector.dtype == np.float64
        assert same(vector, scalars), (kind, vector, scalars)


def test_declared_inputs_must_be_the_functions_parameters():
    def ratio(a, b):
        return a / b

    with pytest.raises(ValueError, match="declared inputs"):
        odt.OnDemand("ratio", ratio, passed=("a",))
    assert odt.OnDemand("ratio", ratio, passed=("a",), stored=("b",))(a=1.0, b=4.0, other=9) == 0.25


def test_registry_lists_each_odt_after_its_on_demand_inputs_and_describes_it():
    seen: set[str] = set()
    for transform in odt.ON_DEMAND_TRANSFORMATIONS:
        assert set(transform.on_demand) <= seen, transform.name
        seen.add(transform.name)
        meta = transform.metadata()
        assert meta["name"] == transform.name and meta["unit"]
    assert set(mi.MODEL_INPUTS) - set(mi.STORED_INPUTS) <= set(odt.REGISTRY)


def test_dependencies_by_kind_of_the_time_estimator_inputs():
    needs = odt.dependencies(mi.MODEL_INPUTS)
    assert needs.request == {"race_distance_m", "race_date"}
    assert needs.passed == set()
    assert needs.stored == set(mi.STORED_INPUTS)
    described = [m["name"] for m in odt.metadata(mi.MODEL_INPUTS)]
    assert described.index("vdot_projection_s") < described.index("vdot_log_pace") < described.index("base_log_pace")
    assert set(described) == set(needs.on_demand) and "fraction_done" not in described


# --- values, by hand -----------------------------------------------------------------------


def test_days_to_race_counts_calendar_days_from_the_requests_utc_day():
    assert odt.days_to_race("2025-01-12", "2025-01-05T08:00:00Z") == 7.0
    # 23:30 at UTC-2 is already the next UTC day
    assert odt.days_to_race("2025-03-01", "2025-02-28T23:30:00-02:00") == 0.0
    assert math.isnan(odt.days_to_race("2025-03-01", None))


def test_riegel_projection_from_the_last_race_and_none_without_one():
    assert odt.riegel_projection_s(10000.0, 1200.0, 5000.0) == pytest.approx(1200 * 2**1.06)
    assert math.isnan(odt.riegel_projection_s(10000.0, None, None))
    assert odt.riegel_log_pace(10000.0, 2500.0) == pytest.approx(math.log(0.25))


def test_vdot_projection_is_the_daniels_equivalent_time():
    assert odt.vdot_projection_s(5000.0, 50.0) == pytest.approx(physiology.daniels_time_s(50.0, 5000.0))
    assert physiology.vdot(5000.0, odt.vdot_projection_s(5000.0, 50.0)) == pytest.approx(50.0)
    assert math.isnan(odt.vdot_projection_s(5000.0, None))


def test_days_since_prev_race_and_age():
    assert odt.days_since_prev_race("2024-06-02", dt.date(2024, 5, 3)) == 30.0
    assert math.isnan(odt.days_since_prev_race("2024-06-02", None))  # no previous race
    assert odt.age_years(dt.date(2024, 6, 2), "1994-06-02") == pytest.approx(30.0, abs=0.01)


def test_base_log_pace_weighs_races_and_training_runs_then_falls_back_to_training_pace_to_a_constant():
    nan = float("nan")
    assert odt.base_log_pace(300.0, -1.0, -2.0, nan) == -1.5
    assert odt.base_log_pace(300.0, -1.0, -2.0, -2.5) == -2.0  # half races (-1.5), half training (-2.5)
    assert odt.base_log_pace(300.0, nan, -2.0, nan) == -2.0
    assert odt.base_log_pace(300.0, nan, nan, -2.5) == -2.5  # no race: the training runs alone
    assert odt.base_log_pace(300.0, nan, nan, nan) == pytest.approx(math.log(0.3))
    assert odt.base_log_pace(None, nan, nan, nan) == pytest.approx(math.log(odt.FALLBACK_PACE_S_PER_M))


def test_aerobic_vdot_reads_the_heart_rate_line_at_75_percent_of_the_reserve():
    # Reserve 50..190 bpm: 75 % is 155 bpm. A line through (140 bpm, 3 m/s) rising 0.5 %/bpm
    # gives 3 * exp(0.005 * 15) m/s there; Daniels' oxygen cost of that speed, / 0.75.
    v = 3.0 * math.exp(0.005 * 15) * 60.0
    expected = (-4.60 + 0.182258 * v + 0.000104 * v * v) / 0.75
    assert odt.aerobic_vdot(140.0, math.log(3.0), 0.005, 50.0, 190.0) == pytest.approx(expected, rel=1e-12)
    assert 45 < expected < 60
    # A line of a faster runner gives a higher VDOT and a faster projected race.
    faster = odt.aerobic_vdot(140.0, math.log(3.3), 0.005, 50.0, 190.0)
    assert faster > expected
    assert odt.aerobic_projection_s(10000.0, faster) < odt.aerobic_projection_s(10000.0, expected)
    assert physiology.vdot(10000.0, odt.aerobic_projection_s(10000.0, expected)) == pytest.approx(expected)
    # No slope, no reserve, or an absurd extrapolation: undefined.
    assert math.isnan(odt.aerobic_vdot(140.0, math.log(3.0), None, 50.0, 190.0))
    assert math.isnan(odt.aerobic_vdot(140.0, math.log(3.0), 0.005, 190.0, 190.0))
    assert math.isnan(odt.aerobic_vdot(140.0, math.log(3.0), 0.5, 50.0, 190.0))


def test_fraction_done_edges():
    assert odt.fraction_done(10000.0, 0.0) == 0.0  # zero distance done
    assert odt.fraction_done(10000.0, 2500.0) == 0.25
    assert odt.fraction_done(21097.5, 21300.0) == 1.0  # the watch measured long: done
    assert math.isnan(odt.fraction_done(10000.0, None))
    assert math.isnan(odt.fraction_done(10000.0, -5.0))
    assert math.isnan(odt.fraction_done(0.0, 100.0))


def test_even_pace_finish_needs_some_distance_done():
    assert odt.even_pace_finish_s(1800.0, 0.25) == 7200.0
    assert math.isnan(odt.even_pace_finish_s(1800.0, 0.0))  # nothing to extrapolate from


def test_pace_ratio_to_the_28_day_pace():
    assert odt.pace_ratio_28d(330.0, 300.0) == pytest.approx(1.1)
    assert math.isnan(odt.pace_ratio_28d(330.0, None))  # no runs in 28 days
    assert math.isnan(odt.pace_ratio_28d(0.0, 300.0))


def test_heart_rate_reserve_fraction_and_missing_hr():
    assert odt.hr_reserve_fraction(120.0, 50.0, 190.0) == 0.5
    assert math.isnan(odt.hr_reserve_fraction(None, 50.0, 190.0))  # no heart-rate strap
    assert math.isnan(odt.hr_reserve_fraction(120.0, 60.0, 60.0))  # no reserve
    # TRIMP's x is this fraction: same load as the formula written out
    x = (150 - 50) / (190 - 50)
    assert physiology.trimp(3600, 150, 50, 190, "M") == pytest.approx(60 * x * 0.64 * math.exp(1.92 * x))


# --- training-time and serving-time outputs are equal for the same inputs ------------------


def training_frame() -> pd.DataFrame:
    """Training rows as training_rows builds them (dates as date objects, nulls as None/NaN)."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(40):
        row = {c: float(rng.uniform(1, 100)) for c in mi.FEATURE_STORE_INPUTS}
        row.update(
            athlete_id=f"a{i}",
            distance_m=[5000.0, 10000.0, 21097.5, 42195.0][i % 4],
            event_date=dt.date(2024, 1, 1) + dt.timedelta(days=int(rng.integers(0, 300))),
            sex=["M", "F"][i % 2],
            birth_date=dt.date(1970, 1, 1) + dt.timedelta(days=int(rng.integers(0, 12000))),
            weight_kg=60.0 + i % 7,
            hr_rest=50.0,
            hr_max=185.0 + i % 5,
            vdot_best_90d=None if i % 3 == 0 else 40.0 + i % 20,
            avg_pace_28d_s_per_km=None if i % 5 == 0 else 280.0 + i,
            run_hr_mean_42d=140.0 + i % 10,
            run_log_speed_mean_42d=1.0 + 0.01 * (i % 7),
            run_log_speed_per_bpm_42d=None if i % 6 == 0 else 0.004 + 0.0005 * (i % 5),
        )
        has_prev = i % 4 != 1
        row["prev_race_date"] = row["event_date"] - dt.timedelta(days=10 + i) if has_prev else None
        row["prev_distance_m"] = 10000.0 if has_prev else None
        row["prev_finish_time_s"] = 2400.0 + 10 * i if has_prev else None
        rows.append(row)
    return pd.DataFrame(rows)


class DictStore:
    """A tiny in-memory `get(keys)` (pure logic only; the real backends are tested elsewhere)."""

    def __init__(self, rows: dict[str, dict]):
        self.rows, self.lookups = rows, 0

    def get(self, keys):
        self.lookups += 1
        return {k: dict(self.rows[k]) for k in keys if k in self.rows}


def test_training_rows_and_serving_vectors_are_equal_for_the_same_inputs():
    frame = training_frame()
    training = mi.model_inputs(frame)
    # The same values as the online store keeps them: JSON-able, dates as ISO text, no NaN.
    stored = {
        r["athlete_id"]: {
            "athlete_id": r["athlete_id"],
            **{c: (r[c].isoformat() if isinstance(r[c], dt.date) else r[c]) for c in mi.STORED_INPUTS},
        }
        for r in frame.to_dict("records")
    }
    for row in stored.values():
        row.update({k: None for k, v in row.items() if isinstance(v, float) and math.isnan(v)})
    view = OnlineFeatureView(DictStore(stored))
    for i, r in frame.iterrows():
        vector = view.get_feature_vector(
            {"athlete_id": r["athlete_id"]},
            request_parameters={"race_distance_m": r["distance_m"], "race_date": r["event_date"].isoformat()},
        )
        assert same(vector, training.loc[i].to_numpy()), (i, vector, training.loc[i].tolist())


def test_live_features_are_equal_on_training_snapshots_and_on_one_request():
    live = ("fraction_done", "pace_ratio_28d", "hr_reserve_fraction", "even_pace_finish_s", "days_to_race")
    snapshots = pd.DataFrame(
        {
            "race_distance_m": [10000.0, 21097.5, 42195.0, 5000.0],
            "race_date": ["2025-01-12"] * 4,
            "ts": ["2025-01-12T08:10:00Z", "2025-01-12T09:00:00Z", "2025-01-11T10:00:00Z", "2025-01-12T07:00:00Z"],
            "distance_done_m": [0.0, 5000.0, 30000.0, 5100.0],
            "elapsed_s": [0.0, 1500.0, 9000.0, 1250.0],
            "current_hr": [150.0, None, 170.0, 181.0],
            "current_pace_s_per_km": [300.0, 310.0, None, 240.0],
            "avg_pace_28d_s_per_km": [320.0, 320.0, 330.0, None],
            "hr_rest": [50.0, 50.0, 52.0, 49.0],
            "hr_max": [190.0, 190.0, 188.0, 195.0],
        }
    )
    training = odt.compute(live, {c: snapshots[c] for c in snapshots.columns})
    stored_names = ("avg_pace_28d_s_per_km", "hr_rest", "hr_max")
    view = OnlineFeatureView(features=live)
    for i, r in snapshots.iterrows():
        row = {"athlete_id": "a", "feature_date": "2025-01-11", **{c: r[c] for c in stored_names}}
        vector = view.get_feature_vector(
            {"athlete_id": "a"},
            passed_features={
                c: (None if pd.isna(r[c]) else r[c])
                for c in ("distance_done_m", "elapsed_s", "current_hr", "current_pace_s_per_km")
            },
            request_parameters={c: r[c] for c in ("race_distance_m", "race_date", "ts")},
            store=DictStore({"a": row}),
            return_type="dict",
        )
        assert list(vector) == list(live)
        assert same(list(vector.values()), [training[name][i] for name in live]), i
