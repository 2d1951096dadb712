"""Errors as HTTP answers: what status and body each error becomes (pure), and the handlers.

| error | status | body |
|---|---|---|
| `InvalidRequest`, a request that fails validation, malformed JSON | 422 | `{"detail", "field"}` |
| `NotFound` (unknown athlete) | 404 | `{"detail"}` |
| `OnlineStoreUnavailable`, `ModelUnavailable` | 503 + `Retry-After` | `{"detail"}` |
| `OIPError` (the /v2 routes) | 400 / 404 | `{"error"}` (the protocol's error body) |
| anything else | 500 | `{"detail"}` naming the request id; logged with its traceback |

A client's request never gets a 500: anything it can send is caught as one of the first rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from athlete_platform.errors import InvalidRequest, NotFound, PlatformError
from athlete_platform.online.store import OnlineStoreUnavailable
from athlete_platform.serving.models import ModelUnavailable
from athlete_platform.serving.oip import OIPError

log = logging.getLogger("athlete_platform.serving")

ErrorAnswer = tuple[int, dict[str, Any], dict[str, str]]  # status, body, headers


def error_answer(exc: BaseException, request_id: str, retry_after_s: int) -> ErrorAnswer:
    """The status, JSON body and headers for `exc` (see the module docstring)."""
    if isinstance(exc, OIPError):
        return exc.status, {"error": str(exc)}, {}
    if isinstance(exc, InvalidRequest):
        return 422, {"detail": str(exc), "field": exc.field}, {}
    if isinstance(exc, NotFound):
        return 404, {"detail": str(exc)}, {}
    if isinstance(exc, OnlineStoreUnavailable | ModelUnavailable):
        return 503, {"detail": str(exc)}, {"Retry-After": str(retry_after_s)}
    if isinstance(exc, PlatformError):  # the service's own state (e.g. a stale online row): not the client's
        return 500, {"detail": f"{exc} (request id {request_id})"}, {}
    return 500, {"detail": f"Internal error (request id {request_id}); the service log has the details."}, {}


def field_path(loc: Sequence[Any]) -> str:
    """A pydantic error location as a field path a person reads: `("body", "race_distance_m",
    "list[constrained-float]", 0)` -> `race_distance_m[0]`; the body itself is `body`."""
    parts: list[str] = []
    for part in loc[1:] if loc and loc[0] in ("body", "path", "query", "header") else loc:
        if isinstance(part, int):
            if parts:
                parts[-1] += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            parts.append(part)
    return ".".join(parts) or "body"


def validation_answer(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """(field, message) for FastAPI/pydantic validation errors: the first error, in plain words."""
    if not errors:
        return "body", "The request is not valid."
    first = errors[0]
    field = field_path(first.get("loc", ()))
    kind = first.get("type", "")
    if kind == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "not valid JSON")
        return "body", f"The request body is not valid JSON ({reason}); send one JSON object."
    if kind == "missing" and field == "body":
        return "body", "A JSON body is required."
    if kind == "missing":
        return field, f"Field {field} is required."
    if kind == "extra_forbidden":
        return field, f"Field {field} is not a field of this request; remove it."
    message = str(first.get("msg", "is not valid"))
    shown = first.get("input")
    text = repr(shown)
    text = text if len(text) <= 60 else text[:57] + "..."
    return field, f"Field {field}: {message} (got {text})."
