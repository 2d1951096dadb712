"""The assistant's pure parts and its tools on a tiny real Delta lakehouse (delta-rs, no Spark):
intent, plans, the deterministic composer, the grounding check, notes as data, refusals, the
athlete lock, and an MLflow trace of a run."""

from __future__ import annotations

import re
from datetime import date

import pytest

from athlete_platform.assistant import composer, grounding
from athlete_platform.assistant import intent as it
from athlete_platform.assistant.agent import Assistant
from athlete_platform.assistant.intent import classify
from athlete_platform.assistant.lake import LakeReader
from athlete_platform.assistant.race_source import GoldTableRaceSource
from athlete_platform.assistant.tools import Toolbox, ToolError, athlete_features, parse_week, week_sessions
from athlete_platform.assistant.tracing import NoTracer
from athlete_platform.errors import InvalidRequest, NotFound
from tests.assistant_lake import (
    ATHLETE,
    FOREIGN,
    INJECTION,
    KNOWLEDGE_ACWR,
    LAST_DAY,
    NOTE_HEAVY,
    NOTE_INJECTION,
    OTHER,
    FakeIndex,
    build_lake,
    make_settings,
)

LOAD_QUESTION = "Why was my training load high this week?"


@pytest.fixture(scope="module")
def lake_settings(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("assistant"))
    build_lake(settings)
    return settings


def assistant(settings, index: FakeIndex) -> Assistant:
    return Assistant(settings, open_index=lambda: index, tracer=NoTracer())


# --- intent -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        (LOAD_QUESTION, it.TRAINING_LOAD),
        ("How much did I train last week?", it.TRAINING_LOAD),
        ("Was this a heavy week?", it.TRAINING_LOAD),
        ("How is my form?", it.FORM_FATIGUE),
        ("Why am I so tired?", it.FORM_FATIGUE),
        ("Am I at risk of injury?", it.INJURY_RISK),
        ("Is my ACWR too high with this load?", it.INJURY_RISK),
        ("Am I ready for my marathon?", it.RACE_READINESS),
        ("What is my predicted 10K time?", it.RACE_READINESS),
        ("What did I note about my knee?", it.NOTES),
        ("Did I mention sleep in my notes?", it.NOTES),
        ("What's the weather tomorrow?", None),
        ("How many hours did I sleep last night?", None),
        ("Write me a poem about cheese", None),
    ],
)
def test_intent(question, intent):
    assert classify(question, ATHLETE).intent == intent


def test_question_details():
    assert classify("What did I run last week?", ATHLETE).week == "last"
    dated = classify("Why was the week of 2024-02-14 so hard?", ATHLETE)
    assert (dated.week, dated.day) == ("date", date(2024, 2, 14))
    assert classify("Predict my half marathon and 5k", ATHLETE).distances == (5000.0, 21097.5)
    assert classify("How is ath_0002 doing?", ATHLETE).other_athlete == "ath_0002"
    assert classify("How is ATH_0001 doing?", ATHLETE).other_athlete is None
    assert classify("Compare my load with other athletes", ATHLETE).other_athlete


# --- tools on the tiny lake -------------------------------------------------------------------------


def test_athlete_features_week_ratio_flag_and_rank(lake_settings):
    out = athlete_features(LakeReader(lake_settings), ATHLETE, date(2024, 1, 1), LAST_DAY)
    assert out["feature_date"] == "2024-03-10"
    assert out["week"] == {**out["week"], "week_start": "2024-03-04", "week_end": "2024-03-10", "load": 700.0}
    assert out["previous_weeks"]["mean_load"] == 350.0
    assert out["previous_weeks"]["ratio_week_to_mean"] == 2.0
    assert out["acwr"]["value"] == 1.62 and out["acwr"]["flag"] == "high"
    assert out["flags"] == ["acwr_high", "monotony_high"]
    assert out["season"]["is_highest"] and out["season"]["weeks"] == 10
    refs = {c["ref"] for c in out["citations"]}
    assert out["state"]["cite"] in refs and out["week"]["cite"] in refs
    state = next(c for c in out["citations"] if c["ref"] == out["state"]["cite"])
    assert state["table"] == "uc_athlete_data.feature_store.athlete_rolling_features"
    assert state["version"] == 1  # created, then one append
    assert "feature_date=2024-03-10" in state["key"]


def test_athlete_features_mid_week_and_unknown_athlete(lake_settings):
    out = athlete_features(LakeReader(lake_settings), ATHLETE, date(2024, 1, 1), date(2024, 3, 6))
    assert out["week"]["load"] == 3 * 100.0  # Monday to Wednesday of the last week
    with pytest.raises(ToolError, match="No feature rows for athlete ath_9999"):
        athlete_features(LakeReader(lake_settings), "ath_9999", date(2024, 1, 1), LAST_DAY)


def test_week_sessions_top_contributors_and_cut(lake_settings):
    out = week_sessions(LakeReader(lake_settings), ATHLETE, "2024-W10")
    assert out["top_contributors"] == [f"{ATHLETE}-s1", f"{ATHLETE}-s2"]
    assert out["total_session_load"] == 700.0
    assert [round(s["share_of_week_load"], 4) for s in out["sessions"]] == [0.4286, 0.3571, 0.2143]
    assert all(s["session_id"].startswith(ATHLETE) for s in out["sessions"])
    cut = week_sessions(LakeReader(lake_settings), ATHLETE, date(2024, 3, 6), until=date(2024, 3, 8))
    assert [s["session_id"] for s in cut["sessions"]] == [f"{ATHLETE}-s1", f"{ATHLETE}-s0"]
    assert parse_week("2024-03-10") == date(2024, 3, 4)
    with pytest.raises(ToolError, match="ISO week"):
        parse_week("week ten")


def test_race_prediction_from_gold(lake_settings):
    source = GoldTableRaceSource(LakeReader(lake_settings))
    got = source.predict(ATHLETE, 10000.0, LAST_DAY)
    assert got["predicted_finish_time_s"] == 2500.0 and got["citation"]["kind"] == "table"
    with pytest.raises(ToolError, match="no prediction"):
        source.predict(ATHLETE, 10000.0, date(2024, 3, 1))


def test_toolbox_refuses_an_athlete_argument_and_bad_arguments(lake_settings):
    box = Toolbox(ATHLETE, LAST_DAY, LakeReader(lake_settings), None, lambda: FakeIndex([]))
    with pytest.raises(ToolError, match="fixed by the caller"):
        box.call("week_sessions", {"week": "2024-W10", "athlete_id": OTHER})
    with pytest.raises(ToolError, match="no tool"):
        box.call("drop_table", {})
    with pytest.raises(ToolError, match="start must be a date"):
        box.call("athlete_features", {"start": "last monday", "end": "2024-03-10"})
    with pytest.raises(ToolError, match="missing"):
        box.call("athlete_features", {"start": "2024-01-01"})


def test_search_drops_another_athletes_hit(lake_settings):
    box = Toolbox(ATHLETE, LAST_DAY, LakeReader(lake_settings), None, lambda: FakeIndex([NOTE_HEAVY], [FOREIGN]))
    out = box.call("search_notes_and_knowledge", {"query": "legs", "since": "2024-03-01"})
    assert [h["chunk_id"] for h in out["hits"]] == ["c-heavy"] and out["dropped_other_athletes"] == 1


# --- the deterministic composer end to end ---------------------------------------------------------


def test_load_answer_names_sessions_ratio_acwr_and_note_each_cited(lake_settings):
    index = FakeIndex([NOTE_HEAVY, KNOWLEDGE_ACWR])
    answer = assistant(lake_settings, index).ask(ATHLETE, LOAD_QUESTION)
    text = answer.text
    assert answer.grounded and answer.problems == [] and answer.intent == it.TRAINING_LOAD
    assert "700.0 TRIMP [1]" in text
    assert "2.00 times the mean of the previous 4 weeks (350.0 TRIMP) [2]" in text
    assert "highest weekly load" in text
    assert "2024-03-07 run of 70 min and 13.0 km, load 300.0 (43% of the week)" in text  # top session
    assert "2024-03-09 run of 80 min" in text  # second
    assert "ACWR (rolling) on 2024-03-10 was 1.62, above 1.5: flagged high" in text
    assert "“long run, legs heavy”" in text
    labels = "\n".join(c["label"] for c in answer.citations)
    assert "chunk c-heavy" in labels and "athlete_rolling_features" in labels and "silver.sessions" in labels
    assert [c["n"] for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert all(f"[{c['n']}]" in text for c in answer.citations)
    assert index.searches[0]["athlete_id"] == ATHLETE and index.searches[0]["since"] == date(2024, 3, 4)


@pytest.mark.parametrize(
    "question",
    ["How is my form?", "Am I at risk of injury?", "Am I ready for my marathon?", "What did I note about my legs?"],
)
def test_every_question_type_is_grounded(lake_settings, question):
    answer = assistant(lake_settings, FakeIndex([NOTE_HEAVY, KNOWLEDGE_ACWR])).ask(ATHLETE, question)
    assert answer.grounded, (answer.text, answer.problems)
    assert answer.citations


def test_race_answer_uses_the_gold_row(lake_settings):
    answer = assistant(lake_settings, FakeIndex([])).ask(ATHLETE, "What is my predicted 10K time?")
    assert "Predicted 10K time: 0:41:40 (4:10 per km)" in answer.text  # 2500 s, 250 s/km
    assert "athlete_predictions" in answer.citations[0]["label"]


def test_a_missing_index_leaves_the_numbers(lake_settings):
    def no_index():
        raise ToolError("The index is not built: run `athlete-platform embed-documents`.")

    answer = Assistant(lake_settings, open_index=no_index, tracer=NoTracer()).ask(ATHLETE, LOAD_QUESTION)
    assert answer.grounded and "700.0 TRIMP" in answer.text
    assert [c["ok"] for c in answer.tool_calls] == [True, True, False]


def test_an_injection_note_is_quoted_and_changes_no_plan(lake_settings):
    clean = assistant(lake_settings, FakeIndex([NOTE_HEAVY])).ask(ATHLETE, LOAD_QUESTION)
    attacked = assistant(lake_settings, FakeIndex([NOTE_INJECTION, NOTE_HEAVY])).ask(ATHLETE, LOAD_QUESTION)
    assert [(c["tool"], c["arguments"]) for c in attacked.tool_calls] == [
        (c["tool"], c["arguments"]) for c in clean.tool_calls
    ]
    assert attacked.grounded
    assert grounding.quote(INJECTION) in attacked.text  # shown as the athlete's words ...
    outside = attacked.text.replace(grounding.quote(INJECTION), "")
    assert "injured" not in outside and "0.5" not in outside  # ... and nothing it says is acted on
    # Every sentence but the quoted note's is the same as without the note.
    assert attacked.text.splitlines()[:-1] == clean.text.splitlines()[:-1]


def test_refusals_read_nothing(lake_settings):
    index = FakeIndex([NOTE_HEAVY])
    helper = assistant(lake_settings, index)
    weather = helper.ask(ATHLETE, "What's the weather tomorrow?")
    assert weather.text.startswith("I don't have data for that.") and not weather.grounded
    assert weather.tool_calls == [] and weather.citations == []
    other = helper.ask(ATHLETE, "What was ath_0002's training load this week?")
    assert other.text == f"{composer.NO_DATA} {composer.OWN_DATA_ONLY}" and other.tool_calls == []
    assert index.searches == []


def test_athlete_and_question_are_checked(lake_settings):
    helper = assistant(lake_settings, FakeIndex([]))
    with pytest.raises(NotFound, match="ath_9999"):
        helper.ask("ath_9999", LOAD_QUESTION)
    with pytest.raises(InvalidRequest, match="athlete_id"):
        helper.ask(" ath_0001", LOAD_QUESTION)
    with pytest.raises(InvalidRequest, match="question"):
        helper.ask(ATHLETE, "   ")


def test_as_of_moves_the_week(lake_settings):
    answer = assistant(lake_settings, FakeIndex([])).ask(ATHLETE, LOAD_QUESTION, as_of=date(2024, 3, 3))
    assert "from 2024-02-26 to 2024-03-03 was 350.0 TRIMP" in answer.text and answer.grounded


# --- the grounding check ----------------------------------------------------------------------------


OUTPUTS = [
    {
        "load": 523.4567,
        "share": 0.312,
        "time_s": 5025.2,
        "pace": 272.9,
        "session_id": "ath_0001-s12",
        "day": "2024-03-07",
        "note": "legs heavy after 10x400m",
        "citations": [{"ref": "r1"}],
    }
]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("Load 523.5 [1].", True),
        ("Load 523.46 [1].", True),
        ("Load 523 [1].", True),
        ("Load 524.5 [1].", False),  # no tool number
        ("Load 523.5.", False),  # no marker
        ("Load 523.5. Source [1].", False),  # the marker is in another sentence
        ("That is 31% of it [1].", True),
        ("Finish 1:23:45 at 4:33 per km [1].", True),
        ("Finish 1:25:00 [1].", False),
        ("On 2024-03-07 session ath_0001-s12 [1].", True),
        ("You wrote “legs heavy after 10x400m” [1].", True),
        ("You wrote “legs heavy after 12x400m” [1].", False),
        ("Your ACWR is 0.5 [1].", False),
    ],
)
def test_grounding_check(text, ok):
    result = grounding.check(text, OUTPUTS)
    assert result.ok is ok, result.problems()


def test_grounding_check_names_what_is_wrong():
    problems = grounding.check("Load 999.9 and 523.5 [1].", OUTPUTS).problems()
    assert problems == ["number '999.9' equals no tool output"]


def test_every_number_in_a_composed_answer_is_a_tool_number(lake_settings):
    """The composer's own templates carry no number of their own (a template constant would fail here)."""
    answer = assistant(lake_settings, FakeIndex([NOTE_HEAVY, KNOWLEDGE_ACWR])).ask(ATHLETE, LOAD_QUESTION)
    check = grounding.check(answer.text, [])  # against no tool output: every claim must fail
    claims = [c.text for c in check.claims]
    assert claims and not re.search(r"\d", "".join(c for c in answer.text if c not in "".join(claims)).replace("[", ""))


# --- tracing ------------------------------------------------------------------------------------------


def test_a_run_is_traced_in_mlflow(lake_settings):
    """Traced into the lake's own store (SQLite and artifacts under its data_dir): an explicit
    `tracking_uri` would leave the artifacts at MLflow's default, ./mlruns of the working folder."""
    import mlflow

    from athlete_platform.assistant.tracing import MlflowTracer

    settings = lake_settings
    helper = Assistant(settings, open_index=lambda: FakeIndex([NOTE_HEAVY]), tracer=MlflowTracer(settings))
    answer = helper.ask(ATHLETE, LOAD_QUESTION)
    trace = mlflow.get_trace(answer.trace_id, flush=True)
    spans = {span.name: span for span in trace.data.spans}
    assert set(spans) == {"assistant.ask", "athlete_features", "week_sessions", "search_notes_and_knowledge"}
    root = spans["assistant.ask"]
    assert root.inputs["athlete_id"] == ATHLETE and root.outputs["text"] == answer.text
    assert spans["week_sessions"].inputs == {"week": "2024-03-04"}
    assert spans["week_sessions"].outputs["top_contributors"] == [f"{ATHLETE}-s1", f"{ATHLETE}-s2"]
    assert all(span.end_time_ns > span.start_time_ns for span in spans.values())
    assert trace.info.experiment_id == mlflow.get_experiment_by_name("assistant").experiment_id


# --- the console command ------------------------------------------------------------------------------


def test_cli_ask_prints_the_answer_and_its_sources(lake_settings, monkeypatch, capsys):
    from athlete_platform.cli import main
    from tests.conftest import HOME

    monkeypatch.setenv("ATHLETE_CONF_FILE", str(HOME / "conf" / "test.yaml"))
    monkeypatch.setenv("ATHLETE_DATA_DIR", str(lake_settings.data_dir))
    monkeypatch.setenv("ATHLETE_ASSISTANT__RACE_PREDICTION_SOURCE", "gold_table")
    monkeypatch.setenv("ATHLETE_ASSISTANT__TRACE", "false")
    assert main(["ask", "--athlete", ATHLETE, "--as-of", "2024-03-03", LOAD_QUESTION]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Your training load from 2024-02-26 to 2024-03-03 was 350.0 TRIMP [1].")
    assert "\nSources:\n[1] uc_athlete_data.feature_store.athlete_rolling_features [athlete_id=ath_0001" in out
    assert main(["ask", "--athlete", ATHLETE, "--as-of", "last week", LOAD_QUESTION]) == 2
    assert "--as-of must be a date YYYY-MM-DD" in capsys.readouterr().err
    assert main(["ask", "--athlete", "ath_9999", LOAD_QUESTION]) == 2
    assert "No feature rows for athlete_id 'ath_9999'" in capsys.readouterr().err


def test_a_quote_with_its_own_sentence_ends_is_one_quote():
    """A note quoted with "!" inside: its numbers are the note's text, checked as a quote."""
    note = "5K race: new PB! felt strong all the way"
    outputs = [{"hits": [{"text": note, "date": "2024-12-07"}]}]
    answer = f"- 2024-12-07: {grounding.quote(note)} [1]"
    check = grounding.check(answer, outputs)
    assert check.ok and not check.claims, check.problems()
    forged = grounding.check(f"- 2024-12-07: {grounding.quote('9K race: new PB! felt strong')} [1]", outputs)
    assert forged.bad_quotes and not forged.ok
