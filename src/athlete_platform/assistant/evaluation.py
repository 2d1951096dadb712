"""The assistant's evaluation: questions over sample athletes, expected facts computed from the
tables independently of the assistant's code path (delta-rs into pandas, pandas arithmetic), and
the figures: retrieval recall@5, numeric faithfulness, facts covered, refusal correctness and
latency. `bench/assistant_eval.py` prints them for `make run`'s lakehouse; a held-out run on the
test lake checks the goals (tests/integration/assistant_cases.py).

Per athlete: the load question as of the Sunday of the athlete's highest-load week, then form,
injury risk, marathon readiness, "what did I note about my legs" and one question it must refuse
(weather, sleep hours, another athlete's load, in turn) as of the athlete's latest feature day.
Recall labels: `note_topic` of each note chunk's text (heavy_legs for the load and legs
questions, niggle for injury risk), within the searched dates.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from athlete_platform.assistant import composer, grounding
from athlete_platform.assistant.agent import Answer, Assistant
from athlete_platform.assistant.intent import classify
from athlete_platform.assistant.tools import Toolbox, ToolError
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.delta_rs import table_location

if TYPE_CHECKING:
    from athlete_platform.config import Settings

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


@dataclass
class EvalReport:
    """Every answer with its expected facts, and the figures over them."""

    athletes: list[str]
    composer: str
    rows: list[tuple[str, Answer, list[str]]] = field(default_factory=list)  # (kind, answer, facts)
    recalls: list[float] = field(default_factory=list)

    @property
    def claims(self) -> list[grounding.Claim]:
        return [c for _kind, a, _f in self.rows for c in grounding.check(a.text, a.outputs).claims]

    @property
    def faithfulness(self) -> float:
        claims = self.claims
        return sum(c.grounded for c in claims) / max(1, len(claims))

    @property
    def missing_facts(self) -> list[tuple[str, str, str]]:
        return [(a.athlete_id, a.question, fact) for _kind, a, fs in self.rows for fact in fs if fact not in a.text]

    @property
    def facts_total(self) -> int:
        return sum(len(fs) for _kind, _a, fs in self.rows)

    @property
    def facts_covered(self) -> float:
        return 1.0 - len(self.missing_facts) / max(1, self.facts_total)

    @property
    def refusals(self) -> list[Answer]:
        return [a for kind, a, _f in self.rows if kind == "refuse"]

    @property
    def answerable(self) -> list[Answer]:
        return [a for kind, a, _f in self.rows if kind != "refuse"]

    @property
    def correct_refusals(self) -> int:
        return sum(a.text.startswith(composer.NO_DATA) and not a.citations for a in self.refusals)

    @property
    def answered(self) -> int:
        return sum(not a.text.startswith(composer.NO_DATA) for a in self.answerable)

    @property
    def recall_at_5(self) -> float | None:
        return statistics.mean(self.recalls) if self.recalls else None

    def latency_ms(self, quantile: float) -> float:
        latencies = sorted(a.latency_ms for _kind, a, _f in self.rows)
        return latencies[min(len(latencies) - 1, int(round(quantile * (len(latencies) - 1))))]

    def lines(self) -> list[str]:
        claims = self.claims
        out = [f"questions: {len(self.rows)} over {len(self.athletes)} athletes (composer {self.composer})"]
        if self.recalls:
            out.append(
                f"retrieval recall@5: {self.recall_at_5:.1%} over {len(self.recalls)} questions with labelled chunks"
            )
        else:
            out.append("retrieval recall@5: n/a (no feature_store.document_chunks table or no labelled notes)")
        grounded = sum(c.grounded for c in claims)
        out.append(
            f"numeric faithfulness: {grounded}/{len(claims)} numbers equal a tool output ({self.faithfulness:.1%})"
        )
        for kind, a, _f in self.rows:
            for claim in grounding.check(a.text, a.outputs).claims:
                if not claim.grounded:
                    out.append(f"  not grounded ({kind}, {a.athlete_id}): {claim.text!r} in {a.text[:300]!r}")
        covered = self.facts_total - len(self.missing_facts)
        out.append(f"facts covered: {covered}/{self.facts_total} ({self.facts_covered:.1%})")
        out.append(
            f"refusal correctness: {self.correct_refusals}/{len(self.refusals)} refused; "
            f"{self.answered}/{len(self.answerable)} answerable questions answered"
        )
        first = self.rows[0][1].latency_ms if self.rows else 0.0
        p50, p95 = self.latency_ms(0.5), self.latency_ms(0.95)
        out.append(f"latency: p50 {p50:.0f} ms, p95 {p95:.0f} ms (first call {first:.0f} ms)")
        out += [
            f"  missing fact {fact!r} for {athlete}: {question}" for athlete, question, fact in self.missing_facts[:10]
        ]
        return out


def evaluate(settings: Settings, n_athletes: int = 8, helper: Assistant | None = None) -> EvalReport:
    """Ask every planned question of the first `n_athletes` athletes (by id) and collect the figures."""
    features = read(settings, tables.ATHLETE_ROLLING_FEATURES)
    features["feature_date"] = features.feature_date.map(lambda d: d if isinstance(d, date) else d.date())
    sessions = read(settings, tables.SESSIONS)
    sessions["session_date"] = sessions.session_date.map(lambda d: d if isinstance(d, date) else d.date())
    predictions = read(settings, tables.ATHLETE_PREDICTIONS)
    chunks = read_chunks(settings)
    topic = note_topic_function()

    helper = helper or Assistant(settings)
    athletes = sorted(features.athlete_id.unique())[:n_athletes]
    report = EvalReport(athletes=athletes, composer=settings.assistant.composer)
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
            report.rows.append((kind, answer, facts))
            relevant_topic = {"load": "heavy_legs", "notes": "heavy_legs", "risk": "niggle"}.get(kind)
            if relevant_topic and chunks is not None and topic is not None:
                recall = recall_at_5(helper, chunks, topic, relevant_topic, athlete, question, as_of)
                if recall is not None:
                    report.recalls.append(recall)

    return report


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
