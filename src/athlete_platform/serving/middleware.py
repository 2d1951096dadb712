"""ASGI middleware in front of every route: request id, API key on /v1, body size limit.

Plain ASGI (not Starlette's BaseHTTPMiddleware) to stay off the hot path's budget:

- every request gets a request id (uuid4 hex) in `request.state.request_id` and in the
  `X-Request-ID` response header; the inference log and error bodies use the same id;
- with `serving.api_key` set, a /v1 request without the key in `X-API-Key` is answered 401
  (compared in constant time, so the key cannot be guessed byte by byte from timings);
- a body over `serving.max_body_bytes` is answered 413: at once when `Content-Length` says
  so, else while it streams in (the bytes are counted; the route never sees a partial body).
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from athlete_platform.serving.inference_log import new_request_id

API_KEY_HEADER = "X-API-Key"
REQUEST_ID_HEADER = "X-Request-ID"


class GuardMiddleware:
    def __init__(self, app: ASGIApp, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((REQUEST_ID_HEADER.lower().encode(), request_id.encode()))
            await send(message)

        headers = _headers(scope)
        if self.api_key is not None and scope["path"].startswith("/v1/"):
            given = headers.get(API_KEY_HEADER.lower().encode(), b"")
            if not hmac.compare_digest(given, self.api_key):
                detail = f"This route needs the API key in the {API_KEY_HEADER} header" + (
                    "; the key given is not valid." if given else "; none was given."
                )
                await _answer(scope, receive, send_with_id, 401, {"detail": detail, "field": API_KEY_HEADER})
                return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send_with_id)
            return
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _answer(scope, receive, send_with_id, 400, {"detail": "Content-Length is not a number."})
                return
            if int(length) > self.max_body_bytes:
                await _answer(scope, receive, send_with_id, 413, self._too_large(int(length)))
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await _answer(scope, receive, send_with_id, 413, self._too_large(None))
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_id)

    def _too_large(self, length: int | None) -> dict[str, Any]:
        size = f"{length} bytes" if length is not None else "more than that"
        return {
            "detail": f"The request body is too large ({size}); the limit is {self.max_body_bytes} bytes "
            "(serving.max_body_bytes). Send fewer events or distances per request.",
            "field": "body",
        }


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", [])}


async def _answer(scope: Scope, receive: Receive, send: Send, status: int, body: dict[str, Any]) -> None:
    if scope["path"].startswith("/v2"):
        body = {"error": body["detail"]}
    await JSONResponse(body, status_code=status)(scope, receive, send)
