"""The assistant: a question about one athlete -> tool calls -> a grounded answer with citations.

    Assistant.from_settings(settings).ask("ath_0001", "Why was my training load high this week?")

The athlete comes from the caller (the CLI's `--athlete`, the API's path) and is bound into every
tool; the question's text never chooses whose data is read. The as-of day defaults to the
athlete's latest feature day. With `assistant.composer: deterministic` (default) the plan comes
from the question's type and the answer from :mod:`~athlete_platform.assistant.composer`; with
`llm` the model plans and writes, and its answer is accepted only if the grounding check passes.
Either way the answer is checked (:mod:`~athlete_platform.assistant.grounding`) and the run is
traced in MLflow.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from athlete_platform.assistant import composer, grounding
from athlete_platform.assistant.intent import classify
from athlete_platform.assistant.lake import LakeReader
from athlete_platform.assistant.race_source import race_source_from_settings
from athlete_platform.assistant.tools import RaceSource, SearchIndex, Toolbox, ToolError
from athlete_platform.assistant.tracing import MlflowTracer, NoTracer, tracer_from_settings
from athlete_platform.errors import InvalidRequest, NotFound, PlatformError
from athlete_platform.ingestion.fields import check_athlete_id
from athlete_platform.lakehouse.tables import ATHLETE_ROLLING_FEATURES

if TYPE_CHECKING:
    from athlete_platform.config import Settings

#: Longest question accepted (characters).
MAX_QUESTION_CHARS = 2000


@dataclass
class Answer:
    """What the CLI prints and the API returns."""

    athlete_id: str
    question: str
    as_of: str
    composer: str
    intent: str | None
    text: str
    citations: list[dict[str, Any]]
    grounded: bool  # every number equals a tool output and is cited, and the question could be answered
    problems: list[str] = field(default_factory=list)  # why an answer was rejected or flagged
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float = 0.0
    trace_id: str | None = None
    # The tool results the answer was written from (for checks and evaluation; not returned by the API).
    outputs: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("outputs")
        return out

    def lines(self) -> list[str]:
        """The answer, then its citations, as the console prints them."""
        out = [self.text]
        if self.citations:
            out += ["", "Sources:"] + [f"[{c['n']}] {c['label']}" for c in self.citations]
        if self.problems:
            out += ["", "Not shown as grounded:"] + [f"- {p}" for p in self.problems]
        return out


def open_document_index(settings: Settings) -> Callable[[], SearchIndex]:
    """The notes-and-knowledge index, opened on first use (its module loads the embedding model)."""

    def opener() -> SearchIndex:
        try:
            from athlete_platform.features.documents.index import DocumentIndex
        except ImportError as exc:
            raise ToolError(f"The notes-and-knowledge index is not available in this build ({exc}).") from None
        try:
            return DocumentIndex.open(settings)
        except PlatformError as exc:
            raise ToolError(str(exc)) from None

    return opener


class Assistant:
    """Answers questions; one instance serves many questions and athletes (thread-safe reads)."""

    def __init__(
        self,
        settings: Settings,
        lake: LakeReader | None = None,
        race_source: RaceSource | None = None,
        open_index: Callable[[], SearchIndex] | None = None,
        tracer: MlflowTracer | NoTracer | None = None,
    ) -> None:
        self.settings = settings
        self.lake = lake or LakeReader(settings)
        self.race_source = race_source or race_source_from_settings(settings, self.lake)
        self.open_index = open_index or _cached(open_document_index(settings))
        self.tracer = tracer or tracer_from_settings(settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> Assistant:
        return cls(settings)

    def ask(self, athlete_id: str, question: str, as_of: date | None = None) -> Answer:
        """Answer `question` for `athlete_id` with data up to `as_of` (default: the latest feature day)."""
        started = time.perf_counter()
        _check_inputs(athlete_id, question)
        day = as_of or self.latest_day(athlete_id)
        mode = self.settings.assistant.composer
        inputs = {"athlete_id": athlete_id, "question": question, "as_of": day.isoformat(), "composer": mode}
        with self.tracer.run("assistant.ask", inputs) as root:
            toolbox = Toolbox(athlete_id, day, self.lake, self.race_source, self.open_index)
            if mode == "llm":
                answer = self._ask_llm(toolbox, question, day)
            else:
                answer = self._ask_deterministic(toolbox, question, day)
            answer.latency_ms = round((time.perf_counter() - started) * 1000.0, 3)
            answer.trace_id = root.trace_id
            root.set_attribute("intent", answer.intent)
            root.set_attribute("grounded", answer.grounded)
            root.set_outputs({"text": answer.text, "citations": answer.citations, "problems": answer.problems})
        return answer

    def latest_day(self, athlete_id: str) -> date:
        """The athlete's latest feature day (404 for an athlete without features)."""
        read = self.lake.athlete_rows(ATHLETE_ROLLING_FEATURES, athlete_id, columns=["feature_date"])
        days = [r["feature_date"] for r in read.rows if r["feature_date"] is not None]
        if not days:
            raise NotFound(
                f"No feature rows for athlete_id {athlete_id!r} in {read.table}: the athlete is unknown or has no "
                "sessions yet. Check the id; a new athlete's data arrives with the next feature pipeline run.",
                keys=(athlete_id,),
            )
        return max(days)

    def _run_tool(self, toolbox: Toolbox, call: composer.ToolCall) -> dict[str, Any] | Exception:
        started = time.perf_counter()
        with self.tracer.span(call.name, "TOOL", dict(call.arguments)) as span:
            try:
                result: dict[str, Any] | Exception = toolbox.call(call.name, call.arguments)
                span.set_outputs(result)
            except PlatformError as exc:
                result = exc
                span.set_attribute("error", str(exc))
                span.set_outputs({"error": str(exc)})
        toolbox.calls.append(
            {
                "tool": call.name,
                "arguments": call.arguments,
                "ok": not isinstance(result, Exception),
                "error": str(result) if isinstance(result, Exception) else None,
                "latency_ms": round((time.perf_counter() - started) * 1000.0, 3),
            }
        )
        return result

    def _ask_deterministic(self, toolbox: Toolbox, question: str, day: date) -> Answer:
        asked = classify(question, toolbox.athlete_id)
        calls = composer.plan(asked, day, self.settings.assistant.notes_days)
        results = [self._run_tool(toolbox, call) for call in calls]
        composed = composer.compose(asked, calls, results)
        outputs = [r for r in results if not isinstance(r, Exception)]
        check = grounding.check(composed.text, outputs)
        return Answer(
            athlete_id=toolbox.athlete_id,
            question=question,
            as_of=day.isoformat(),
            composer="deterministic",
            intent=asked.intent,
            text=composed.text,
            citations=composed.citations,
            grounded=composed.grounded and check.ok,
            problems=check.problems(),
            tool_calls=toolbox.calls,
            outputs=outputs,
        )

    def _ask_llm(self, toolbox: Toolbox, question: str, day: date) -> Answer:
        from athlete_platform.assistant.citations import collect
        from athlete_platform.assistant.llm import ChatClient, number_refs, run_llm

        cfg = self.settings.assistant
        client = ChatClient(cfg.llm_base_url, cfg.llm_model, os.environ.get(cfg.llm_api_key_env), cfg.timeout_s)
        run = run_llm(client, toolbox, question, day, cfg.max_steps, self.tracer)
        if run.text is None:
            return self._rejected(toolbox, question, day, [f"no final answer within {cfg.max_steps} steps"], "")
        text, citations, unknown = number_refs(run.text, collect(run.outputs))
        check = grounding.check(text, run.outputs)
        problems = check.problems() + [f"citation [{ref}] names no tool result" for ref in unknown]
        if problems:
            return self._rejected(toolbox, question, day, problems, text)
        refused = text.strip().startswith(composer.NO_DATA)
        return Answer(
            athlete_id=toolbox.athlete_id,
            question=question,
            as_of=day.isoformat(),
            composer="llm",
            intent=None,
            text=text,
            citations=citations,
            grounded=not refused,
            tool_calls=toolbox.calls,
            outputs=run.outputs,
        )

    def _rejected(self, toolbox: Toolbox, question: str, day: date, problems: list[str], text: str) -> Answer:
        """The LLM's answer failed the check: the person gets the refusal, the trace gets why."""
        return Answer(
            athlete_id=toolbox.athlete_id,
            question=question,
            as_of=day.isoformat(),
            composer="llm",
            intent=None,
            text=composer.NO_DATA,
            citations=[],
            grounded=False,
            problems=problems + ([f"rejected answer: {text}"] if text else []),
            tool_calls=toolbox.calls,
        )


def _check_inputs(athlete_id: str, question: str) -> None:
    check_athlete_id(athlete_id)
    if not question.strip() or len(question) > MAX_QUESTION_CHARS:
        raise InvalidRequest(
            f"question must be 1 to {MAX_QUESTION_CHARS} characters of text, got {len(question)}.", field="question"
        )


def _cached(opener: Callable[[], SearchIndex]) -> Callable[[], SearchIndex]:
    """Open the index once and reuse it (a failure is retried on the next question: it may be built since)."""
    holder: list[SearchIndex] = []

    def cached() -> SearchIndex:
        if not holder:
            holder.append(opener())
        return holder[0]

    return cached
