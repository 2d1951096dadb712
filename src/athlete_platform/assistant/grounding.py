"""The grounding check: every number in an answer equals a number some tool returned, and carries
a citation marker; every quote is a verbatim piece of a tool's text.

What counts as a number: digits outside citation markers (`[3]`), outside quotes (“…”: quoted
note text is data the tool returned, checked as a quote), and outside any text a tool returned
verbatim (ids such as `ath_0001`, dates, formatted times). A number written with `d` decimals is
grounded when some tool number is within half a unit of its last digit (`523.5` for 523.46);
a percentage also matches a tool fraction (`31%` for 0.312); `h:mm:ss` and `m:ss` match a tool
number of seconds. The sign is not compared (a TSB of -12.3 may be written "12.3 below zero").
A number must be followed by a citation marker in the same sentence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

OPEN_QUOTE, CLOSE_QUOTE = "“", "”"
_MARKER = re.compile(r"\[\d+\]")
_QUOTE = re.compile(f"{OPEN_QUOTE}([^{CLOSE_QUOTE}]*){CLOSE_QUOTE}")
_CLOCK = re.compile(r"(?<![\w.:])(\d{1,3}):([0-5]\d)(?::([0-5]\d))?(?![\w:])")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(\s?%| percent)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
#: Tool strings shorter than this are not blanked out of the answer (e.g. "5K" would hide a 5).
_MIN_VERBATIM_CHARS = 6


@dataclass(frozen=True)
class Claim:
    """One number (or clock time) in an answer."""

    text: str
    value: float
    grounded: bool
    cited: bool


@dataclass
class Grounding:
    """The result of checking one answer against the tool outputs it was written from."""

    claims: list[Claim] = field(default_factory=list)
    bad_quotes: list[str] = field(default_factory=list)

    @property
    def ungrounded(self) -> list[Claim]:
        return [c for c in self.claims if not c.grounded]

    @property
    def uncited(self) -> list[Claim]:
        return [c for c in self.claims if not c.cited]

    @property
    def ok(self) -> bool:
        return not self.ungrounded and not self.uncited and not self.bad_quotes

    def problems(self) -> list[str]:
        out = [f"number {c.text!r} equals no tool output" for c in self.ungrounded]
        out += [f"number {c.text!r} has no citation marker after it in its sentence" for c in self.uncited]
        out += [f"quote “{q}” is not text a tool returned" for q in self.bad_quotes]
        return out


def quote(text: str) -> str:
    """Tool text as a quote in an answer (the closing mark inside it is replaced, so it stays one quote)."""
    return OPEN_QUOTE + " ".join(text.split()).replace(CLOSE_QUOTE, '"') + CLOSE_QUOTE


def tool_numbers(outputs: Iterable[Any]) -> list[float]:
    """Every finite number anywhere in the tool outputs (booleans are not numbers)."""
    found: list[float] = []

    def walk(value: Any) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int | float):
            if math.isfinite(value):
                found.append(abs(float(value)))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(list(outputs))
    return found


def tool_strings(outputs: Iterable[Any]) -> list[str]:
    """Every string in the tool outputs, whitespace runs made single spaces."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(" ".join(value.split()))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(list(outputs))
    return found


def check(answer: str, outputs: list[dict[str, Any]]) -> Grounding:
    """Check `answer` (with `[n]` markers) against the tool outputs it was written from."""
    numbers = tool_numbers(outputs)
    strings = tool_strings(outputs)
    result = Grounding()
    # Quotes first, over the whole answer: a quoted note may hold its own sentence ends
    # ("5K race: new PB! felt strong"), which must not split the quote from its closing mark.
    for sentence in _SENTENCE_END.split(_strip_quotes(answer, strings, result)):
        sentence = _blank_verbatim(sentence, strings)
        markers = [m.start() for m in _MARKER.finditer(sentence)]
        sentence = _MARKER.sub(lambda m: " " * len(m.group()), sentence)
        for start, text, value, grounded in _claims(sentence, numbers, strings):
            cited = any(position > start for position in markers)
            result.claims.append(Claim(text, value, grounded, cited))
    return result


def _strip_quotes(sentence: str, strings: list[str], result: Grounding) -> str:
    def replace(match: re.Match[str]) -> str:
        quoted = " ".join(match.group(1).split()).replace('"', "").rstrip("…").strip()
        plain = [s.replace('"', "").replace(CLOSE_QUOTE, "") for s in strings]
        if quoted and not any(quoted in s for s in plain):
            result.bad_quotes.append(match.group(1))
        return " " * len(match.group())

    return _QUOTE.sub(replace, sentence)


def _blank_verbatim(sentence: str, strings: list[str]) -> str:
    """Blank out tool strings with digits that appear verbatim (ids, dates, formatted times)."""
    candidates = sorted(
        {s for s in strings if len(s) >= _MIN_VERBATIM_CHARS and any(ch.isdigit() for ch in s)}, key=len, reverse=True
    )
    for text in candidates:
        if text in sentence:
            sentence = sentence.replace(text, " " * len(text))
    # Dates (and ranges of them) are blanked only when a tool returned them (checked, not trusted).
    return sentence


def _claims(sentence: str, numbers: list[float], strings: list[str]):
    taken: list[tuple[int, int]] = []
    for match in _CLOCK.finditer(sentence):
        parts = [int(p) for p in match.groups() if p is not None]
        seconds = parts[0] * 3600 + parts[1] * 60 + parts[2] if len(parts) == 3 else parts[0] * 60 + parts[1]
        grounded = match.group() in strings or any(abs(n - seconds) <= 0.5 for n in numbers)
        taken.append(match.span())
        yield match.start(), match.group(), float(seconds), grounded
    for match in _NUMBER.finditer(sentence):
        if any(a <= match.start() < b for a, b in taken):
            continue
        whole, decimals, percent = match.group(1), match.group(2) or "", match.group(3)
        value = float(whole.replace(",", "") + decimals)
        places = len(decimals) - 1 if decimals else 0
        tolerance = 0.5 * 10.0**-places + 1e-9
        grounded = any(abs(n - value) <= tolerance for n in numbers)
        if percent and not grounded:
            grounded = any(abs(n * 100.0 - value) <= tolerance for n in numbers)
        yield match.start(), match.group().strip(), value, grounded
