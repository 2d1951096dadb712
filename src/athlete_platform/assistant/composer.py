"""The deterministic grounded composer: a plan of tool calls per question type, and an answer
written from the tool results only.

:func:`plan` depends on the question and the as-of day alone (never on what a tool returns, so a
note that says "ignore your instructions" cannot change what is read). :func:`compose` writes
the answer: every number is formatted from a tool output and followed by its citation marker;
note text appears only inside quotes; a part whose tool failed says so; a question no plan fits
(or one about someone else) gets :data:`NO_DATA`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from athlete_platform.assistant import intent as it
from athlete_platform.assistant.citations import CitationIndex, collect
from athlete_platform.assistant.grounding import quote
from athlete_platform.assistant.intent import Question
from athlete_platform.domain.distances import RACE_DISTANCES_M
from athlete_platform.reporting.weekly_summary import week_start_of

NO_DATA = "I don't have data for that."
OWN_DATA_ONLY = "I can only answer about your own training data."
WHAT_I_CAN = (
    "I can answer about your training load and why it was high, your form and fatigue, your injury risk "
    "(ACWR, monotony), your race readiness and predicted times, and what you wrote in your notes."
)
#: Days of feature history the load question ranks the week in (its "season").
SEASON_DAYS = 364
#: Days of feature rows read for a state-only question (enough for the week and the 4 before it).
STATE_DAYS = 35
#: Note searches per question type (the question's own words are added).
NOTE_QUERIES = {
    it.TRAINING_LOAD: "heavy legs tired after a big week",
    it.FORM_FATIGUE: "tired heavy legs fatigue poor sleep",
    it.INJURY_RISK: "pain niggle sore calf knee achilles",
    it.RACE_READINESS: "race report how the race went",
}
#: Most notes quoted in a "what did I note" answer.
MAX_NOTES_QUOTED = 3


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


def answer_day(question: Question, as_of: date) -> date:
    """The last day the answer covers: the as-of day, the Sunday before it ("last week"), or the
    named day (not after the as-of day)."""
    if question.week == "last":
        return week_start_of(as_of) - timedelta(days=1)
    if question.week == "date" and question.day is not None:
        return min(question.day + timedelta(days=6 - question.day.weekday()), as_of)
    return as_of


def plan(question: Question, as_of: date, notes_days: int = 28) -> list[ToolCall]:
    """The tool calls for a question (empty: it cannot be grounded)."""
    if question.intent is None or question.other_athlete:
        return []
    end = answer_day(question, as_of)
    monday = week_start_of(end)
    notes_since = (end - timedelta(days=notes_days - 1)).isoformat()
    words = NOTE_QUERIES.get(question.intent, "")
    if question.intent == it.TRAINING_LOAD:
        return [
            _features_call(end, SEASON_DAYS),
            ToolCall("week_sessions", {"week": monday.isoformat()}),
            ToolCall(
                "search_notes_and_knowledge",
                {"query": f"{words} {question.text}", "since": monday.isoformat(), "until": end.isoformat()},
            ),
        ]
    if question.intent in (it.FORM_FATIGUE, it.INJURY_RISK):
        return [
            _features_call(end, STATE_DAYS),
            ToolCall(
                "search_notes_and_knowledge",
                {"query": f"{words} {question.text}", "since": notes_since, "until": end.isoformat()},
            ),
        ]
    if question.intent == it.RACE_READINESS:
        distances = question.distances or RACE_DISTANCES_M
        return [
            *[ToolCall("race_prediction", {"distance": d}) for d in distances],
            _features_call(end, STATE_DAYS),
        ]
    return [
        ToolCall(
            "search_notes_and_knowledge",
            {"query": question.text, "since": notes_since, "until": end.isoformat(), "k": 5},
        )
    ]


def _features_call(end: date, days: int) -> ToolCall:
    return ToolCall("athlete_features", {"start": (end - timedelta(days=days)).isoformat(), "end": end.isoformat()})


@dataclass(frozen=True)
class Composed:
    text: str
    citations: list[dict[str, Any]]
    grounded: bool  # False: the answer is (or starts with) "I don't have data for that"


def compose(question: Question, calls: list[ToolCall], results: list[dict[str, Any] | Exception]) -> Composed:
    """The answer from the planned calls' results (a result is the tool's dict or its error)."""
    if question.other_athlete:
        return Composed(f"{NO_DATA} {OWN_DATA_ONLY}", [], False)
    if not calls:
        return Composed(f"{NO_DATA} {WHAT_I_CAN}", [], False)
    outputs = {}
    errors = {}
    for call, result in zip(calls, results, strict=True):
        key = call.name if call.name != "race_prediction" else f"race_prediction:{call.arguments['distance']}"
        if isinstance(result, Exception):
            errors[key] = result
        else:
            outputs[key] = result
    cites = CitationIndex(collect(list(outputs.values())))
    writer = {
        it.TRAINING_LOAD: _load_answer,
        it.FORM_FATIGUE: _form_answer,
        it.INJURY_RISK: _risk_answer,
        it.RACE_READINESS: _race_answer,
        it.NOTES: _notes_answer,
    }[question.intent]
    lines = writer(outputs, errors, cites)
    if not lines:
        reasons = "; ".join(str(e) for e in errors.values())
        return Composed(f"{NO_DATA}" + (f" ({reasons})" if reasons else ""), [], False)
    return Composed("\n".join(lines), cites.used(), True)


# --- the sentences --------------------------------------------------------------------------------


def _f(value: float | None, places: int) -> str:
    """A tool number as the answer writes it (a missing one is said to be unknown, never guessed)."""
    return "unknown" if value is None else f"{value:,.{places}f}"


def _missing(errors: dict[str, Exception], key: str, what: str) -> list[str]:
    error = errors.get(key)
    return [f"{NO_DATA[:-1]} on {what} ({error})."] if error is not None else []


def _load_answer(outputs, errors, cites) -> list[str]:
    features = outputs.get("athlete_features")
    if features is None:
        return []
    lines = []
    week = features["week"]
    prev = features["previous_weeks"]
    season = features["season"]
    lines.append(
        f"Your training load from {week['week_start']} to {week['week_end']} was {_f(week['load'], 1)} TRIMP "
        f"{cites.marker(week['cite'])}."
    )
    if prev["ratio_week_to_mean"] is not None:
        lines.append(
            f"That is {_f(prev['ratio_week_to_mean'], 2)} times the mean of the previous {prev['count']} weeks "
            f"({_f(prev['mean_load'], 1)} TRIMP) {cites.marker(prev['cite'])}."
        )
    if season["is_highest"] and season["weeks"] > 1:
        lines.append(
            f"It is your highest weekly load of the {season['weeks']} weeks since {season['from']} "
            f"{cites.marker(season['cite'])}."
        )
    elif season["weeks"] > 1:
        lines.append(
            f"It ranks {season['week_rank_by_load']} of {season['weeks']} weeks since {season['from']}; the highest "
            f"was the week of {season['highest_week_start']} with {_f(season['highest_week_load'], 1)} TRIMP "
            f"{cites.marker(season['cite'])}."
        )
    sessions = outputs.get("week_sessions")
    if sessions is not None and sessions["sessions"]:
        top = sessions["sessions"][:2]
        n = sessions["session_count"]
        count = f"{n} session{'' if n == 1 else 's'} {cites.marker(sessions['cite'])}"
        parts = [
            f"{s['session_date']} {s['sport']} of {_f(s['duration_min'], 0)} min and {_f(s['distance_km'], 1)} km, "
            f"load {_f(s['session_load'], 1)} ({_f(100 * s['share_of_week_load'], 0)}% of the week) "
            f"{cites.marker(s['cite'])}"
            for s in top
            if s["share_of_week_load"] is not None
        ]
        if parts:
            lines.append(f"The sessions that made most of it ({count}): " + "; ".join(parts) + ".")
    elif "week_sessions" in errors:
        lines += _missing(errors, "week_sessions", "the sessions of that week")
    lines.append(_acwr_sentence(features, cites))
    lines += _note_lines(outputs, errors, cites, "A note of yours from that week")
    return lines


def _acwr_sentence(features, cites) -> str:
    acwr = features["acwr"]
    state_cite = cites.marker(acwr["cite"])
    if acwr["value"] is None:
        return f"ACWR on {features['feature_date']} is not defined yet (not enough history) {state_cite}."
    value = _f(acwr["value"], 2)
    if acwr["flag"] == "high":
        verdict = f"above {_f(acwr['high_above'], 1)}: flagged high (acwr_high), a load spike"
    elif acwr["flag"] == "low":
        verdict = f"below {_f(acwr['low_below'], 1)}: flagged low (acwr_low), under-loaded"
    else:
        verdict = f"within {_f(acwr['low_below'], 1)} to {_f(acwr['high_above'], 1)}: not flagged"
    return f"Your ACWR (rolling) on {features['feature_date']} was {value}, {verdict} {state_cite}."


def _form_answer(outputs, errors, cites) -> list[str]:
    features = outputs.get("athlete_features")
    if features is None:
        return []
    state = features["state"]
    marker = cites.marker(state["cite"])
    lines = [
        f"On {features['feature_date']} your fitness (CTL) was {_f(state['ctl'], 1)}, your fatigue (ATL) "
        f"{_f(state['atl'], 1)} and your form (TSB) {_f(state['tsb'], 1)} {marker}."
    ]
    very_low = features["flag_rules"]["form_very_low"]["threshold"]
    if state["tsb"] is not None:
        if state["tsb"] < very_low:
            lines.append(f"Form is below {_f(very_low, 0)}: very low, deep fatigue (form_very_low) {marker}.")
        elif state["tsb"] < 0:
            lines.append(f"Negative form means fatigue is above fitness: you are carrying fatigue {marker}.")
        else:
            lines.append(f"Form at or above zero means you are fresh {marker}.")
    if state["monotony_7d"] is not None:
        lines.append(
            f"Monotony over the last week was {_f(state['monotony_7d'], 2)} and strain {_f(state['strain_7d'], 1)} "
            f"{marker}."
        )
    lines += _note_lines(outputs, errors, cites, "A recent note of yours")
    return lines


def _risk_answer(outputs, errors, cites) -> list[str]:
    features = outputs.get("athlete_features")
    if features is None:
        return []
    state = features["state"]
    marker = cites.marker(state["cite"])
    lines = [_acwr_sentence(features, cites)]
    monotony_limit = features["flag_rules"]["monotony_high"]["threshold"]
    if state["monotony_7d"] is not None:
        side = "above" if state["monotony_7d"] > monotony_limit else "not above"
        lines.append(
            f"Monotony was {_f(state['monotony_7d'], 2)} ({side} {_f(monotony_limit, 1)}) and strain "
            f"{_f(state['strain_7d'], 1)} {marker}."
        )
    flags = features["flags"]
    if flags:
        lines.append(f"Risk flags raised on {features['feature_date']}: {', '.join(flags)} {marker}.")
    else:
        lines.append(f"No risk flag is raised on {features['feature_date']} {marker}.")
    lines += _note_lines(outputs, errors, cites, "A recent note of yours")
    return lines


def _race_answer(outputs, errors, cites) -> list[str]:
    lines = []
    for key, result in outputs.items():
        if not key.startswith("race_prediction:"):
            continue
        lines.append(
            f"Predicted {result['race_name'] or _f(result['race_distance_km'], 1) + ' km'} time: "
            f"{result['predicted_finish_time']} ({result['predicted_pace_per_km']} per km), from the features of "
            f"{result['feature_date']} {cites.marker(result['cite'])}."
        )
    for key, error in errors.items():
        if key.startswith("race_prediction:"):
            lines.append(f"{NO_DATA[:-1]} on a race prediction ({error}).")
    features = outputs.get("athlete_features")
    if features is not None and any(k.startswith("race_prediction:") for k in outputs):
        state = features["state"]
        lines.append(
            f"Your form (TSB) on {features['feature_date']} was {_f(state['tsb'], 1)} "
            f"{cites.marker(state['cite'])}; positive form means you are fresh for a race."
        )
        lines.append(_acwr_sentence(features, cites))
    return lines if any(k.startswith("race_prediction:") for k in outputs) else []


def _notes_answer(outputs, errors, cites) -> list[str]:
    search = outputs.get("search_notes_and_knowledge")
    if search is None:
        return []
    notes = [h for h in search["hits"] if h["source"] == "session_note" and h["text"]]
    if not notes:
        return [f"I found no note of yours about that between {search['since']} and {search['until']}."]
    lines = [f"Your notes between {search['since']} and {search['until']} that match best:"]
    for hit in notes[:MAX_NOTES_QUOTED]:
        lines.append(f"- {hit['date']}: {quote(hit['text'])} {cites.marker(hit['cite'])}")
    knowledge = [h for h in search["hits"] if h["source"] == "knowledge"]
    if knowledge:
        first = knowledge[0]
        lines.append(f"Related reading: {first['title'] or first['source_id']} {cites.marker(first['cite'])}.")
    return lines


def _note_lines(outputs, errors, cites, lead: str) -> list[str]:
    search = outputs.get("search_notes_and_knowledge")
    if search is None:
        return []  # the numbers stand without it; the index may not be built yet
    notes = [h for h in search["hits"] if h["source"] == "session_note" and h["text"]]
    if not notes:
        return []
    hit = notes[0]
    return [f"{lead} ({hit['date']}): {quote(hit['text'])} {cites.marker(hit['cite'])}"]
