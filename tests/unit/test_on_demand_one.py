"""One-row ODTs (`compute_one`, the serving path) equal the array code (training, batch) bit for bit.

The serving API and the embedded predictor build one vector per request through the ODTs'
one-row twins; training and batch scoring run the array functions on columns. Every ODT in the
registry is fed thousands of generated rows (typical values, None / NaN, 0 and -0.0, negative,
infinite, huge and subnormal numbers; dates as ISO strings, dates, naive and aware datetimes,
numpy datetimes, edge days) one row at a time and as pandas columns, and the float64 bits must
be equal wherever the value is not NaN, and NaN in the same places. No timing is asserted.
"""

from __future__ import annotations

import datetime as dt
import decimal
import warnings

import numpy as np
import pandas as pd
import pytest

from athlete_platform.domain import arrays, physiology
from athlete_platform.features import live_inputs as li
from athlete_platform.features import model_inputs as mi
from athlete_platform.features import on_demand as odt
from athlete_platform.features.online_view import race_day_after_features

ROWS = 3000
DATE_INPUTS = {"race_date", "ts", "birth_date", "prev_race_date"}
EDGE_DAYS = ["0001-01-01", "1900-02-28", "1900-03-01", "1969-12-31", "1970-01-01", "2000-02-29", "2024-02-29"]
EDGE_DAYS += ["2024-12-31", "2025-01-01", "9999-12-31"]
EDGE_NUMBERS = [0.0, -0.0, -1.0, -1e-300, 5e-324, 1e-300, 1e300, -1e300, np.inf, -np.inf, np.nan, None, 1.0, 1000.0]
EDGE_NUMBERS += [42195, 0, -3, 2**53 + 1, 709.0, 710.0, -745.0, -800.0, 1e-100, 1e100]


def bits_equal(one, many) -> tuple[bool, np.ndarray]:
    """(equal?, the rows that differ): same NaN positions and the same float64 bits elsewhere."""
    one, many = np.asarray(one, np.float64), np.asarray(many, np.float64)
    one_nan, many_nan = np.isnan(one), np.isnan(many)
    differ = (one_nan != many_nan) | (~one_nan & ~many_nan & (one.view(np.int64) != many.view(np.int64)))
    return not differ.any(), np.flatnonzero(differ)


def numbers(rng: np.random.Generator, count: int) -> list:
    """Numbers of every magnitude a column may hold, with missing and edge values mixed in (1 in 4)."""
    standard = [5000.0, 10000.0, 21097.5, 42195.0]
    draws = [
        lambda: float(rng.uniform(0, 50_000)),
        lambda: float(rng.uniform(-10, 10)),  # log paces, log ratios
        lambda: float(np.exp(rng.uniform(-30, 30))),
        lambda: float(rng.choice(standard)) * float(rng.choice([1.0, 0.5, 1.0001])),
        lambda: float(rng.uniform(30, 400)),  # paces, heart rates, VDOTs
        lambda: int(rng.integers(-10, 50_000)),
        lambda: EDGE_NUMBERS[int(rng.integers(len(EDGE_NUMBERS)))],
        lambda: EDGE_NUMBERS[int(rng.integers(len(EDGE_NUMBERS)))],
    ]
    return [draws[int(rng.integers(len(draws)))]() for _ in range(count)]


def days(rng: np.random.Generator, count: int) -> list:
    """Date values of every kind a request or an online row may carry."""
    out = []
    for _ in range(count):
        day = dt.date(1900, 1, 1) + dt.timedelta(days=int(rng.integers(0, 200 * 365)))
        at = dt.datetime.combine(day, dt.time(int(rng.integers(24)), int(rng.integers(60)), int(rng.integers(60))))
        offset = dt.timezone(dt.timedelta(minutes=int(rng.integers(-12 * 60, 14 * 60))))
        kind = int(rng.integers(0, 10))
        out.append(
            [
                day.isoformat(),
                day,
                at,
                at.replace(tzinfo=offset),
                at.replace(tzinfo=offset).isoformat(),
                at.isoformat() + "Z",
                np.datetime64(day, "D"),
                np.datetime64(at, "h"),
                None,
                EDGE_DAYS[int(rng.integers(len(EDGE_DAYS)))],
            ][kind]
        )
    return out


def sexes(rng: np.random.Generator, count: int) -> list:
    return [["M", "F", None, "m", "", "X"][int(rng.integers(6))] for _ in range(count)]


def generated(name: str, rng: np.random.Generator, count: int = ROWS) -> list:
    if name in DATE_INPUTS:
        return days(rng, count)
    if name == "sex":
        return sexes(rng, count)
    return numbers(rng, count)


def as_column(values: list) -> pd.Series:
    """A training frame's column: numbers as float64 (None -> NaN), the rest as objects."""
    if all(v is None or isinstance(v, int | float) for v in values):
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return pd.Series(values, dtype=object)


@pytest.mark.parametrize("name", list(odt.REGISTRY))
def test_each_odts_one_row_twin_equals_its_array_function_bit_for_bit(name):
    transform = odt.REGISTRY[name]
    assert transform.one is not None, f"{name} has no one-row twin: compute_one would pay numpy's per-call cost"
    rng = np.random.default_rng(sum(map(ord, name)))
    inputs = {k: generated(k, rng) for k in transform.inputs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the array code warns on overflow where it warns
        many = transform(**{k: as_column(v) for k, v in inputs.items()})
        one = [transform.one(**{k: v[i] for k, v in inputs.items()}) for i in range(ROWS)]
    assert all(type(value) is float for value in one)
    equal, rows = bits_equal(one, many)
    assert equal, [({k: v[i] for k, v in inputs.items()}, one[i], many[i]) for i in rows[:5]]


@pytest.mark.parametrize("name", list(odt.REGISTRY))
def test_each_odts_one_row_twin_equals_its_array_function_on_numpy_arrays(name):
    """Numeric inputs as plain float64 arrays (as `live_inputs` on a numpy-backed frame reads them)."""
    transform = odt.REGISTRY[name]
    rng = np.random.default_rng(sum(map(ord, name)) + 1)
    inputs = {k: generated(k, rng, 500) for k in transform.inputs}
    columns = {
        k: np.array([np.nan if x is None else float(x) for x in v]) if k not in DATE_INPUTS | {"sex"} else v
        for k, v in inputs.items()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        many = transform(**{k: np.asarray(v, dtype=object) if isinstance(v, list) else v for k, v in columns.items()})
        one = [transform.one(**{k: v[i] for k, v in inputs.items()}) for i in range(500)]
    equal, rows = bits_equal(one, many)
    assert equal, [({k: v[i] for k, v in inputs.items()}, one[i], many[i]) for i in rows[:5]]


def test_one_day_count_equals_calendar_days_for_each_kind_of_date_on_its_own():
    """Homogeneous columns take numpy's fast conversion in `calendar_days` (mixed ones go one by
    one): the one-row reading must equal both."""
    rng = np.random.default_rng(11)
    later = days(rng, 4000)
    earlier = days(rng, 4000)
    kinds = {type(v).__name__ + (":aware" if getattr(v, "tzinfo", None) else "") for v in later}
    assert {"str", "date", "datetime", "datetime:aware", "datetime64", "NoneType"} <= kinds
    for kind in kinds:
        idx = [
            i
            for i, v in enumerate(later)
            if type(v).__name__ + (":aware" if getattr(v, "tzinfo", None) else "") == kind
        ]
        column = [later[i] for i in idx]
        if all(isinstance(v, np.datetime64) for v in column):
            column_array = np.array(column, dtype="datetime64[h]")
        else:
            column_array = np.array(column, dtype=object)
        other = np.array([dt.date(2000, 1, 1)] * len(idx), dtype=object)
        many = (arrays.calendar_days(column_array) - arrays.calendar_days(other)) / np.timedelta64(1, "D")
        one = [arrays.one_day_count(v, dt.date(2000, 1, 1)) for v in column]
        assert bits_equal(one, many)[0], kind
    many = odt.days_since_prev_race(as_column(later), as_column(earlier))
    one = [arrays.one_day_count(a, b) for a, b in zip(later, earlier, strict=True)]
    assert bits_equal(one, many)[0]


def test_a_long_column_of_repeated_dates_converts_as_each_value_would_on_its_own():
    """Long object columns are converted once per distinct value (`calendar_days`' fast path for
    Arrow's date objects): every kind of date, mixed and repeated, must still read as it would
    alone, missing values as NaT."""
    rng = np.random.default_rng(5)
    distinct = [v for v in days(rng, 60)] + [None, np.nan, pd.NaT]
    column = np.array([distinct[i] for i in rng.integers(0, len(distinct), 3000)], dtype=object)
    alone = np.array([arrays.calendar_days(np.array([v], dtype=object))[0] for v in column])
    converted = arrays.calendar_days(column)
    assert len(pd.unique(column)) * 2 < column.size  # the distinct-value path is the one taken
    assert converted.dtype == np.dtype("datetime64[D]")
    assert np.array_equal(converted, alone, equal_nan=True)


def test_unusual_values_are_read_by_the_array_code_itself():
    # numbers: numpy scalars, bools, strings, Decimal, ints beyond int64 -> as_numbers
    for value in [np.float32(0.1), np.int64(7), True, "3.5", " 12 ", decimal.Decimal("0.1"), 2**70, -(2**63), 2**63]:
        assert bits_equal([arrays.one_number(value)], [arrays.as_numbers(value)])[0], value
    # dates numpy reads its own way ("2025" is 2025-01-01 there), pandas timestamps, NaN, NaT
    for value in ["2025", "2024-06-02T10:00", pd.Timestamp("2024-06-02 23:00"), np.nan, np.datetime64("NaT")]:
        assert arrays.one_day(value) is None or np.isnan(arrays.one_day(value)), value
        many = (arrays.calendar_days(value) - arrays.calendar_days("2024-01-01")) / np.timedelta64(1, "D")
        assert bits_equal([arrays.one_day_count(value, "2024-01-01")], [many])[0], value
    # an impossible day is the array code's error, not another one
    for bad in ["2023-02-29", "2024-13-01", "next sunday"]:
        with pytest.raises(ValueError) as one:
            odt.compute_one(["age_years"], {"race_date": bad, "birth_date": "1990-01-01"})
        with pytest.raises(ValueError) as many:
            odt.compute(["age_years"], {"race_date": bad, "birth_date": "1990-01-01"})
        assert str(one.value) == str(many.value)


def training_frame(rng: np.random.Generator, count: int) -> pd.DataFrame:
    """Rows as training and batch scoring see them, with the missing values real rows have."""
    frame = {c: numbers(rng, count) for c in (*mi.FEATURE_STORE_INPUTS, *mi.ATHLETE_INPUTS)}
    standard = [5000.0, 10000.0, 21097.5, 42195.0]
    frame["distance_m"] = [float(rng.choice(standard)) for _ in range(count)]
    frame["vdot_best_90d"] = [None if rng.random() < 0.3 else float(rng.uniform(25, 80)) for _ in range(count)]
    frame["avg_pace_28d_s_per_km"] = [
        None if rng.random() < 0.1 else float(rng.uniform(200, 500)) for _ in range(count)
    ]
    frame["event_date"] = [dt.date(2024, 1, 1) + dt.timedelta(days=int(rng.integers(0, 700))) for _ in range(count)]
    frame["sex"] = sexes(rng, count)
    frame["birth_date"] = [
        None if rng.random() < 0.05 else dt.date(1950, 1, 1) + dt.timedelta(days=int(rng.integers(0, 20000)))
        for _ in range(count)
    ]
    has_prev = rng.random(count) < 0.7
    frame["prev_race_date"] = [
        d - dt.timedelta(days=int(rng.integers(0, 400))) if p else None
        for d, p in zip(frame["event_date"], has_prev, strict=True)
    ]
    # any race distance: a numpy scalar's ** differs from the power ufunc for some ratios (1500 m -> 10 km)
    any_race = [800.0, 1500.0, 3000.0, *standard]
    frame["prev_distance_m"] = [float(rng.choice(any_race)) if p else None for p in has_prev]
    frame["prev_finish_time_s"] = [float(rng.uniform(900, 15000)) if p else None for p in has_prev]
    frame["elapsed_s"] = numbers(rng, count)
    frame["distance_done_m"] = [float(rng.uniform(-10, 45000)) if rng.random() < 0.9 else None for _ in range(count)]
    frame["current_hr"] = [None if rng.random() < 0.2 else float(rng.uniform(40, 210)) for _ in range(count)]
    frame["current_pace_s_per_km"] = numbers(rng, count)
    return pd.DataFrame({k: as_column(v) for k, v in frame.items()})


def test_online_vectors_by_compute_one_equal_model_inputs_and_live_inputs_bit_for_bit():
    frame = training_frame(np.random.default_rng(2026), 2000)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for names, batch, request in (
        (mi.MODEL_INPUTS, mi.model_inputs, mi.FRAME_REQUEST_COLUMNS),
        (li.LIVE_INPUTS, li.live_inputs, li.FRAME_REQUEST_COLUMNS),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            many = batch(frame).to_numpy(np.float64)
            one = [
                list(odt.compute_one(names, {**r, **{p: r[c] for p, c in request.items()}}).values()) for r in records
            ]
        equal, rows = bits_equal(np.asarray(one).ravel(), many.ravel())
        cells = [(int(i) // len(names), names[int(i) % len(names)]) for i in rows[:5]]
        assert equal, cells


def test_compute_one_gives_floats_like_compute_and_the_same_missing_input_errors():
    values = {"race_distance_m": 10000, "race_date": "2025-01-12", "birth_date": None, "sex": "F", "ctl": 3}
    one = odt.compute_one(["distance_m", "age_years", "sex_male", "ctl", "distance_m"], values)
    assert list(one) == ["distance_m", "age_years", "sex_male", "ctl"]
    assert all(type(v) is float for v in one.values())
    for names, given in (
        (mi.MODEL_INPUTS, {"race_distance_m": 5000.0}),
        (li.LIVE_INPUTS, {"race_distance_m": 5000.0, "elapsed_s": 10.0}),
        (["ctl"], {}),
    ):
        with pytest.raises(odt.MissingInput) as many:
            odt.compute(names, given)
        with pytest.raises(odt.MissingInput) as one_error:
            odt.compute_one(names, given)
        got, want = one_error.value, many.value
        assert (got.name, got.kind, got.needed_by) == (want.name, want.kind, want.needed_by)


def test_a_twin_must_take_the_array_functions_parameters_in_order():
    def ratio(a, b):
        return a / b

    def ratio_one(b, a):
        return a / b

    with pytest.raises(ValueError, match="one-row twin ratio_one must take"):
        odt.OnDemand("ratio", ratio, passed=("a", "b"), one=ratio_one)


def test_one_row_finish_time_and_riegel_and_hr_reserve_equal_the_array_formulas():
    rng = np.random.default_rng(5)
    raw = rng.normal(0, 0.2, 20000).astype(np.float32).astype(float)
    base = rng.uniform(-2, 0, 20000)
    distance = rng.choice([5000.0, 10000.0, 21097.5, 42195.0, 800.0, 1e6], 20000)
    many = mi.predicted_time_s(raw, pd.DataFrame({"base_log_pace": base, "distance_m": distance}))
    one = [
        mi.predicted_time_one_s(r, b, d) for r, b, d in zip(raw.tolist(), base.tolist(), distance.tolist(), strict=True)
    ]
    assert bits_equal(one, many)[0]
    t1, d1, d2 = (np.asarray(numbers(rng, 20000), dtype=object) for _ in range(3))
    t1, d1, d2 = (np.array([np.nan if v is None else float(v) for v in a]) for a in (t1, d1, d2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        many = physiology.riegel_time_s(t1, d1, d2)
        one = [physiology.riegel_time_one_s(*v) for v in zip(t1.tolist(), d1.tolist(), d2.tolist(), strict=True)]
        assert bits_equal(one, many)[0]
        many = physiology.hr_reserve_fraction(t1, d1, d2)
        one = [physiology.hr_reserve_fraction_one(*v) for v in zip(t1.tolist(), d1.tolist(), d2.tolist(), strict=True)]
    assert bits_equal(one, many)[0]


def test_the_default_race_day_is_the_day_after_the_feature_date_for_every_kind_of_date():
    for value in ["2024-10-26", dt.date(2024, 10, 26), dt.datetime(2024, 10, 26, 23, 59), np.datetime64("2024-10-26")]:
        assert race_day_after_features({"feature_date": value}) == np.datetime64("2024-10-27")
    assert race_day_after_features({"feature_date": pd.Timestamp("2024-10-26")}) == np.datetime64("2024-10-27")
