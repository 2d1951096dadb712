"""Unit tests for athlete_platform.features.athlete_batches (no Spark): the mapInArrow body gives,
for every athlete, exactly the rows of the pandas form (`rolling.athlete_daily_features`),
however the grouped rows are cut into batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from athlete_platform.features import rolling
from athlete_platform.features.athlete_batches import (
    PRIOR_VALUE_COLUMNS,
    TAGGED_COLUMNS,
    feature_batches,
    output_schema,
)
from tests.unit.test_rolling import FIRST, NO_PRIOR, day, random_athlete

_TYPES = {
    "kind": pa.string(),
    "athlete_id": pa.string(),
    "day": pa.date32(),
    "first_session_date": pa.date32(),
    "end_date": pa.date32(),
    "sport": pa.string(),
    "is_race": pa.bool_(),
    "days_since_last_session": pa.int32(),
}


def tagged(athlete_id: str, sessions: pd.DataFrame, races: pd.DataFrame, prior: pd.DataFrame, start: int, end: int):
    """The tagged rows of one athlete, as `pipeline.tagged_inputs` makes them (dicts)."""
    rows = [{"kind": "plan", "day": day(start), "first_session_date": FIRST, "end_date": day(end)}]
    for s in sessions.to_dict("records"):
        rows.append({"kind": "session", "day": s["session_date"], **{k: s[k] for k in rolling.SESSION_COLUMNS[1:]}})
    for r in races.to_dict("records"):
        rows.append({"kind": "race", "day": r["race_date"], "vdot": r["vdot"]})
    for p in prior.to_dict("records"):
        rows.append({"kind": "prior", "day": p["feature_date"], **{k: p[k] for k in PRIOR_VALUE_COLUMNS}})
    return [{**row, "athlete_id": athlete_id} for row in rows]


def to_table(rows: list[dict]) -> pa.Table:
    columns = {}
    for name in TAGGED_COLUMNS:
        values = [row.get(name) for row in rows]
        if name not in _TYPES:
            values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v) for v in values]
        columns[name] = pa.array(values, type=_TYPES.get(name, pa.float64()))
    return pa.table(columns)


def cut(table: pa.Table, sizes: list[int]) -> list[pa.RecordBatch]:
    """The table as record batches of these sizes (the rest in one last batch)."""
    batches, at = [], 0
    for size in [*sizes, table.num_rows]:
        batches.extend(table.slice(at, size).to_batches())
        at += size
        if at >= table.num_rows:
            break
    return batches


def run(batches: list[pa.RecordBatch]) -> pd.DataFrame:
    out = list(feature_batches(batches))
    assert all(b.schema == output_schema() for b in out)
    return pa.Table.from_batches(out, schema=output_schema()).to_pandas(date_as_object=True)


def expected_rows(athlete_id: str, sessions, races, prior, start: int, end: int) -> pd.DataFrame:
    frame = rolling.athlete_daily_features(sessions, races, prior, day(start), day(end), FIRST)
    frame.insert(0, "athlete_id", athlete_id)
    return frame


def assert_equal_rows(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Bit for bit, NaN and null alike (Spark stores both as null)."""
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    for column in got.columns:
        g, e = got[column].to_numpy(), expected[column].to_numpy()
        if column in ("athlete_id", "feature_date"):
            assert list(g) == list(e), column
        else:
            np.testing.assert_array_equal(g.astype(np.float64), e.astype(np.float64), err_msg=column)


ATHLETES = {f"ath_{seed:04d}": random_athlete(seed, days=300) for seed in range(4)}


def all_athletes_rows() -> tuple[pa.Table, pd.DataFrame]:
    rows, expected = [], []
    for athlete_id, (sessions, races) in ATHLETES.items():
        rows += tagged(athlete_id, sessions, races, NO_PRIOR_ROWS, 0, 299)
        expected.append(expected_rows(athlete_id, sessions, races, NO_PRIOR, 0, 299))
    return to_table(rows), pd.concat(expected, ignore_index=True)


NO_PRIOR_ROWS = pd.DataFrame(columns=["feature_date", *PRIOR_VALUE_COLUMNS])


@pytest.mark.parametrize(
    "sizes",
    [
        [],  # one batch
        [1, 1, 1],  # the plan row alone, then single rows
        [10, 150, 7, 300, 2],  # athletes spanning up to four batches
        [500, 0, 1, 0],  # empty batches in between
    ],
)
def test_every_athlete_equals_the_pandas_form_however_the_rows_are_batched(sizes: list[int]) -> None:
    table, expected = all_athletes_rows()
    assert_equal_rows(run(cut(table, sizes)), expected)


def test_the_row_order_within_an_athlete_does_not_matter() -> None:
    table, expected = all_athletes_rows()
    ids = table.column("athlete_id").to_numpy(zero_copy_only=False)
    rng = np.random.default_rng(0)
    order = np.concatenate([rng.permutation(np.flatnonzero(ids == a)) for a in ATHLETES])  # athletes stay grouped
    assert_equal_rows(run(table.take(pa.array(order)).to_batches(max_chunksize=97)), expected)


def test_prior_rows_resume_the_load_states() -> None:
    sessions, races = ATHLETES["ath_0001"]
    before = rolling.athlete_daily_features(sessions, races, NO_PRIOR, FIRST, day(199), FIRST)
    prior = before.tail(rolling.PRIOR_DAYS)
    lookback = day(200 - rolling.LOOKBACK_DAYS)
    window_sessions = sessions[sessions["session_date"] >= lookback]
    window_races = races[races["race_date"] >= lookback]
    rows = tagged("ath_0001", window_sessions, window_races, prior, 200, 299)
    got = run(to_table(rows).to_batches(max_chunksize=50))
    full = expected_rows("ath_0001", sessions, races, NO_PRIOR, 0, 299)
    assert_equal_rows(got, full.iloc[200:].reset_index(drop=True))


def test_nan_features_are_null_and_the_types_are_the_tables() -> None:
    sessions, races = ATHLETES["ath_0000"]
    out = pa.Table.from_batches(
        list(feature_batches(to_table(tagged("a", sessions, races, NO_PRIOR_ROWS, 0, 50)).to_batches()))
    )
    assert out.schema == output_schema()
    assert out.column("vdot_best_90d").null_count > 0  # no race in the first days
    for name in out.column_names:
        column = out.column(name)
        if pa.types.is_floating(column.type):
            assert not np.isnan(
                column.to_numpy(zero_copy_only=False)[column.is_valid().to_numpy(zero_copy_only=False)]
            ).any(), name


def test_an_athlete_with_nothing_to_compute_gives_no_rows() -> None:
    sessions, races = ATHLETES["ath_0002"]
    before = rolling.athlete_daily_features(sessions, races, NO_PRIOR, FIRST, day(99), FIRST)
    rows = tagged("b", sessions.iloc[:0], races.iloc[:0], before.tail(rolling.PRIOR_DAYS), 100, 99)  # end < start
    assert list(feature_batches(to_table(rows).to_batches())) == []


def test_rows_not_grouped_by_athlete_are_an_error_naming_the_athlete() -> None:
    sessions, races = ATHLETES["ath_0003"]
    rows = tagged("ath_0003", sessions, races, NO_PRIOR_ROWS, 0, 99)
    other = tagged("ath_x", sessions, races, NO_PRIOR_ROWS, 0, 99)
    interleaved = rows[:-4] + other + rows[-4:]  # ath_0003's last rows come after another athlete
    with pytest.raises(ValueError, match="'ath_0003' has 0 plan rows.*grouped by athlete_id"):
        list(feature_batches(to_table(interleaved).to_batches()))


def test_an_invalid_athlete_is_named_with_the_rule_it_broke() -> None:
    sessions, races = ATHLETES["ath_0000"]
    rows = tagged("ath_bad", sessions, races, NO_PRIOR_ROWS, 5, 99)  # no prior rows but not the first day
    with pytest.raises(ValueError, match="athlete 'ath_bad': prior is empty"):
        list(feature_batches(to_table(rows).to_batches()))


def test_a_partition_with_no_rows_gives_no_batches() -> None:
    empty = to_table([]).to_batches()
    assert list(feature_batches(empty)) == []
