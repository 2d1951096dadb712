"""The knowledge articles state the platform's thresholds: each number written there must equal
the code constant the article names beside it, so an article cannot drift from the code.

Format (knowledge/*.md): a ``## Thresholds the platform uses`` section of bullets, each with the
numbers in bold and, in backticks, the constant(s) they come from (``module.NAME``, optionally
subscripted: ``TRIMP_COEFFICIENTS["M"][1]``). A number written with fewer decimals than the
constant equals it rounded to those decimals (``0.069`` for 2/29).
"""

from __future__ import annotations

import ast
import importlib
import re
from decimal import Decimal
from pathlib import Path

import pytest

KNOWLEDGE = Path(__file__).resolve().parents[2] / "knowledge"
ARTICLES = sorted(KNOWLEDGE.glob("*.md"))
SECTION = "## Thresholds the platform uses"
BOLD_NUMBER = re.compile(r"\*\*(-?\d+(?:\.\d+)?)\*\*")
REFERENCE = re.compile(r"`(athlete_platform(?:\.\w+)+)((?:\[[^\]`]+\])*)`")


def resolve(dotted: str, subscripts: str) -> object:
    """The value of ``module.NAME`` then its ``[key]`` subscripts (literal keys only)."""
    module_name, _, name = dotted.rpartition(".")
    value = getattr(importlib.import_module(module_name), name)
    for key in re.findall(r"\[([^\]]+)\]", subscripts):
        value = value[ast.literal_eval(key)]
    return value


def numbers_of(value: object) -> list[float]:
    if isinstance(value, tuple | list):
        return [float(v) for v in value]
    return [float(value)]  # type: ignore[arg-type]


def equals_as_written(written: str, value: float) -> bool:
    decimals = -Decimal(written).as_tuple().exponent
    return round(value, decimals) == float(written)


def threshold_bullets(text: str) -> list[str]:
    assert SECTION in text, f"no '{SECTION}' section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("- ")]


def test_there_are_eight_to_ten_articles_with_a_title():
    assert 8 <= len(ARTICLES) <= 10, [a.name for a in ARTICLES]
    for article in ARTICLES:
        assert article.read_text(encoding="utf-8").startswith("# "), article.name


@pytest.mark.parametrize("article", ARTICLES, ids=lambda p: p.stem)
def test_every_threshold_written_equals_its_code_constant(article):
    text = article.read_text(encoding="utf-8")
    bullets = threshold_bullets(text)
    assert bullets, f"{article.name}: the thresholds section lists nothing"
    for bullet in bullets:
        written = BOLD_NUMBER.findall(bullet)
        refs = REFERENCE.findall(bullet)
        assert written and refs, f"{article.name}: a bullet needs bold numbers and a constant: {bullet}"
        values = [v for dotted, subs in refs for v in numbers_of(resolve(dotted, subs))]
        assert len(written) == len(values), f"{article.name}: {written} vs {values} in: {bullet}"
        for w, v in zip(written, values, strict=True):
            assert equals_as_written(w, v), f"{article.name}: {w} is written, the code says {v}: {bullet}"
    # Bold numbers are reserved for checked thresholds.
    body = text.split(SECTION, 1)[0]
    assert not BOLD_NUMBER.search(body), f"{article.name}: a bold number outside the thresholds section"


def test_the_check_catches_drift():
    assert equals_as_written("0.069", 2 / 29) and equals_as_written("1.5", 1.5)
    assert not equals_as_written("0.068", 2 / 29) and not equals_as_written("1.4", 1.5)
    assert resolve("athlete_platform.domain.physiology.TRIMP_COEFFICIENTS", '["F"][0]') == 0.86
