"""Unit tests for the pure parts of the weekly report (athlete_platform.reporting; no Spark).

Flag rules are checked exactly at and just past each threshold (strict inequalities); the
Spark flag expression is built from the same FLAG_RULES and is checked in the integration test.
"""

from __future__ import annotations

import base64
import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from athlete_platform.lakehouse.tables import ATHLETE_WEEKLY_REPORT
from athlete_platform.reporting import html as report_html
from athlete_platform.reporting import weekly_summary as ws

NAN = float("nan")
RUN_DATE = dt.date(2024, 3, 13)  # a Wednesday
NOW = dt.datetime(2024, 3, 14, 5, 0)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00:00"), (59.4, "0:00:59"), (5025, "1:23:45"), (3599.6, "1:00:00"), (11130, "3:05:30"), (None, "–")],
)
def test_format_duration_is_h_mm_ss(seconds, text):
    assert report_html.format_duration(seconds) == text


def test_format_duration_nan_is_a_dash():
    assert report_html.format_duration(NAN) == "–"


@pytest.mark.parametrize(
    ("pace", "text"), [(240.0, "4:00/km"), (299.6, "5:00/km"), (263.78, "4:24/km"), (59.0, "0:59/km"), (NAN, "–")]
)
def test_format_pace_is_m_ss_per_km(pace, text):
    assert report_html.format_pace(pace) == text


@pytest.mark.parametrize(
    ("metres", "label"),
    [(5000.0, "5K"), (10000.0, "10K"), (21097.5, "Half"), (21097.0, "Half"), (42195.0, "Marathon"), (15000.0, "15 km")],
)
def test_distance_label(metres, label):
    assert report_html.distance_label(metres) == label


@pytest.mark.parametrize(
    ("day", "monday"),
    [
        (dt.date(2024, 3, 11), dt.date(2024, 3, 11)),  # Monday itself
        (dt.date(2024, 3, 13), dt.date(2024, 3, 11)),  # Wednesday
        (dt.date(2024, 3, 17), dt.date(2024, 3, 11)),  # Sunday belongs to the week before it
        (dt.date(2024, 1, 1), dt.date(2024, 1, 1)),
        (dt.date(2023, 12, 31), dt.date(2023, 12, 25)),  # across a year boundary
    ],
)
def test_week_start_is_the_iso_monday(day, monday):
    assert ws.week_start_of(day) == monday


def test_thresholds_are_the_published_values():
    assert (ws.ACWR_HIGH, ws.ACWR_LOW, ws.MONOTONY_HIGH, ws.FORM_VERY_LOW) == (1.5, 0.8, 2.0, -30.0)


CALM = {"acwr_rolling": 1.0, "monotony_7d": 1.0, "tsb": 0.0}


@pytest.mark.parametrize(
    ("change", "flags"),
    [
        ({}, []),
        ({"acwr_rolling": 1.5}, []),  # at the threshold: not above
        ({"acwr_rolling": 1.5001}, ["acwr_high"]),
        ({"acwr_rolling": 0.8}, []),
        ({"acwr_rolling": 0.7999}, ["acwr_low"]),
        ({"monotony_7d": 2.0}, []),
        ({"monotony_7d": 2.0001}, ["monotony_high"]),
        ({"tsb": -30.0}, []),
        ({"tsb": -30.0001}, ["form_very_low"]),
        ({"acwr_rolling": None, "monotony_7d": NAN, "tsb": None}, []),  # no data raises nothing
        ({"acwr_rolling": 2.0, "monotony_7d": 3.0, "tsb": -40.0}, ["acwr_high", "monotony_high", "form_very_low"]),
        ({"acwr_rolling": 0.5, "tsb": -31.0}, ["acwr_low", "form_very_low"]),
    ],
)
def test_flags_at_thresholds(change, flags):
    assert ws.week_flags({**CALM, **change}) == flags


def test_summary_columns_are_the_report_table_without_lineage():
    expected = [c for c in ATHLETE_WEEKLY_REPORT.column_names if c not in ("computed_at", "_run_id")]
    assert expected == ws.SUMMARY_COLUMNS


def test_page_file_name_keeps_safe_ids_and_defuses_others():
    assert report_html.page_file_name("ath_0001") == "ath_0001.html"
    odd = report_html.page_file_name("../etc/passwd")
    assert "/" not in odd and not odd.startswith(".") and odd.endswith(".html")
    assert odd == report_html.page_file_name("../etc/passwd")  # stable across runs
    assert report_html.page_file_name("a/b") != report_html.page_file_name("a_b")
    assert report_html.page_file_name("index") != "index.html"  # never overwrites the index page
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", report_html.page_file_name("<script>"))


def week(start: dt.date, flags: list[str], **values) -> dict:
    row = {
        "athlete_id": "a1",
        "week_start": start,
        "week_end": min(start + dt.timedelta(days=6), RUN_DATE),
        "sessions": 3,
        "distance_m": 25000.0,
        "duration_s": 9000.0,
        "weekly_load": 420.0,
        "ctl": 55.0,
        "atl": 60.0,
        "tsb": -5.0,
        "acwr_rolling": 1.1,
        "acwr_ewma": 1.05,
        "monotony_7d": 1.3,
        "flags": np.array(flags, dtype=object),
    }
    return {**row, **values}


def chart_days(athlete_id: str = "a1", days: int = 200) -> pd.DataFrame:
    dates = [RUN_DATE - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
    load = [(i % 3) * 40.0 for i in range(days)]
    return pd.DataFrame(
        {
            "athlete_id": athlete_id,
            "feature_date": dates,
            "daily_load": load,
            "ctl": np.linspace(10, 50, days),
            "atl": np.linspace(20, 60, days),
            "tsb": np.linspace(-10, -10, days),
        }
    )


def predictions(athlete_id: str = "a1") -> pd.DataFrame:
    rows = [(5000.0, 1200.0), (42195.0, 11130.0), (10000.0, 2500.0)]
    return pd.DataFrame(
        {
            "athlete_id": athlete_id,
            "as_of_date": dt.date(2024, 3, 12),
            "race_distance_m": [d for d, _ in rows],
            "predicted_finish_time_s": [t for _, t in rows],
            "predicted_pace_s_per_km": [t / (d / 1000) for d, t in rows],
            "predicted_finish_time_p10_s": [1150.0, NAN, 2400.0],  # a version without interval: NaN
            "predicted_finish_time_p90_s": [1260.0, NAN, 2620.0],
            "model_name": "uc_athlete_data.ml.time_estimator",
            "model_version": "3",
        }
    )


def embedded_png(page: str) -> bytes:
    found = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert found, "no embedded PNG data URI"
    return base64.b64decode(found.group(1))


def test_athlete_page_is_self_contained_with_weeks_newest_first_and_predictions():
    weeks = pd.DataFrame(
        [week(dt.date(2024, 3, 4), []), week(dt.date(2024, 3, 11), ["acwr_high", "form_very_low"], tsb=-31.25)]
    )
    page = report_html.render_athlete_page("a1", weeks, chart_days(), predictions(), RUN_DATE, NOW)

    assert embedded_png(page).startswith(PNG_MAGIC)
    assert "<link" not in page and "<script" not in page  # nothing fetched from elsewhere
    assert page.index("2024-03-11") < page.index("2024-03-04")  # newest week first
    assert "<td>2024-03-13</td>" in page  # the current week ends on the run date
    assert "acwr_high, form_very_low" in page and "-31.2" in page
    assert "<td>25.0</td>" in page and "<td>2:30:00</td>" in page  # km and h:mm:ss
    # Predictions in distance order, formatted, with model name + version.
    assert page.index("<td>5K</td>") < page.index("<td>10K</td>") < page.index("<td>Marathon</td>")
    assert "<td>0:20:00</td><td>0:19:10 – 0:21:00</td><td>4:00/km</td>" in page  # P10 - P90
    assert "<td>3:05:30</td><td>–</td><td>4:24/km</td>" in page  # no interval: a dash
    assert "uc_athlete_data.ml.time_estimator v3" in page
    assert "no predictions yet" not in page


@pytest.mark.parametrize("missing", [None, "empty"])
def test_athlete_page_without_predictions_says_so(missing):
    none = None if missing is None else predictions().iloc[0:0]
    weeks = pd.DataFrame([week(dt.date(2024, 3, 11), [])])
    page = report_html.render_athlete_page("a1", weeks, chart_days(), none, RUN_DATE, NOW)
    assert "no predictions yet" in page


def test_text_is_html_escaped():
    evil = '<script>alert("x")</script>'
    weeks = pd.DataFrame([week(dt.date(2024, 3, 11), [], athlete_id=evil)])
    page = report_html.render_athlete_page(evil, weeks, chart_days(evil), None, RUN_DATE, NOW)
    assert evil not in page and "&lt;script&gt;" in page


def test_missing_values_render_as_dashes():
    weeks = pd.DataFrame([week(dt.date(2024, 3, 11), [], acwr_rolling=NAN, monotony_7d=None, weekly_load=NAN)])
    table = report_html.weeks_table(weeks)
    assert table.count("<td>–</td>") == 3


def test_chart_without_data_is_still_a_png():
    empty = chart_days().iloc[0:0]
    assert report_html.pmc_chart_png(empty, "a1", RUN_DATE).startswith(PNG_MAGIC)


def test_render_reports_writes_a_page_per_athlete_and_an_index(tmp_path):
    weeks = pd.DataFrame(
        [week(dt.date(2024, 3, 11), ["acwr_low"]), week(dt.date(2024, 3, 11), [], athlete_id="b/2", sessions=0)]
    )
    chart = pd.concat([chart_days("a1"), chart_days("b/2", days=10)])
    index = report_html.render_reports(weeks, chart, predictions("a1"), RUN_DATE, NOW, tmp_path / "reports")

    assert index == tmp_path / "reports" / "index.html"
    pages = sorted(p.name for p in (tmp_path / "reports").iterdir())
    other = report_html.page_file_name("b/2")
    assert pages == sorted(["a1.html", other, "index.html"])
    text = index.read_text()
    assert '<a href="a1.html">a1</a>' in text and f'href="{other}"' in text and "acwr_low" in text
    assert "no predictions yet" in (tmp_path / "reports" / other).read_text()
    assert "no predictions yet" not in (tmp_path / "reports" / "a1.html").read_text()
    assert "Model cards" not in text  # none given, none listed


def test_the_index_links_the_model_cards_it_is_given(tmp_path):
    weeks = pd.DataFrame([week(dt.date(2024, 3, 11), [])])
    cards = {"uc_athlete_data.ml.time_estimator v3": "../models/uc_athlete_data.ml.time_estimator-v3.html"}
    index = report_html.render_reports(weeks, chart_days(), predictions(), RUN_DATE, NOW, tmp_path / "r", cards)
    assert (
        '<a href="../models/uc_athlete_data.ml.time_estimator-v3.html">uc_athlete_data.ml.time_estimator v3</a>'
        in index.read_text()
    )


def test_model_card_links_only_name_cards_that_exist(tmp_path):
    from athlete_platform.reporting.weekly_report import model_card_links
    from athlete_platform.training.model_card import card_path

    rows = predictions().assign(model_version=["3", "3", "4"])
    card = tmp_path / card_path("uc_athlete_data.ml.time_estimator", "3")
    card.parent.mkdir(parents=True)
    card.write_text("<html></html>")
    links = model_card_links(tmp_path, rows)
    assert links == {"uc_athlete_data.ml.time_estimator v3": "../models/uc_athlete_data.ml.time_estimator-v3.html"}
    assert (tmp_path / "reports" / links["uc_athlete_data.ml.time_estimator v3"]).resolve() == card.resolve()
    assert model_card_links(tmp_path, None) == {}


def test_index_lists_athletes_most_at_risk_first_and_says_the_week_is_partial():
    monday = dt.date(2024, 3, 11)
    weeks = pd.DataFrame(
        [
            week(monday, [], athlete_id="a_calm", acwr_rolling=1.0),
            week(monday, ["acwr_high"], athlete_id="b_one_flag", acwr_rolling=1.6),
            week(monday, ["acwr_high", "monotony_high"], athlete_id="c_two_flags", acwr_rolling=1.55),
            week(monday, [], athlete_id="d_no_acwr", acwr_rolling=NAN),
            week(monday, [], athlete_id="e_higher_acwr", acwr_rolling=1.2),
        ]
    )
    pages = {a: f"{a}.html" for a in weeks["athlete_id"]} | {"f_no_week": "f_no_week.html"}
    page = report_html.render_index(weeks, pages, RUN_DATE, NOW)
    order = re.findall(r'<a href="([a-z_]+)\.html">', page)
    assert order == ["c_two_flags", "b_one_flag", "e_higher_acwr", "a_calm", "d_no_acwr", "f_no_week"]
    assert "(partial week: 3 of 7 days)" in page  # RUN_DATE is a Wednesday
    sunday = report_html.render_index(weeks, pages, dt.date(2024, 3, 17), NOW)
    assert "partial week" not in sunday
    assert [report_html.days_into_week(monday + dt.timedelta(days=n)) for n in range(8)] == [1, 2, 3, 4, 5, 6, 7, 1]
