"""What a question asks, from its words alone: one of the question types the deterministic composer
knows, the week it is about, the race distances it names, and whether it asks about someone else.

Rules, not a model: each type has a pattern of words; the type with the most matching words wins,
ties go to the more specific type (:data:`INTENTS` order). No type matched means the question
cannot be grounded by these tools, and the composer says so. Nothing read from the data (notes
included) is ever classified: the plan depends on the question only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from athlete_platform.assistant.tools import distances_in

TRAINING_LOAD = "training_load"
FORM_FATIGUE = "form_fatigue"
INJURY_RISK = "injury_risk"
RACE_READINESS = "race_readiness"
NOTES = "notes"

_PATTERNS: dict[str, re.Pattern[str]] = {
    NOTES: re.compile(
        r"\bnote(s|d)?\b|\bi (wrote|write|mentioned|said|logged|complained)\b|\bmy (journal|log|comments?|diary)\b"
        r"|\bjournal\b|\bdiary\b|\bdid i (say|mention|write)\b"
    ),
    RACE_READINESS: re.compile(
        r"\brace\b|\bracing\b|\bmarathon\b|\bhalf\b|\b(5|10|21|42)\s?k(m)?\b|\bpredict|\bfinish(ing)? time\b"
        r"|\bready\b|\breadiness\b|\bpersonal best\b|\bpb\b|\bparkrun\b|\bgoal time\b|\bhow fast\b"
    ),
    INJURY_RISK: re.compile(
        r"\binjur|\brisk|\bacwr\b|\bacute\b|\bchronic\b|\bover-?train|\boverreach|\btoo (much|hard|fast|soon)\b"
        r"|\bmonoton|\bstrain\b|\bsafe(ly)?\b|\bdanger|\bworkload ratio\b"
    ),
    FORM_FATIGUE: re.compile(
        r"\bform\b|\bfatigue|\btired|\bfresh|\btsb\b|\bctl\b|\batl\b|\bfitness\b|\brecover|\bin shape\b"
        r"|\bstress balance\b|\bexhaust|\bworn out\b|\brested\b"
    ),
    TRAINING_LOAD: re.compile(
        r"\bload\b|\btrimp\b|\bvolume\b|\bhow much did i (train|run|ride)\b|\btrain(ed|ing)? (a lot|so much|hard)\b"
        r"|\b(hard|heavy|big|tough|busy) week\b|\bweek\b.*\b(hard|heavy|big|high|tough)\b|\bsessions?\b|\bworkouts?\b"
        r"|\bmileage\b|\btraining\b"
    ),
}
#: Ties go to the earlier type: the more specific question.
INTENTS: tuple[str, ...] = (NOTES, RACE_READINESS, INJURY_RISK, FORM_FATIGUE, TRAINING_LOAD)

_ATHLETE_ID = re.compile(r"\bath_\w+\b", re.IGNORECASE)
_SOMEONE_ELSE = re.compile(
    r"\b(other|another|all|every) (athlete|runner|user)s?\b|\bsomeone else\b|\bteam-?mates?\b"
    r"|\bmy (friend|partner|coach)'?s\b|\beveryone\b|\bcompared? (me )?(to|with) (others|them|him|her)\b"
)
_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_LAST_WEEK = re.compile(r"\b(last|previous|past) week\b|\bthe week before\b")


@dataclass(frozen=True)
class Question:
    """A question as the composer plans from it."""

    text: str
    intent: str | None  # None: no question type matched (the answer is "I don't have data for that")
    week: str  # "this" (the as-of day's week), "last", or "date" (the week of `day`)
    day: date | None = None
    distances: tuple[float, ...] = ()
    other_athlete: str | None = None  # set when it asks about someone other than the caller
    scores: dict[str, int] = field(default_factory=dict)


def classify(text: str, athlete_id: str) -> Question:
    """Classify `text`, asked by `athlete_id` (only to tell "my data" from someone else's)."""
    lowered = " ".join(text.lower().split())
    scores = {intent: len(_PATTERNS[intent].findall(lowered)) for intent in INTENTS}
    best = max(INTENTS, key=lambda intent: (scores[intent], -INTENTS.index(intent)))
    intent = best if scores[best] > 0 else None
    named = {m.group().lower() for m in _ATHLETE_ID.finditer(text)} - {athlete_id.lower()}
    other = sorted(named)[0] if named else (m.group() if (m := _SOMEONE_ELSE.search(lowered)) else None)
    day = None
    week = "this"
    if found := _DATE.search(lowered):
        try:
            day = date.fromisoformat(found.group(1))
            week = "date"
        except ValueError:
            day = None
    if day is None and _LAST_WEEK.search(lowered):
        week = "last"
    return Question(
        text=text,
        intent=intent,
        week=week,
        day=day,
        distances=tuple(distances_in(lowered)),
        other_athlete=other,
        scores=scores,
    )
