"""Free-text session notes written from each athlete's simulated state, with realistic dirt.

What a note says follows what the simulation knows about the athlete on that day:

* **heavy legs** when the load of the last 7 days is high against the last 28 (the same
  acute:chronic view as the platform's ACWR; days before the athlete's first day count at the
  athlete's habitual load), and always on a late session of the athlete's two highest-load ISO
  weeks (so "why was my load high" finds a note of the athlete about it);
* **niggles** (calf, knee, achilles): episodes that start more often after load spikes, last
  4-14 days and are written as starting, ongoing, then easing;
* **poor sleep / stress**: short episodes, more likely in heavy weeks;
* **weather**: a daily temperature from the athlete's climate and season (southern-hemisphere
  zones flipped) and rain days; notes on heat (>= 27 °C), frost (<= 0 °C) and rain;
* **race reports**: how the race went follows the race's own noise (a fast, ordinary or slow
  day), in the race's distance;
* **good days**: when the athlete is fresh (acute load well under chronic).

About a third of sessions get a state note; the rest keep the short generic note of
`records.generic_notes` ("tempo run"). Athletes in Berlin, São Paulo and some in the Americas
write part of their notes in German, Portuguese or Spanish. Dirt: empty and whitespace-only
notes, emoji, a few diary-length notes (2,500-4,500 characters: under the 10,000 a note may
have in silver), stray control characters (a NUL, Windows line ends: JSON escapes them, silver
removes them), and a note that tries to instruct an assistant.

Everything here is drawn from the athlete's own notes stream (`config.NOTES_STREAM`) after the
simulation is done, so no other generated value depends on the notes. `note_topic` tells which
topic a note text was written for (labels for evaluating retrieval).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np

from athlete_platform.ingestion.sample_data import note_templates as t
from athlete_platform.ingestion.sample_data.config import KIND_RACE
from athlete_platform.ingestion.sample_data.physiology import session_trimp
from athlete_platform.ingestion.sample_data.profile import AthleteProfile
from athlete_platform.ingestion.sample_data.records import pick
from athlete_platform.ingestion.sample_data.training import Sessions, TrainingCalendar

ACUTE_DAYS, CHRONIC_DAYS = 7, 28
HEAVY_RATIO_FROM = 1.15  # acute/chronic load at which heavy-legs notes start to appear
HEAVY_RATIO_FULL = 1.5  # ... and where they are most likely
HEAVY_NOTE_P = 0.55
FRESH_RATIO_BELOW = 0.85
GOOD_DAY_FRESH_P, GOOD_DAY_BASE_P = 0.3, 0.03
FORCED_HEAVY_WEEKS = 2  # the athlete's highest-load weeks that always carry a heavy-legs note
NIGGLE_HAZARD_BASE, NIGGLE_HAZARD_PER_RATIO = 0.004, 0.15  # per day, + per ratio point above 1.2
NIGGLE_DAYS = (4, 14)
NIGGLE_NOTE_P = 0.6
SLEEP_HAZARD_BASE, SLEEP_HAZARD_HEAVY = 0.012, 0.03  # per day; heavy: ratio above 1.3
SLEEP_DAYS = (2, 6)
SLEEP_NOTE_P = 0.45
HEAT_FROM_C, FROST_TO_C = 27.0, 0.0
WEATHER_NOTE_P = 0.4
RACE_REPORT_P = 0.9
RACE_GREAT_Z, RACE_TOUGH_Z = -0.5, 0.8  # the race's noise: below = a fast day, above = a slow one
EMOJI_P = 0.12
EMPTY_P, BLANK_P = 0.05, 0.01
# Diary-length notes are rare and bounded: each is several chunks of the most expensive text to
# embed (make run embeds every distinct chunk once; on a busy 2-core machine 0.2 % of sessions at
# up to 8,000 characters made embedding take minutes). About 8 in the default sample.
LONG_P = 0.0003
LONG_CHARS = (2500, 4500)
CONTROL_P = 0.002
INJECTION_P = 0.0015  # per session; athlete 1 (index 0) always has one, so any sample holds one

# Climate per time zone: (mean temperature °C, seasonal swing °C, rain-day probability).
_CLIMATE: dict[str, tuple[float, float, float]] = {
    "Europe/London": (11.0, 7.0, 0.35),
    "Europe/Berlin": (10.0, 10.0, 0.3),
    "Europe/Helsinki": (6.0, 12.0, 0.3),
    "America/New_York": (13.0, 12.0, 0.3),
    "America/Chicago": (10.0, 14.0, 0.3),
    "America/Denver": (10.0, 12.0, 0.2),
    "America/Los_Angeles": (18.0, 5.0, 0.1),
    "America/Sao_Paulo": (20.0, 4.0, 0.35),
    "Asia/Kolkata": (27.0, 5.0, 0.3),
    "Asia/Tokyo": (16.0, 10.0, 0.3),
    "Africa/Nairobi": (19.0, 2.0, 0.25),
    "Australia/Brisbane": (21.0, 5.0, 0.25),
}
_SOUTHERN = {"America/Sao_Paulo", "Australia/Brisbane"}
_TEMP_NOISE_C = 4.0
# Chance an athlete of a zone writes in another language, and the share of notes in it.
_LANGUAGE_OF_ZONE: dict[str, tuple[str, float]] = {
    "Europe/Berlin": ("de", 0.7),
    "America/Sao_Paulo": ("pt", 0.85),
    "America/Los_Angeles": ("es", 0.2),
    "America/Chicago": ("es", 0.15),
    "America/New_York": ("es", 0.1),
}
_OWN_LANGUAGE_SHARE = 0.6
_WHITESPACE = ("   ", "\n", " \t ")


@dataclass(frozen=True)
class AthleteDay:
    """The simulated state of one athlete per day (index 0 = the athlete's first day)."""

    load_ratio: np.ndarray  # mean load of the last 7 days / of the last 28 (the day included)
    niggle_part: np.ndarray  # index into BODY_PARTS, -1 when no niggle
    niggle_phase: np.ndarray  # 0 start, 1 ongoing, 2 easing
    niggle_side: np.ndarray  # 0 left, 1 right
    poor_sleep: np.ndarray
    temp_c: np.ndarray
    raining: np.ndarray


def _trailing_mean(padded: np.ndarray, n_days: int, window: int, pad: int) -> np.ndarray:
    """Mean of the ``window`` values ending on each day; ``padded`` has ``pad`` days before day 0."""
    c = np.concatenate(([0.0], np.cumsum(padded)))
    end = np.arange(n_days) + pad + 1
    return (c[end] - c[end - window]) / window


def load_per_day(profile: AthleteProfile, calendar: TrainingCalendar, sessions: Sessions, duration_s) -> np.ndarray:
    """The athlete's true daily load (Banister TRIMP, races with their result)."""
    trimp = session_trimp(profile, sessions, np.asarray(duration_s, dtype=float))
    return np.bincount(sessions.day_rel, weights=trimp, minlength=calendar.n_days)


def load_ratio(daily_load: np.ndarray) -> np.ndarray:
    """Acute:chronic load per day (7-day mean / 28-day mean), days before the first one at the
    athlete's habitual (mean) load, so a new athlete's first weeks are not all "spikes"."""
    n = len(daily_load)
    habitual = float(daily_load.mean()) if n else 0.0
    pad = CHRONIC_DAYS - 1
    padded = np.concatenate((np.full(pad, habitual), daily_load))
    acute = _trailing_mean(padded, n, ACUTE_DAYS, pad)
    chronic = _trailing_mean(padded, n, CHRONIC_DAYS, pad)
    return np.where(chronic > 0, acute / np.maximum(chronic, 1e-9), 1.0)


def _episodes(rng: np.random.Generator, hazard: np.ndarray, days: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Episodes starting on a day with probability ``hazard`` (not inside another one): per day the
    episode number (-1 none) and the day's position in it as 0 start, 1 ongoing, 2 last third."""
    n = len(hazard)
    u = rng.random(n)
    lengths = rng.integers(days[0], days[1] + 1, n)
    episode = np.full(n, -1, np.int64)
    phase = np.zeros(n, np.int64)
    j, k = 0, 0
    while j < n:
        if u[j] < hazard[j]:
            length = int(lengths[j])
            for m in range(min(length, n - j)):
                episode[j + m] = k
                phase[j + m] = 0 if m == 0 else (2 if m >= length * 2 / 3 else 1)
            j += length
            k += 1
        else:
            j += 1
    return episode, phase


def athlete_days(
    rng: np.random.Generator, profile: AthleteProfile, first_day_of_year: int, daily_load: np.ndarray
) -> AthleteDay:
    """Draw the athlete's daily state from the notes stream (a fixed draw order)."""
    n = len(daily_load)
    ratio = load_ratio(daily_load)
    niggle_hazard = NIGGLE_HAZARD_BASE + NIGGLE_HAZARD_PER_RATIO * np.maximum(ratio - 1.2, 0.0)
    niggle_ep, niggle_phase = _episodes(rng, niggle_hazard, NIGGLE_DAYS)
    n_ep = int(niggle_ep.max()) + 1 if n else 0
    ep_part, ep_side = rng.integers(0, len(t.BODY_PARTS), max(n_ep, 1)), rng.integers(0, 2, max(n_ep, 1))
    sleep_ep, _ = _episodes(rng, np.where(ratio > 1.3, SLEEP_HAZARD_HEAVY, SLEEP_HAZARD_BASE), SLEEP_DAYS)
    mean_c, swing_c, rain_p = _CLIMATE[profile.tz_name]
    peak_day = 17 if profile.tz_name in _SOUTHERN else 200  # warmest day of the year
    day_of_year = (first_day_of_year + np.arange(n)) % 365.25
    temp = mean_c + swing_c * np.cos(2 * np.pi * (day_of_year - peak_day) / 365.25)
    temp = temp + _TEMP_NOISE_C * rng.standard_normal(n)
    raining = rng.random(n) < rain_p
    has_niggle = niggle_ep >= 0
    return AthleteDay(
        load_ratio=ratio,
        niggle_part=np.where(has_niggle, ep_part[np.maximum(niggle_ep, 0)], -1),
        niggle_phase=niggle_phase,
        niggle_side=ep_side[np.maximum(niggle_ep, 0)],
        poor_sleep=sleep_ep >= 0,
        temp_c=temp,
        raining=raining,
    )


def highest_load_weeks(daily_load: np.ndarray, first_weekday: int, n_weeks: int) -> list[np.ndarray]:
    """The day indices of the athlete's ``n_weeks`` highest-load ISO weeks (Monday start; day 0
    falls on ``first_weekday``, Monday = 0), highest first."""
    week = (first_weekday + np.arange(len(daily_load))) // 7
    totals = np.bincount(week, weights=daily_load)
    order = np.argsort(-totals, kind="stable")[:n_weeks]
    return [np.nonzero(week == w)[0] for w in order.tolist() if totals[w] > 0]


def _language(rng: np.random.Generator, tz_name: str) -> str:
    lang, p = _LANGUAGE_OF_ZONE.get(tz_name, ("en", 0.0))
    return lang if rng.random() < p else "en"


def _pick_lang(family: dict[str, tuple[str, ...]], lang: str, u: float) -> str:
    return pick(family.get(lang, family["en"]), u)


def _state_note(
    s: int, day: int, sessions: Sessions, state: AthleteDay, race_pos: dict[int, int], calendar, lang: str, u
) -> tuple[str | None, str | None]:
    """(text, emoji key) of session ``s``'s state note, or (None, None) when it gets the generic
    one. ``u`` is the session's row of uniform draws."""
    if int(sessions.kind[s]) == KIND_RACE:
        if u[0] >= RACE_REPORT_P:
            return None, None
        p = race_pos[s]
        z = float(calendar.race_z[p])
        family = t.RACE_GREAT if z < RACE_GREAT_Z else (t.RACE_TOUGH if z > RACE_TOUGH_Z else t.RACE_SOLID)
        label = t.RACE_WORDS[lang if lang in t.RACE_WORDS else "en"][int(calendar.race_distance_idx[p])]
        return _pick_lang(family, lang, u[1]).format(label=label), "race_report"
    ratio = float(state.load_ratio[day])
    part = int(state.niggle_part[day])
    if part >= 0 and u[0] < NIGGLE_NOTE_P:
        family = (t.NIGGLE_START, t.NIGGLE_ONGOING, t.NIGGLE_BETTER)[int(state.niggle_phase[day])]
        words = t.PART_WORDS[lang]
        side = t.SIDES.get(lang, ("", ""))[int(state.niggle_side[day])]
        return _pick_lang(family, lang, u[1]).format(part=words[t.BODY_PARTS[part]], side=side), "niggle"
    heavy_p = HEAVY_NOTE_P * min(max((ratio - HEAVY_RATIO_FROM) / (HEAVY_RATIO_FULL - HEAVY_RATIO_FROM), 0.0), 1.0)
    if u[2] < heavy_p:
        return _pick_lang(t.HEAVY_LEGS, lang, u[1]), "heavy_legs"
    if state.poor_sleep[day] and u[3] < SLEEP_NOTE_P:
        return _pick_lang(t.POOR_SLEEP, lang, u[1]), "poor_sleep"
    temp = float(state.temp_c[day])
    if u[4] < WEATHER_NOTE_P:
        if temp >= HEAT_FROM_C:
            return _pick_lang(t.HEAT, lang, u[1]).format(temp=round(temp)), "heat"
        if temp <= FROST_TO_C:
            return _pick_lang(t.COLD, lang, u[1]).format(temp=round(temp)), "cold"
        if state.raining[day]:
            return _pick_lang(t.RAIN, lang, u[1]), "rain"
    good_p = GOOD_DAY_FRESH_P if ratio < FRESH_RATIO_BELOW and part < 0 else GOOD_DAY_BASE_P
    if u[5] < good_p:
        return _pick_lang(t.GOOD_DAY, lang, u[1]), "good_day"
    return None, None


def _diary(rng: np.random.Generator, core: str) -> str:
    """A diary-length note: the session's own sentence, then neutral paragraphs."""
    target = int(rng.integers(LONG_CHARS[0], LONG_CHARS[1] + 1))
    parts = [t.DIARY_OPENING, core] if core else [t.DIARY_OPENING]
    size = sum(len(p) + 2 for p in parts)
    while size < target:
        sentences = [t.DIARY_FILLER[int(i)] for i in rng.integers(0, len(t.DIARY_FILLER), 4)]
        paragraph = " ".join(sentences)
        parts.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(parts)[:target].rstrip()


def session_notes(
    rng: np.random.Generator,
    athlete_index: int,
    profile: AthleteProfile,
    calendar: TrainingCalendar,
    sessions: Sessions,
    duration_s: np.ndarray,
    generic: list[str],
    first_day_of_year: int,
    first_weekday: int,
    excluded: np.ndarray,
) -> list[str]:
    """The note of every session (in session order), from the athlete's notes stream.

    ``generic`` are the generic notes (kept where no state note is written); ``first_day_of_year``
    and ``first_weekday`` place the athlete's day 0 in the year and the week; ``excluded``
    marks sessions that must not carry a guaranteed note (they will be quarantined)."""
    n = len(generic)
    daily_load = load_per_day(profile, calendar, sessions, duration_s)
    state = athlete_days(rng, profile, first_day_of_year, daily_load)
    lang = _language(rng, profile.tz_name)
    u = rng.random((n, 6))
    u_lang, u_emoji, u_emoji_pick = rng.random(n), rng.random(n), rng.random(n)
    u_dirt, u_dirt_pick = rng.random(n), rng.random(n)
    race_pos = {int(s): p for p, s in enumerate(sessions.race_index.tolist())}
    day_l = sessions.day_rel.tolist()

    # Heavy-legs notes are guaranteed on the last valid non-race session of the top-load weeks.
    forced: set[int] = set()
    for days in highest_load_weeks(daily_load, first_weekday, FORCED_HEAVY_WEEKS):
        in_week = np.nonzero(np.isin(sessions.day_rel, days) & ~sessions.is_race & ~excluded)[0]
        if len(in_week):
            forced.add(int(in_week[-1]))

    notes: list[str] = []
    for s in range(n):
        note_lang = lang if u_lang[s] < _OWN_LANGUAGE_SHARE else "en"
        if s in forced:
            text, key = _pick_lang(t.HEAVY_LEGS, note_lang, float(u[s, 1])), "heavy_legs"
        else:
            text, key = _state_note(s, day_l[s], sessions, state, race_pos, calendar, note_lang, u[s].tolist())
        if text is None:
            text = generic[s]
        elif u_emoji[s] < EMOJI_P:
            text = f"{text} {pick(t.EMOJI[key], float(u_emoji_pick[s]))}"
        notes.append(text)

    # Dirt, never on a guaranteed note; the draws above are complete, so dirt rates move nothing else.
    d = u_dirt
    for s in range(n):
        if s in forced:
            continue
        if d[s] < EMPTY_P:
            notes[s] = ""
        elif d[s] < EMPTY_P + BLANK_P:
            notes[s] = pick(_WHITESPACE, float(u_dirt_pick[s]))
        elif d[s] < EMPTY_P + BLANK_P + LONG_P:
            core = "" if notes[s] == generic[s] else notes[s]
            notes[s] = _diary(rng, core)
        elif d[s] < EMPTY_P + BLANK_P + LONG_P + CONTROL_P:
            notes[s] = notes[s] + "\x00" if u_dirt_pick[s] < 0.5 else notes[s].replace(", ", ",\r\n", 1) + "\r\n"
        elif d[s] < EMPTY_P + BLANK_P + LONG_P + CONTROL_P + INJECTION_P:
            notes[s] = pick(t.PROMPT_INJECTION, float(u_dirt_pick[s]))
    if athlete_index == 0 and not any(note in t.PROMPT_INJECTION for note in notes):
        candidates = [s for s in range(n) if s not in forced and not sessions.is_race[s] and not excluded[s]]
        if candidates:
            s = candidates[int(rng.integers(0, len(candidates)))]
            notes[s] = t.PROMPT_INJECTION[0]
    return notes


# ------------------------------------------------------------------------------ topic labels


def _pattern(template: str) -> str:
    # A placeholder at either end adds nothing to a search and is dropped; one inside is a short
    # run within one line. Bounded, so a diary-length note is searched in linear time (an
    # unbounded ".+?" per placeholder backtracks cubically).
    pieces = re.split(r"\{(?:part|side|label|temp)\}", template)
    while not pieces[0].strip():
        pieces.pop(0)
    while not pieces[-1].strip():
        pieces.pop()
    return r"[^\n]{1,40}?".join(re.escape(p) for p in pieces)


@cache
def _topic_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    out = []
    for topic in t.TOPICS:
        templates = {tpl for family in t.TEMPLATES_BY_TOPIC[topic] for texts in family.values() for tpl in texts}
        # Longest first, so a specific sentence wins over a shorter one it contains.
        for tpl in sorted(templates, key=len, reverse=True):
            out.append((topic, re.compile(_pattern(tpl), re.IGNORECASE)))
    # The instruction note is checked first: it is what an evaluation must never miss.
    return tuple(sorted(out, key=lambda p: p[0] != "prompt_injection"))


def note_topic(text: str) -> str | None:
    """The topic (one of `note_templates.TOPICS`) a generated note was written for, or None for a
    generic note, an empty or blank one, and any text the generator does not write. Works on the
    edited versions (" (edited)" appended), with emoji, in every language and inside long notes."""
    if not isinstance(text, str) or not text.strip():
        return None
    for topic, pattern in _topic_patterns():
        if pattern.search(text):
            return topic
    return None


def niggle_body_part(text: str) -> str | None:
    """For a niggle note, the body part it names (one of `note_templates.BODY_PARTS`), else None."""
    if note_topic(text) != "niggle":
        return None
    lowered = text.lower()
    for part in t.BODY_PARTS:
        if any(words[part].lower().split()[-1] in lowered for words in t.PART_WORDS.values()):
            return part
    return None
