"""MLflow traces of assistant runs: one trace per question, a span per tool call and LLM round trip.

Traces go to the experiment `assistant.experiment` of the platform's tracking store (the SQLite
store under data_dir by default); MLflow writes them in the background, so a run does not wait
for the store. Each span records its inputs, outputs and start/end times (the latency); a tool
that fails records its error. `assistant.trace: false` turns it off (:class:`NoTracer`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from athlete_platform.config import Settings


class Span(Protocol):
    trace_id: str | None

    def set_inputs(self, inputs: Any) -> None: ...
    def set_outputs(self, outputs: Any) -> None: ...
    def set_attribute(self, key: str, value: Any) -> None: ...


class _NoSpan:
    trace_id = None

    def set_inputs(self, inputs: Any) -> None:
        pass

    def set_outputs(self, outputs: Any) -> None:
        pass

    def set_attribute(self, key: str, value: Any) -> None:
        pass


class NoTracer:
    """Traces nothing (`assistant.trace: false`, or tests of pure logic)."""

    @contextlib.contextmanager
    def run(self, name: str, inputs: dict[str, Any]) -> Iterator[Span]:
        yield _NoSpan()

    @contextlib.contextmanager
    def span(self, name: str, kind: str, inputs: dict[str, Any]) -> Iterator[Span]:
        yield _NoSpan()


class MlflowTracer:
    """Spans in MLflow; the tracking store is configured on first use (once per process)."""

    _lock = threading.Lock()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._experiment_id: str | None = None

    def _experiment(self) -> str:
        if self._experiment_id is None:
            with self._lock:
                if self._experiment_id is None:
                    import mlflow

                    from athlete_platform.lakehouse.models import configure_mlflow

                    name = self.settings.assistant.experiment
                    configure_mlflow(self.settings, name)
                    self._experiment_id = mlflow.get_experiment_by_name(name).experiment_id
        return self._experiment_id

    @contextlib.contextmanager
    def run(self, name: str, inputs: dict[str, Any]) -> Iterator[Span]:
        """The root span of one question (the trace)."""
        import mlflow
        from mlflow.entities import SpanType
        from mlflow.entities.trace_location import MlflowExperimentLocation

        destination = MlflowExperimentLocation(self._experiment())
        with mlflow.start_span(name, span_type=SpanType.AGENT, trace_destination=destination) as span:
            span.set_inputs(inputs)
            yield span

    @contextlib.contextmanager
    def span(self, name: str, kind: str, inputs: dict[str, Any]) -> Iterator[Span]:
        """A child span (`kind`: TOOL, CHAT_MODEL, PARSER, ...) of the current run."""
        import mlflow

        with mlflow.start_span(name, span_type=kind) as span:
            span.set_inputs(inputs)
            yield span


def tracer_from_settings(settings: Settings) -> MlflowTracer | NoTracer:
    return MlflowTracer(settings) if settings.assistant.trace else NoTracer()
