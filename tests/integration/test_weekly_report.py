"""Weekly report on real Delta tables: week boundaries, volumes, week-end state, flags, HTML, re-runs.

silver.sessions, the feature table and the predictions table are shared with other tests, so
every row written here has an athlete id starting with ``wrtest_`` (deleted before and after)
and every assertion filters on those ids. The expected rows are worked out by hand below.

Calendar: 2024-02-12, 02-19, 02-26, 03-04 and 03-11 are Mondays; the run date 2024-03-13 is
a Wednesday, so the last week is partial (03-11..03-13).
"""

from __future__ import annotations

import datetime as dt

import pytest

from athlete_platform.lakehouse.ddl import ensure_table
from athlete_platform.lakehouse.step import StepContext
from athlete_platform.lakehouse.tables import (
    ATHLETE_PREDICTIONS,
    ATHLETE_ROLLING_FEATURES,
    ATHLETE_WEEKLY_REPORT,
    SESSIONS,
)
from athlete_platform.reporting import weekly_report
from athlete_platform.reporting.weekly_report import WeeklyReportStep
from athlete_platform.reporting.weekly_summary import SUMMARY_COLUMNS, weekly_summary
from tests import browser
from tests.own_lake import own_names, own_settings  # noqa: F401  (the module's own lakehouse)

pytestmark = pytest.mark.integration


PREFIX = "wrtest_"
A, B, C = PREFIX + "a", PREFIX + "b", PREFIX + "c"
RUN_DATE = dt.date(2024, 3, 13)
NOW = dt.datetime(2024, 3, 14, 4, 0)
LINEAGE = ("computed_at", "_run_id")
NAN = float("nan")
MODEL = "uc_athlete_data.ml.time_estimator"
# On every day that is not a week end: values that would raise every flag if picked.
DECOY = {"ctl": 999.0, "atl": 999.0, "tsb": -99.0, "acwr_rolling": 9.0, "acwr_ewma": 9.0, "monotony_7d": 9.0}


def d(month: int, day: int) -> dt.date:
    return dt.date(2024, month, day)


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def feature_row(athlete_id: str, day: dt.date, daily_load: float, state: dict | None) -> tuple:
    row = {"athlete_id": athlete_id, "feature_date": day, "daily_load": daily_load, **(state or DECOY)}
    row |= {"computed_at": dt.datetime(2024, 3, 20), "_run_id": "test_weekly_report"}
    for column in ATHLETE_ROLLING_FEATURES.columns:
        row.setdefault(column.name, 1 if column.type == "INT" else 1.0)
    return tuple(row[c] for c in ATHLETE_ROLLING_FEATURES.column_names)


def state(ctl, atl, tsb, acwr_rolling, acwr_ewma, monotony_7d) -> dict:
    return dict(ctl=ctl, atl=atl, tsb=tsb, acwr_rolling=acwr_rolling, acwr_ewma=acwr_ewma, monotony_7d=monotony_7d)


# Week-end states (Sundays, and the run date for the current week); thresholds probed exactly.
A_STATES = {
    d(2, 18): state(18.0, 18.5, 0.0, None, None, None),  # < 28 days: ACWR null, no flag
    d(2, 25): state(25.0, 25.5, -30.0, 1.5, 1.2, 2.0),  # every value AT its threshold: no flag
    d(3, 3): state(33.0, 66.0, -30.5, 1.51, 1.4, 2.01),  # just past three thresholds
    d(3, 10): state(40.0, 41.0, 5.0, 0.8, 0.9, 1.0),  # acwr at the low threshold: no flag
    d(3, 13): state(43.0, 44.0, -1.0, 0.79, 0.7, NAN),  # run date; NaN monotony must not flag
}
B_STATES = {
    d(3, 10): state(12.0, 14.0, -30.0, NAN, NAN, NAN),
    d(3, 13): state(13.0, 15.0, -10.0, 1.6, 1.3, 1.0),
}


def feature_rows() -> list[tuple]:
    rows = []
    # A: Wednesday 02-14 to 03-15 (two rows after the run date); daily_load = day of month,
    # so a week sum tells which days were counted; after the run date a load of 1000.
    for day in days(d(2, 14), d(3, 15)):
        load = 1000.0 if day > RUN_DATE else float(day.day)
        rows.append(feature_row(A, day, load, A_STATES.get(day)))
    for day in days(d(3, 4), d(3, 13)):
        rows.append(feature_row(B, day, 5.0, B_STATES.get(day)))
    return rows


def session_row(session_id: str, athlete_id: str, start: dt.datetime, duration_s: float, distance_m: float) -> tuple:
    row = {
        "session_id": session_id,
        "athlete_id": athlete_id,
        "sport": "run",
        "start_time": start,
        "session_date": start.date(),
        "duration_s": duration_s,
        "distance_m": distance_m,
        "elevation_gain_m": 0.0,
        "avg_hr": 150.0,
        "max_hr": 170.0,
        "rpe": 5,
        "notes": None,
        "source": "app",
        "is_race": False,
        "session_load": 50.0,
        "load_imputed": False,
        "updated_at": dt.datetime(2024, 3, 20, tzinfo=dt.UTC),
        "_run_id": "test_weekly_report",
    }
    return tuple(row[c] for c in SESSIONS.column_names)


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, minute, tzinfo=dt.UTC)


SESSION_ROWS = [
    session_row("wrtest_a-1", A, at(2, 14, 6), 3600.0, 10000.0),
    session_row("wrtest_a-2", A, at(2, 18, 23, 30), 1800.0, 5000.0),  # Sunday night: still week 02-12
    session_row("wrtest_a-3", A, at(2, 19, 0, 10), 2400.0, 8000.0),  # Monday just after midnight: week 02-19
    session_row("wrtest_a-4", A, at(2, 19, 17), 1200.0, 3000.0),
    # no sessions in the week of 02-26
    session_row("wrtest_a-5", A, at(3, 10, 9), 3000.0, 9000.0),
    session_row("wrtest_a-6", A, at(3, 13, 18), 3600.0, 12000.0),  # on the run date: counted
    session_row("wrtest_a-7", A, at(3, 14, 7), 3600.0, 15000.0),  # after the run date: not counted
    session_row("wrtest_b-1", B, at(3, 5, 7), 600.0, 1000.0),
    session_row("wrtest_b-2", B, at(3, 11, 0), 700.0, 2000.0),
    session_row("wrtest_c-1", C, at(3, 12, 7), 900.0, 3000.0),  # C has no feature rows: not reported
]

HIGH_ALL = ["acwr_high", "monotony_high", "form_very_low"]
# (athlete, week_start, week_end, sessions, distance_m, duration_s, weekly_load,
#  ctl, atl, tsb, acwr_rolling, acwr_ewma, monotony_7d, flags)
EXPECTED = [
    (A, d(2, 12), d(2, 18), 2, 15000.0, 5400.0, 14 + 15 + 16 + 17 + 18.0, 18.0, 18.5, 0.0, None, None, None, []),
    (A, d(2, 19), d(2, 25), 2, 11000.0, 3600.0, sum(range(19, 26)) * 1.0, 25.0, 25.5, -30.0, 1.5, 1.2, 2.0, []),
    (A, d(2, 26), d(3, 3), 0, 0.0, 0.0, 26 + 27 + 28 + 29 + 1 + 2 + 3.0, 33.0, 66.0, -30.5, 1.51, 1.4, 2.01, HIGH_ALL),
    (A, d(3, 4), d(3, 10), 1, 9000.0, 3000.0, sum(range(4, 11)) * 1.0, 40.0, 41.0, 5.0, 0.8, 0.9, 1.0, []),
    (A, d(3, 11), d(3, 13), 1, 12000.0, 3600.0, 11 + 12 + 13.0, 43.0, 44.0, -1.0, 0.79, 0.7, None, ["acwr_low"]),
    (B, d(3, 4), d(3, 10), 1, 1000.0, 600.0, 35.0, 12.0, 14.0, -30.0, None, None, None, []),
    (B, d(3, 11), d(3, 13), 1, 2000.0, 700.0, 15.0, 13.0, 15.0, -10.0, 1.6, 1.3, 1.0, ["acwr_high"]),
]

# A's predictions: the latest as-of on or before the run date is 03-12 (version 3).
PREDICTIONS = [
    (d(3, 10), 5000.0, 1260.0, "2"),
    (d(3, 12), 5000.0, 1200.0, "3"),
    (d(3, 12), 42195.0, 11130.0, "3"),
    (d(3, 14), 5000.0, 1100.0, "4"),  # after the run date: never shown
]


def delete_ours(spark, tables: list[str]) -> None:
    for table in tables:
        spark.sql(f"DELETE FROM {table} WHERE athlete_id LIKE '{PREFIX}%'")


@pytest.fixture(scope="module")
def report_tables(spark, names):
    sessions = ensure_table(spark, names, SESSIONS)
    features = ensure_table(spark, names, ATHLETE_ROLLING_FEATURES)
    predictions = ensure_table(spark, names, ATHLETE_PREDICTIONS)
    report = ensure_table(spark, names, ATHLETE_WEEKLY_REPORT)
    tables = [sessions, features, predictions, report]
    delete_ours(spark, tables)
    spark.createDataFrame(SESSION_ROWS, SESSIONS.struct()).writeTo(sessions).append()
    spark.createDataFrame(feature_rows(), ATHLETE_ROLLING_FEATURES.struct()).writeTo(features).append()
    prediction_rows = [
        (
            A,
            as_of,
            metres,
            seconds,
            seconds / (metres / 1000),
            seconds - 60,  # P10
            seconds + 90,  # P90
            "uc_athlete_data.ml.time_estimator",
            version,
            1,
            "r",
            NOW,
        )
        for as_of, metres, seconds, version in PREDICTIONS
    ]
    spark.createDataFrame(prediction_rows, ATHLETE_PREDICTIONS.struct()).writeTo(predictions).append()
    yield {"sessions": sessions, "features": features, "report": report}
    # Leave the shared tables as we found them; the report step also reported every other
    # athlete in the shared feature table, so drop the report rows our runs wrote too.
    delete_ours(spark, tables)
    spark.sql(f"DELETE FROM {report} WHERE _run_id LIKE 'wrtest-run-%'")


def as_tuples(rows) -> list[tuple]:
    out = []
    for row in rows:
        values = tuple(row[c] for c in SUMMARY_COLUMNS)
        out.append(values[:-1] + (list(values[-1]),))
    return sorted(out, key=lambda r: (r[0], r[1]))


def assert_rows_equal(got: list[tuple], expected: list[tuple]) -> None:
    assert [r[:2] for r in got] == [r[:2] for r in expected]
    for g, e in zip(got, expected, strict=True):
        for column, have, want in zip(SUMMARY_COLUMNS, g, e, strict=True):
            if want is None:
                assert have is None, (g[:2], column, have)  # NaN in the features comes out as null
            elif isinstance(want, float):
                assert have == pytest.approx(want), (g[:2], column)
            else:
                assert have == want, (g[:2], column)


def test_weekly_summary_by_hand(spark, report_tables):
    summary = weekly_summary(spark.table(report_tables["sessions"]), spark.table(report_tables["features"]), RUN_DATE)

    assert summary.columns == SUMMARY_COLUMNS
    assert dict(summary.dtypes)["flags"] == "array<string>" and dict(summary.dtypes)["sessions"] == "int"
    ours = summary.where(summary.athlete_id.startswith(PREFIX)).collect()
    got = as_tuples(ours)
    assert all(r[1].weekday() == 0 for r in got)  # weeks start on Monday
    assert_rows_equal(got, EXPECTED)  # C (sessions but no features) has no rows


def test_weekly_summary_of_an_earlier_run_date_ends_there(spark, report_tables):
    summary = weekly_summary(
        spark.table(report_tables["sessions"]), spark.table(report_tables["features"]), d(3, 3)
    ).where(f"athlete_id = '{A}'")
    rows = sorted(summary.collect(), key=lambda r: r.week_start)
    # The run date is a Sunday: the last week is full and nothing after it appears.
    assert [(r.week_start, r.week_end) for r in rows][-1] == (d(2, 26), d(3, 3))
    assert rows[-1].flags == HIGH_ALL and rows[-1].weekly_load == pytest.approx(116.0)


def report_snapshot(spark, table: str) -> list[tuple]:
    frame = spark.table(table).where(f"athlete_id LIKE '{PREFIX}%'")
    columns = [c for c in frame.columns if c not in LINEAGE]
    return sorted((tuple(r) for r in frame.select(*columns).collect()), key=repr)


def run_step(settings, spark, names, run_id: str, now: dt.datetime, output_dir, monkeypatch):
    """The report step for RUN_DATE, its lineage clock fixed at `now`, pages under `output_dir`."""
    monkeypatch.setattr(weekly_report, "wall_clock", lambda: now)
    ctx = StepContext(
        settings=settings.model_copy(update={"output_dir": output_dir}),
        spark=spark,
        names=names,
        run_date=RUN_DATE,
        run_id=run_id,
    )
    return WeeklyReportStep().run(ctx)


def test_run_weekly_report_writes_rows_and_pages_and_reruns_change_nothing(
    settings, spark, names, report_tables, tmp_path, monkeypatch
):
    first = run_step(settings, spark, names, "wrtest-run-1", NOW, tmp_path, monkeypatch)

    stored = spark.table(report_tables["report"]).where(f"athlete_id LIKE '{PREFIX}%'").collect()
    assert_rows_equal(as_tuples(stored), EXPECTED)
    assert {(r.computed_at, r._run_id) for r in stored} == {(NOW, "wrtest-run-1")}
    assert first.rows >= len(EXPECTED) and first.athletes >= 2

    reports = tmp_path / "reports"
    assert first.index_path == reports / "index.html"
    index = first.index_path.read_text()
    assert f'href="{A}.html"' in index and f'href="{B}.html"' in index and C not in index

    page_a = (reports / f"{A}.html").read_text()
    assert 'src="data:image/png;base64,iVBORw0KGgo' in page_a  # PNG signature, base64
    for week_start in ("2024-02-12", "2024-02-19", "2024-02-26", "2024-03-04", "2024-03-11"):
        assert f"<td>{week_start}</td>" in page_a
    assert "acwr_high, monotony_high, form_very_low" in page_a and "acwr_low" in page_a
    assert "<td>5K</td><td>0:20:00</td><td>0:19:00 – 0:21:30</td><td>4:00/km</td>" in page_a
    assert "<td>Marathon</td><td>3:05:30</td><td>3:04:30 – 3:07:00</td><td>4:24/km</td>" in page_a
    assert f"{MODEL} v3" in page_a
    assert "0:18:20" not in page_a and "0:21:00" not in page_a  # 03-14 (future) and 03-10 (older)
    page_b = (reports / f"{B}.html").read_text()
    assert "no predictions yet" in page_b and "<td>2024-03-04</td>" in page_b

    # In a real browser: each page renders (not blank: the table, the chart) with no console error.
    for page in (first.index_path, reports / f"{A}.html", reports / f"{B}.html"):
        shown = browser.render(page, tmp_path / f"{page.stem}.png")
        assert shown.console == [], (page.name, shown.console)
        assert shown.distinct_colours > 20, (page.name, shown.distinct_colours)

    before = report_snapshot(spark, report_tables["report"])
    second = run_step(settings, spark, names, "wrtest-run-2", NOW + dt.timedelta(hours=1), tmp_path, monkeypatch)
    assert second.rows == first.rows
    assert report_snapshot(spark, report_tables["report"]) == before
    # Unchanged rows are not rewritten: they keep the first run's lineage.
    lineage = spark.table(report_tables["report"]).where(f"athlete_id LIKE '{PREFIX}%'").select(*LINEAGE)
    assert {tuple(r) for r in lineage.collect()} == {(NOW, "wrtest-run-1")}
