"""Citations: where a number or a quote in an answer came from (a table row range, a chunk, an API call).

A tool puts its citations in its output under `citations`, each with a `ref` unique in the
run; the values it cites carry that `ref` under `cite`. The answer numbers the refs it uses,
in order of first use (`[1]`, `[2]`, ...), and lists them after the text.
"""

from __future__ import annotations

from typing import Any


def table_citation(table: str, version: int | None, **key: Any) -> dict[str, Any]:
    """A citation of `table`'s rows with these key values (e.g. athlete_id, feature_date or a range)."""
    key_text = ", ".join(f"{name}={value}" for name, value in key.items())
    short = table.rsplit(".", 1)[-1]
    return {
        "ref": f"{short}:{'/'.join(str(v) for v in key.values())}",
        "kind": "table",
        "table": table,
        "key": key_text,
        "version": version,
    }


def chunk_citation(chunk_id: str, source: str, source_id: str, doc_date: str | None) -> dict[str, Any]:
    """A citation of one chunk of the notes-and-knowledge index."""
    return {
        "ref": f"chunk:{chunk_id}",
        "kind": "chunk",
        "chunk_id": chunk_id,
        "source": source,
        "source_id": source_id,
        "date": doc_date,
    }


def api_citation(route: str, request_id: str | None, **key: Any) -> dict[str, Any]:
    """A citation of one answer of the deployment API."""
    key_text = ", ".join(f"{name}={value}" for name, value in key.items())
    return {
        "ref": f"api:{request_id or key_text}",
        "kind": "api",
        "route": route,
        "request_id": request_id,
        "key": key_text,
    }


def label(citation: dict[str, Any]) -> str:
    """One line a person can follow back to the data."""
    kind = citation.get("kind")
    if kind == "table":
        version = citation.get("version")
        at = f" (Delta version {version})" if version is not None else ""
        return f"{citation['table']} [{citation['key']}]{at}"
    if kind == "chunk":
        when = f" of {citation['date']}" if citation.get("date") else ""
        return f"chunk {citation['chunk_id']} ({citation['source']} {citation['source_id']}{when})"
    if kind == "api":
        request = f", request_id {citation['request_id']}" if citation.get("request_id") else ""
        return f"POST {citation['route']} [{citation['key']}{request}]"
    return str(citation.get("ref"))


class CitationIndex:
    """Numbers the refs an answer cites, in order of first use."""

    def __init__(self, citations: list[dict[str, Any]]) -> None:
        self._by_ref = {c["ref"]: c for c in citations}
        self._numbers: dict[str, int] = {}

    def __contains__(self, ref: str) -> bool:
        return ref in self._by_ref

    def marker(self, ref: str) -> str:
        """`[n]` for `ref` (a ref no tool returned is a programming error)."""
        if ref not in self._by_ref:
            raise KeyError(f"no tool output has the citation {ref!r}")
        number = self._numbers.setdefault(ref, len(self._numbers) + 1)
        return f"[{number}]"

    def used(self) -> list[dict[str, Any]]:
        """The cited citations, numbered, in marker order."""
        ordered = sorted(self._numbers.items(), key=lambda item: item[1])
        return [{"n": n, **self._by_ref[ref], "label": label(self._by_ref[ref])} for ref, n in ordered]


def collect(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every citation of these tool outputs (first occurrence of each ref)."""
    seen: dict[str, dict[str, Any]] = {}
    for output in outputs:
        for citation in output.get("citations", []):
            seen.setdefault(citation["ref"], citation)
    return list(seen.values())
