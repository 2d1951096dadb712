"""SQL text building: escaping in one place."""

from __future__ import annotations

from collections.abc import Iterable


def sql_escape(text: str) -> str:
    """Escape text for a single-quoted SQL string literal."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def sql_string_list(values: Iterable[str]) -> str:
    """A SQL IN-list of string literals."""
    return ", ".join(f"'{sql_escape(v)}'" for v in values)
