"""Evaluation of the assistant on the lakehouse `make run` built (conf/local.yaml, or --conf-file).

    .venv/bin/python bench/assistant_eval.py                  # 8 athletes x 6 questions = 48
    .venv/bin/python bench/assistant_eval.py --athletes 12 --race-source api   # with `athlete-platform serve` up

Per athlete: the load question as of the Sunday of the athlete's highest-load week, then form,
injury risk, marathon readiness, "what did I note about my legs" and one question it must refuse
(weather, sleep hours, another athlete's load, in turn) as of the athlete's latest feature day.

Expected facts are computed here from the tables (read whole with delta-rs into pandas, with
pandas arithmetic: not the assistant's code path): the week's load, its ratio to the previous 4
weeks' mean, the dates of the two largest sessions, the ACWR value and its flag, CTL/ATL/TSB,
monotony, the predicted marathon time. Prints:

- retrieval recall@5: share of the labelled relevant chunks in the search tool's top 5, over the
  questions that have some (labels: `note_topic` of each note chunk's text: heavy_legs for the load
  and legs questions, niggle for injury risk, within the searched dates; needs the
  `feature_store.document_chunks` table of `make run`'s embed-documents step);
- numeric faithfulness: share of the numbers in answers that equal a tool output (goal 100 %);
- facts covered: share of expected facts found in the answers (goal >= 90 %);
- refusal correctness: refusals on the questions to refuse, and answers on the others;
- p50/p95 latency of `ask` (goal p95 <= 2 s with the deterministic composer).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, timedelta

from measure import machine_line

from athlete_platform.assistant import composer, grounding
from athlete_platform.assistant.agent import Assistant
from athlete_platform.assistant.intent import classify
from athlete_platform.assistant.tools import Toolbox, ToolError
from athlete_platform.config import load_settings
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.delta_rs import table_location

LOAD_Q = "Why was my training load high this week?"
FORM_Q = "How is my form and fatigue?"
RISK_Q = "Am I at risk of injury?"
RACE_Q = "Am I ready for a marathon? What is my predicted time?"
NOTES_Q = "What did I note about my legs?"
REFUSE_Q = ("What's the weather tomorrow?", "How many hours did I sleep last night?", "What was {other}'s load?")


def read(settings, table):
    from deltalake import DeltaTable

    return DeltaTable(str(table_location(settings, table))).to_pandas()


def hms(seconds: float) -> str:
    total = int(round(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def week_facts(features, sessions, athlete: str, sunday: date) -> list[str]:
    """What the load answer must say, from the tables."""
    f = features[features.athlete_id == athlete].set_index("feature_date")
    monday = sunday - timedelta(days=6)
    load = f.loc[monday:sunday, "daily_load"].sum()
    facts = [f"{load:,.1f} TRIMP"]
    previous = f.loc[monday - timedelta(days=28) : monday - timedelta(days=1), "daily_load"]
    if len(previous) and f.index.min() < monday and previous.sum() > 0:
        facts.append(f"{load / (previous.sum() / 4):,.2f} times")
    s = sessions[(sessions.athlete_id == athlete) & sessions.session_date.between(monday, sunday)]
    for day in s.sort_values(["session_load", "session_id"], ascending=[False, True]).session_date.head(2):
        facts.append(str(day))
    facts += acwr_facts(f.loc[sunday])
    return facts


def acwr_facts(row) -> list[str]:
    acwr = row["acwr_rolling"]
    if acwr != acwr or acwr is None:
        return []
    flag = "flagged high" if acwr > 1.5 else "flagged low" if acwr < 0.8 else "not flagged"
    return [f"was {acwr:.2f}", flag]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf-file")
    parser.add_argument("--athletes", type=int, default=8)
    parser.add_argument("--race-source", choices=["gold_table", "api"], default="gold_table")
    args = parser.parse_args()
    settings = load_settings(args.conf_file)
    settings = settings.model_copy(
        update={"assistant": settings.assistant.model_copy(update={"race_prediction_source": args.race_source})}
    )
    print(machine_line())
    features = read(settings, tables.ATHLETE_ROLLING_FEATURES)
    features["feature_date"] = features.feature_date.map(lambda d: d if isinstance(d, date) else d.date())
    sessions = read(settings, tables.SESSIONS)
    sessions["session_date"] = sessions.session_date.map(lambda d: d if isinstance(d, date) else d.date())
    predictions = read(settings, tables.ATHLETE_PREDICTIONS)
    chunks = read_chunks(settings)
    topic = note_topic_function()

    helper = Assistant(settings)
    athletes = sorted(features.athlete_id.unique())[: args.athletes]
    rows = []  # (kind, answer, facts)
    recalls = []
    for i, athlete in enumerate(athletes):
        f = features[features.athlete_id == athlete]
        latest = f.feature_date.max()
        weekly = f.assign(monday=f.feature_date.map(lambda d: d - timedelta(days=d.weekday())))
        loads = weekly.groupby("monday").daily_load.sum()
        full = [m for m in loads.index if m + timedelta(days=6) <= latest]
        sunday = max(full, key=lambda m: loads[m]) + timedelta(days=6)
        state = f.set_index("feature_date").loc[latest]
        marathon = predictions[(predictions.athlete_id == athlete) & (predictions.race_distance_m == 42195.0)]
        marathon = marathon[marathon.as_of_date.map(lambda d: d if isinstance(d, date) else d.date()) <= latest]
        race_facts = [hms(marathon.sort_values("as_of_date").predicted_finish_time_s.iloc[-1])] if len(marathon) else []
        other = athletes[(i + 1) % len(athletes)]
        plan = [
            ("load", LOAD_Q, sunday, week_facts(features, sessions, athlete, sunday)),
            ("form", FORM_Q, latest, [f"(CTL) was {state.ctl:,.1f}", f"(ATL) {state.atl:,.1f}"]),
            ("risk", RISK_Q, latest, acwr_facts(state) + [f"Monotony was {state.monotony_7d:,.2f}"]),
            ("race", RACE_Q, latest, race_facts),
            ("notes", NOTES_Q, latest, []),
            ("refuse", REFUSE_Q[i % 3].format(other=other), latest, []),
        ]
        for kind, question, as_of, facts in plan:
            answer = helper.ask(athlete, question, as_of)
            rows.append((kind, answer, facts))
            relevant_topic = {"load": "heavy_legs", "notes": "heavy_legs", "risk": "niggle"}.get(kind)
            if relevant_topic and chunks is not None and topic is not None:
                recall = recall_at_5(helper, chunks, topic, relevant_topic, athlete, question, as_of)
                if recall is not None:
                    recalls.append(recall)

    claims = [c for _kind, a, _f in rows for c in grounding.check(a.text, a.outputs).claims]
    faithful = sum(c.grounded for c in claims)
    facts = [(fact in a.text) for _kind, a, fs in rows for fact in fs]
    refusals = [a for kind, a, _f in rows if kind == "refuse"]
    answered = [a for kind, a, _f in rows if kind != "refuse"]
    correct_refusals = sum(a.text.startswith(composer.NO_DATA) and not a.citations for a in refusals)
    false_refusals = sum(a.text.startswith(composer.NO_DATA) for a in answered)
    latencies = sorted(a.latency_ms for _kind, a, _f in rows)
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
    print(f"questions: {len(rows)} over {len(athletes)} athletes (composer {settings.assistant.composer})")
    if recalls:
        print(f"retrieval recall@5: {statistics.mean(recalls):.1%} over {len(recalls)} questions with labelled chunks")
    else:
        print("retrieval recall@5: n/a (no feature_store.document_chunks table or no note_topic labels)")
    share = faithful / max(1, len(claims))
    print(f"numeric faithfulness: {faithful}/{len(claims)} numbers equal a tool output ({share:.1%})")
    for kind, a, _f in rows:
        for claim in grounding.check(a.text, a.outputs).claims:
            if not claim.grounded:
                print(f"  not grounded ({kind}, {a.athlete_id}): {claim.text!r} in {a.text[:300]!r}")
    print(f"facts covered: {sum(facts)}/{len(facts)} ({sum(facts) / max(1, len(facts)):.1%})")
    print(
        f"refusal correctness: {correct_refusals}/{len(refusals)} refused; "
        f"{len(answered) - false_refusals}/{len(answered)} answerable questions answered"
    )
    first = rows[0][1].latency_ms
    print(f"latency: p50 {statistics.median(latencies):.0f} ms, p95 {p95:.0f} ms (first call {first:.0f} ms)")
    missing = [(a.athlete_id, a.question, fact) for _kind, a, fs in rows for fact in fs if fact not in a.text]
    for athlete, question, fact in missing[:10]:
        print(f"  missing fact {fact!r} for {athlete}: {question}")
    return 0


def read_chunks(settings):
    chunk_table = getattr(tables, "DOCUMENT_CHUNKS", None)
    if chunk_table is None or not table_location(settings, chunk_table).exists():
        return None
    frame = read(settings, chunk_table)
    return frame[frame.source == "session_note"][["chunk_id", "athlete_id", "doc_date", "text"]]


def note_topic_function():
    try:
        from athlete_platform.ingestion.sample_data.notes import note_topic
    except ImportError:
        return None
    return note_topic


def recall_at_5(helper, chunks, topic, relevant_topic, athlete, question, as_of):
    """Share of the relevant chunks (by topic label, in the searched dates) among the top 5 hits."""
    asked = classify(question, athlete)
    calls = [
        c for c in composer.plan(asked, as_of, helper.settings.assistant.notes_days) if c.name.startswith("search")
    ]
    if not calls:
        return None
    arguments = calls[0].arguments
    since, until = date.fromisoformat(arguments["since"]), date.fromisoformat(arguments["until"])
    mine = chunks[chunks.athlete_id == athlete]
    days = mine.doc_date.map(lambda d: d if isinstance(d, date) else d.date())
    window = mine[(days >= since) & (days <= until)]
    relevant = {cid for cid, text in zip(window.chunk_id, window.text, strict=True) if topic(text) == relevant_topic}
    if not relevant:
        return None
    box = Toolbox(athlete, as_of, helper.lake, helper.race_source, helper.open_index)
    try:
        hits = box.call("search_notes_and_knowledge", {**arguments, "k": 5})["hits"]
    except ToolError:
        return 0.0
    found = {h["chunk_id"] for h in hits[:5]}
    return len(relevant & found) / min(len(relevant), 5)


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - started:.1f} s)")
    sys.exit(code)
