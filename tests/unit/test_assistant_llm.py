"""The LLM path against a scripted OpenAI-compatible server started here on 127.0.0.1: real HTTP,
the real client. The server replays scripted chat completions and records what it was sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from athlete_platform.assistant.agent import Assistant
from athlete_platform.assistant.composer import NO_DATA
from athlete_platform.assistant.tracing import NoTracer
from tests.assistant_lake import ATHLETE, OTHER, FakeIndex, build_lake, make_settings

WEEK_REF = "athlete_rolling_features:ath_0001/2024-03-04..2024-03-10"
PREVIOUS_REF = "athlete_rolling_features:ath_0001/2024-02-05..2024-03-03"
RACE_REF = "athlete_predictions:ath_0001/2024-03-10/10000.0"


def tool_call(call_id: str, name: str, arguments: dict | str) -> dict:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}


def reply(content: str | None = None, calls: list[dict] | None = None) -> dict:
    message = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": message}]}


class ScriptedServer:
    """Answers POST /v1/chat/completions with the next scripted reply (the last one repeats)."""

    def __init__(self, replies: list[dict]) -> None:
        self.replies = replies
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                index = min(len(outer.requests) - 1, len(outer.replies) - 1)
                status, payload = (
                    (404, {"error": "no such route"})
                    if self.path != "/v1/chat/completions"
                    else (
                        200,
                        outer.replies[index],
                    )
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("assistant-llm")
    build_lake(make_settings(folder))
    return folder


def llm_assistant(lake_dir, url: str, max_steps: int = 6) -> Assistant:
    settings = make_settings(
        lake_dir, composer="llm", llm_base_url=url, llm_api_key_env="TEST_LLM_KEY", max_steps=max_steps, timeout_s=10
    )
    return Assistant(settings, open_index=lambda: FakeIndex([]), tracer=NoTracer())


def test_tool_errors_go_back_to_the_model_and_a_grounded_answer_is_accepted(lake_dir, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test")
    final = (
        f"Your load this week was 700.0 TRIMP [{WEEK_REF}], 2.00 times the mean of the previous 4 weeks "
        f"[{PREVIOUS_REF}]. Your predicted 10K is 0:41:40 [{RACE_REF}]."
    )
    script = [
        reply(
            calls=[
                tool_call("c1", "athlete_features", {"start": "last monday", "end": "2024-03-10"}),  # fails: date
                tool_call("c2", "week_sessions", {"week": "2024-W10", "athlete_id": OTHER}),  # fails: athlete lock
                tool_call("c3", "athlete_features", "{not json"),  # fails: arguments
            ]
        ),
        reply(
            calls=[
                tool_call("c4", "athlete_features", {"start": "2024-01-01", "end": "2024-03-10"}),
                tool_call("c5", "race_prediction", {"distance": "10K"}),
            ]
        ),
        reply(content=final),
    ]
    with ScriptedServer(script) as server:
        answer = llm_assistant(lake_dir, server.url).ask(ATHLETE, "Why was my training load high this week?")
    assert answer.grounded and answer.problems == [], answer.problems
    assert answer.text == (
        "Your load this week was 700.0 TRIMP [1], 2.00 times the mean of the previous 4 weeks [2]. "
        "Your predicted 10K is 0:41:40 [3]."
    )
    assert [c["ref"] for c in answer.citations] == [WEEK_REF, PREVIOUS_REF, RACE_REF]
    assert len(server.requests) == 3
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    tools = {t["function"]["name"]: t["function"] for t in server.requests[0]["tools"]}
    assert set(tools) == {"athlete_features", "week_sessions", "search_notes_and_knowledge", "race_prediction"}
    assert all("athlete_id" not in t["parameters"]["properties"] for t in tools.values())
    tool_messages = [m for m in server.requests[1]["messages"] if m["role"] == "tool"]
    errors = {m["tool_call_id"]: json.loads(m["content"])["error"] for m in tool_messages}
    assert "start must be a date" in errors["c1"]
    assert "fixed by the caller" in errors["c2"]
    assert "athlete_features failed" in errors["c3"]
    results = [json.loads(m["content"]) for m in server.requests[2]["messages"] if m["role"] == "tool"][-2:]
    assert results[0]["athlete_id"] == ATHLETE and results[0]["week"]["load"] == 700.0
    assert [c["ok"] for c in answer.tool_calls] == [False, False, False, True, True]


def test_an_answer_with_an_ungrounded_number_is_rejected(lake_dir):
    script = [
        reply(calls=[tool_call("c1", "athlete_features", {"start": "2024-01-01", "end": "2024-03-10"})]),
        reply(content=f"Your load this week was 812.0 TRIMP [{WEEK_REF}], well above normal."),
    ]
    with ScriptedServer(script) as server:
        answer = llm_assistant(lake_dir, server.url).ask(ATHLETE, "Why was my training load high this week?")
    assert answer.text == NO_DATA and not answer.grounded
    assert answer.problems[0] == "number '812.0' equals no tool output"
    assert "rejected answer: Your load this week was 812.0 TRIMP [1]" in answer.problems[-1]


def test_an_unknown_citation_is_rejected(lake_dir):
    script = [
        reply(calls=[tool_call("c1", "athlete_features", {"start": "2024-01-01", "end": "2024-03-10"})]),
        reply(content="Your load this week was 700.0 TRIMP [1]."),
    ]
    with ScriptedServer(script) as server:
        answer = llm_assistant(lake_dir, server.url).ask(ATHLETE, "Why was my training load high this week?")
    assert answer.text == NO_DATA and "citation [1] names no tool result" in answer.problems


def test_the_step_limit_stops_a_model_that_never_answers(lake_dir):
    loop = reply(calls=[tool_call("c", "week_sessions", {"week": "2024-W10"})])
    with ScriptedServer([loop]) as server:
        answer = llm_assistant(lake_dir, server.url, max_steps=3).ask(ATHLETE, "What did I do this week?")
    assert len(server.requests) == 3
    assert answer.text == NO_DATA and answer.problems == ["no final answer within 3 steps"]


def test_an_unreachable_server_is_one_paragraph(lake_dir):
    from athlete_platform.assistant.llm import LlmError

    with ScriptedServer([reply(content="x")]) as server:
        url = server.url
    with pytest.raises(LlmError, match="did not answer.*assistant.composer: deterministic"):
        llm_assistant(lake_dir, url).ask(ATHLETE, "How is my form?")
