"""The assistant on a real lakehouse, as cases for tests/integration/test_serving.py's module lake
(no lakehouse of their own: `make test` is at its time limit). Each function takes that module's
fixtures; test_serving.py calls them from thin test functions:

    from tests.integration import assistant_cases

    def test_assistant_tools_equal_spark(spark, names, lake):
        assistant_cases.tools_equal_spark(spark, names, lake)

    def test_assistant_answers_the_highest_week(spark, names, lake):
        assistant_cases.answers_the_highest_week(spark, names, lake)

    def test_assistant_ask_route(client, lake, gold):
        assistant_cases.ask_route(client, lake, gold)

    def test_assistant_ask_cli_is_traced(lake):
        assistant_cases.ask_cli_is_traced(lake)

Expected values are computed here with Spark SQL from the tables, independently of the
assistant's own reads (delta-rs) and arithmetic.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import date, timedelta

import httpx

from athlete_platform.assistant.agent import Assistant
from athlete_platform.assistant.lake import LakeReader
from athlete_platform.assistant.tools import athlete_features, week_sessions
from athlete_platform.ingestion.sample_data.notes import note_topic
from athlete_platform.lakehouse import tables
from tests.conftest import HOME

QUESTION = "Why was my training load high this week?"


def _gold_settings(settings):
    """The module's settings with race predictions read from the gold table (no API needed)."""
    return settings.model_copy(
        update={"assistant": settings.assistant.model_copy(update={"race_prediction_source": "gold_table"})}
    )


def _weekly_loads(spark, names):
    return spark.sql(
        f"""
        SELECT athlete_id, date_sub(feature_date, weekday(feature_date)) AS week_start,
               sum(daily_load) AS load, max(feature_date) AS last_day
        FROM {names(tables.ATHLETE_ROLLING_FEATURES)} GROUP BY 1, 2
        """
    )


def _expected(spark, names, athlete: str, week_start: date, last_day: date) -> dict:
    features = names(tables.ATHLETE_ROLLING_FEATURES)
    load = spark.sql(
        f"SELECT sum(daily_load) AS s FROM {features} WHERE athlete_id = '{athlete}' "
        f"AND feature_date BETWEEN DATE'{week_start}' AND DATE'{last_day}'"
    ).first()["s"]
    previous = spark.sql(
        f"SELECT coalesce(sum(daily_load), 0) AS s, min(feature_date) AS first FROM {features} "
        f"WHERE athlete_id = '{athlete}' AND feature_date BETWEEN DATE'{week_start - timedelta(days=28)}' "
        f"AND DATE'{week_start - timedelta(days=1)}'"
    ).first()
    state = spark.sql(
        f"SELECT acwr_rolling, tsb FROM {features} WHERE athlete_id = '{athlete}' AND feature_date = DATE'{last_day}'"
    ).first()
    top = spark.sql(
        f"SELECT session_id, session_date FROM {names(tables.SESSIONS)} WHERE athlete_id = '{athlete}' "
        f"AND session_date BETWEEN DATE'{week_start}' AND DATE'{last_day}' "
        "ORDER BY session_load DESC, session_id LIMIT 2"
    ).collect()
    mean = previous["s"] / 4 if previous["first"] is not None else None
    return {
        "load": load,
        "mean": mean,
        "ratio": load / mean if mean else None,
        "acwr": state["acwr_rolling"],
        "top": [(r["session_id"], r["session_date"].isoformat()) for r in top],
    }


def tools_equal_spark(spark, names, lake) -> None:
    """The tools' numbers equal Spark SQL's over the same tables, for four athletes' last week
    (four: each costs a handful of Spark queries)."""
    settings, run_date, _trained = lake
    reader = LakeReader(settings)
    for row in (
        _weekly_loads(spark, names)
        .where(f"week_start = DATE'{run_date - timedelta(days=run_date.weekday())}'")
        .orderBy("athlete_id")
        .limit(4)
        .collect()
    ):
        athlete, week_start, last_day = row["athlete_id"], row["week_start"], row["last_day"]
        want = _expected(spark, names, athlete, week_start, last_day)
        got = athlete_features(reader, athlete, last_day - timedelta(days=364), last_day)
        assert math.isclose(got["week"]["load"], want["load"], rel_tol=1e-9), athlete
        if want["ratio"] is not None:
            assert math.isclose(got["previous_weeks"]["ratio_week_to_mean"], want["ratio"], rel_tol=1e-9), athlete
        assert got["acwr"]["value"] == want["acwr"]
        sessions = week_sessions(reader, athlete, week_start, until=last_day)
        assert [(s["session_id"], s["session_date"]) for s in sessions["sessions"][:2]] == want["top"]
        assert {s["session_id"] for s in sessions["sessions"]} <= {
            r["session_id"]
            for r in spark.table(names(tables.SESSIONS))
            .where(f"athlete_id = '{athlete}'")
            .select("session_id")
            .collect()
        }


def answers_the_highest_week(spark, names, lake) -> None:
    """Acceptance: for the athlete-week with the season's highest load, `ask` names the sessions that
    made it, the ratio to the previous weeks, the ACWR value and flag, each with a citation."""
    settings, run_date, _trained = lake
    weeks = _weekly_loads(spark, names).where("last_day = date_add(week_start, 6)")
    best = weeks.orderBy(weeks["load"].desc()).first()
    athlete, week_start, last_day = best["athlete_id"], best["week_start"], best["last_day"]
    want = _expected(spark, names, athlete, week_start, last_day)
    answer = Assistant(_gold_settings(settings)).ask(athlete, QUESTION, as_of=last_day)
    assert answer.grounded, (answer.text, answer.problems)
    text = answer.text
    assert f"was {want['load']:,.1f} TRIMP [" in text
    assert "your highest weekly load" in text
    if want["ratio"] is not None:
        assert f"{want['ratio']:,.2f} times the mean of the previous 4 weeks ({want['mean']:,.1f} TRIMP) [" in text
    for _session_id, day in want["top"]:
        assert day in text
    if want["acwr"] is not None:
        assert f"was {want['acwr']:.2f}, " in text
        flag = "flagged high" if want["acwr"] > 1.5 else "flagged low" if want["acwr"] < 0.8 else "not flagged"
        assert flag in text
    cited_sessions = {c["key"] for c in answer.citations if c.get("table", "").endswith("silver.sessions")}
    assert {f"session_id={sid}" for sid, _day in want["top"]} <= cited_sessions
    assert [c["tool"] for c in answer.tool_calls] == ["athlete_features", "week_sessions", "search_notes_and_knowledge"]
    # A note of theirs from that week (the generator writes a heavy-legs note in each athlete's
    # two highest-load weeks), quoted as data and cited by its chunk id in the index.
    chunks = {
        r["chunk_id"]: r
        for r in spark.table(names(tables.DOCUMENT_CHUNKS))
        .where(f"athlete_id = '{athlete}' AND doc_date BETWEEN DATE'{week_start}' AND DATE'{last_day}'")
        .collect()
    }
    cited_notes = [c for c in answer.citations if c.get("chunk_id") in chunks]
    assert cited_notes, (text, answer.citations)
    assert any(note_topic(chunks[c["chunk_id"]]["text"]) == "heavy_legs" for c in cited_notes), text


def ask_route(client: httpx.Client, lake, gold) -> None:
    """POST /v1/athletes/{id}/ask: a grounded answer; a race question gets the served prediction;
    422 naming the field, 404 for an unknown athlete."""
    _settings, run_date, _trained = lake
    response = client.post("/v1/athletes/ath_0001/ask", json={"question": QUESTION})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["athlete_id"] == "ath_0001" and body["grounded"] and body["citations"]
    assert body["request_id"] and body["as_of"] == run_date.isoformat()
    race = client.post("/v1/athletes/ath_0001/ask", json={"question": "What is my predicted 10K time?"}).json()
    assert race["grounded"], race
    cited = race["citations"][0]
    assert cited["kind"] == "api" and cited["route"] == "/v1/athletes/ath_0001/race-predictions"
    seconds = gold[("ath_0001", 10000.0)].predicted_finish_time_s
    total = int(round(seconds))
    assert f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}" in race["text"]  # = the batch row
    dated = client.post("/v1/athletes/ath_0001/ask", json={"question": QUESTION, "as_of": "2024-05-05"}).json()
    assert dated["as_of"] == "2024-05-05" and "to 2024-05-05 was" in dated["text"]
    for bad, field in (
        ({}, "question"),
        ({"question": ""}, "question"),
        ({"question": QUESTION, "as_of": 20240505}, "as_of"),
        ({"question": QUESTION, "athlete_id": "ath_0002"}, "athlete_id"),
    ):
        refused = client.post("/v1/athletes/ath_0001/ask", json=bad)
        assert refused.status_code == 422 and refused.json()["field"] == field, (bad, refused.text)
    unknown = client.post("/v1/athletes/ath_9999/ask", json={"question": QUESTION})
    assert unknown.status_code == 404 and "ath_9999" in unknown.json()["detail"]


def ask_cli_is_traced(lake) -> None:
    """`athlete-platform ask` in its own process: the answer (as JSON) and its run as a trace in
    MLflow. (Printing and `--as-of` errors are tested in-process: tests/unit/test_assistant.py.)"""
    import mlflow

    from athlete_platform.lakehouse.models import configure_mlflow

    settings, run_date, _trained = lake
    env = {**os.environ, "PYTHONPATH": str(HOME / "src"), "ATHLETE_ASSISTANT__RACE_PREDICTION_SOURCE": "gold_table"}
    command = [sys.executable, "-m", "athlete_platform.cli", "ask", "--athlete", "ath_0002", QUESTION]
    as_json = subprocess.run(
        [*command, "--as-of", str(run_date - timedelta(days=7)), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    assert answer["as_of"] == str(run_date - timedelta(days=7)) and answer["trace_id"] and answer["grounded"]
    assert "TRIMP [1]" in answer["text"] and answer["citations"]
    configure_mlflow(settings, settings.assistant.experiment)
    trace = mlflow.get_trace(answer["trace_id"])
    names = [span.name for span in trace.data.spans]
    assert names[0] == "assistant.ask" and {"athlete_features", "week_sessions"} <= set(names)


def held_out_evaluation(lake) -> None:
    """The evaluation (`bench/assistant_eval.py`'s code) on this module's lake, held out from the
    `make run` lakehouse the README's figures come from: 4 athletes x 6 questions, expected facts
    from pandas over the tables; the goals hold (faithfulness 100 %, facts >= 90 %, every refusal
    right, every answerable question answered, the labelled heavy-legs/niggle notes retrieved)."""
    from athlete_platform.assistant.evaluation import evaluate

    settings, _run_date, _trained = lake
    report = evaluate(_gold_settings(settings), n_athletes=4)
    lines = "\n".join(report.lines())
    assert len(report.rows) == 24, lines
    assert report.claims and report.faithfulness == 1.0, lines
    assert report.facts_total >= 40 and report.facts_covered >= 0.9, lines
    assert report.correct_refusals == len(report.refusals) == 4, lines
    assert report.answered == len(report.answerable) == 20, lines
    assert report.recalls and report.recall_at_5 >= 0.6, lines
