"""Session notes of the sample-data generator: driven by the athlete's state, with dirt, and
without moving any other generated value (pure Python + numpy, no Spark)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from athlete_platform.ingestion.fields import MAX_TEXT_CHARS
from athlete_platform.ingestion.sample_data import GeneratorConfig, banister_trimp, daniels_time_s, generate
from athlete_platform.ingestion.sample_data import note_templates as t
from athlete_platform.ingestion.sample_data.notes import LONG_CHARS, load_ratio, niggle_body_part, note_topic

CLEAN = GeneratorConfig(
    seed=3,
    n_athletes=30,
    n_days=365,
    duplicate_rate=0.0,
    late_rate=0.0,
    missing_hr_rate=0.0,
    invalid_rate=0.0,
    malformed_rate=0.0,
)
DIRTY = GeneratorConfig(seed=5, n_athletes=30, n_days=365, duplicate_rate=0.08)


def _records(root: Path) -> tuple[list[dict], dict[str, dict]]:
    """All record versions in file order, and the first athlete record per athlete."""
    records, athletes = [], {}
    for path in sorted((root / "app_export").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and obj.get("record_type") == "session":
                records.append(obj)
            elif isinstance(obj, dict) and obj.get("record_type") == "athlete":
                athletes.setdefault(obj["athlete_id"], obj)
    return records, athletes


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean_notes")
    generate(CLEAN, root)
    return _records(root)


@pytest.fixture(scope="module")
def latent(clean, tmp_path_factory):
    root = tmp_path_factory.mktemp("clean_latent")
    generate(CLEAN, root)
    rows = (root / "_generator" / "latent_fitness.csv").read_text(encoding="utf-8").split("\n")[1:-1]
    return {(a, d): float(v) for a, d, v in (row.split(",") for row in rows)}


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    root = tmp_path_factory.mktemp("dirty_notes")
    summary = generate(DIRTY, root)
    return (*_records(root), summary)


def _first_versions(records: list[dict]) -> list[dict]:
    """One record per session: the earliest version (the note as first written)."""
    first: dict[str, dict] = {}
    for r in records:
        if r["session_id"] not in first or r["updated_at"] < first[r["session_id"]]["updated_at"]:
            first[r["session_id"]] = r
    return list(first.values())


def _day(r: dict) -> date:
    return date.fromisoformat(r["start_time"][:10])  # the local date of the session


def _daily_loads(sessions: list[dict], athlete: dict) -> tuple[date, np.ndarray]:
    """The athlete's daily TRIMP from their records (clean data: every session has HR)."""
    days = [_day(r) for r in sessions]
    first = min(days)
    loads = np.zeros((max(days) - first).days + 1)
    for r, d in zip(sessions, days, strict=True):
        loads[(d - first).days] += banister_trimp(
            r["duration_s"], r["avg_hr"], athlete["hr_rest"], athlete["hr_max"], athlete["sex"]
        )
    return first, loads


# --------------------------------------------------------------------------- share and topics


def test_a_share_of_sessions_carries_a_state_note_the_rest_a_generic_one(clean):
    sessions, _ = clean
    topics = [note_topic(r["notes"]) for r in sessions]
    share = sum(x is not None for x in topics) / len(topics)
    assert 0.2 < share < 0.45, share
    assert set(topics) >= set(t.TOPICS), "every topic occurs"
    races = [note_topic(r["notes"]) for r in sessions if r["is_race"]]
    assert sum(x == "race_report" for x in races) > 0.8 * len(races)
    generic = [r["notes"] for r, x in zip(sessions, topics, strict=True) if x is None and r["notes"].strip()]
    assert len(generic) > 0.45 * len(sessions)
    assert sum(len(n) < 60 for n in generic) > 0.99 * len(generic), "generic notes are short (a few are diaries)"


def test_heavy_legs_notes_follow_load_spikes_and_mark_the_highest_load_week(clean):
    sessions, athletes = clean
    by_athlete: dict[str, list[dict]] = defaultdict(list)
    for r in sessions:
        by_athlete[r["athlete_id"]].append(r)
    heavy_ratio, other_ratio = [], []
    for aid, rows in by_athlete.items():
        first, loads = _daily_loads(rows, athletes[aid])
        ratio = load_ratio(loads)
        for r in rows:
            into = heavy_ratio if note_topic(r["notes"]) == "heavy_legs" else other_ratio
            into.append(ratio[(_day(r) - first).days])
        # The athlete's highest-load ISO week holds a heavy-legs note (what "why was my load high" finds).
        week = np.array([(first.toordinal() + j - 1) // 7 for j in range(len(loads))])  # ordinal 1 = a Monday
        top = int(np.bincount(week - week[0], weights=loads).argmax()) + week[0]
        in_top = [r for r in rows if (_day(r).toordinal() - 1) // 7 == top]
        assert any(note_topic(r["notes"]) == "heavy_legs" for r in in_top), aid
    assert np.mean(heavy_ratio) > np.mean(other_ratio) + 0.15, (np.mean(heavy_ratio), np.mean(other_ratio))
    assert np.median(heavy_ratio) > 1.15


def test_race_reports_follow_how_the_race_went(clean, latent):
    """A race ends in the Daniels time at the latent VDOT times the race's noise: a "new PB"
    report is a faster day than that, a "blew up" one a slower day."""
    sessions, _ = clean
    great, tough = [], []
    for r in sessions:
        if not r["is_race"] or note_topic(r["notes"]) != "race_report":
            continue
        ratio = r["duration_s"] / daniels_time_s(latent[(r["athlete_id"], r["start_time"][:10])], r["distance_m"])
        text = r["notes"].lower()
        if any(w in text for w in ("pb", "bestzeit", "marca personal", "recorde", "negative split")):
            great.append(ratio)
        elif any(w in text for w in ("blew up", "legs gone", "eingebrochen", "me hundí", "quebrei")):
            tough.append(ratio)
    assert len(great) > 5 and len(tough) > 5
    assert max(great) < 1.0 < min(tough)


def test_weather_notes_follow_temperature_and_season(clean):
    sessions, athletes = clean
    hot_months, temps_hot, temps_cold = [], [], []
    for r in sessions:
        text = r["notes"]
        if note_topic(text) != "weather":
            continue
        m = re.search(r"(-?\d+)°C", text)
        if m and any(w in text for w in ("hot one", "heiß", "calor")):
            temps_hot.append(int(m.group(1)))
            if athletes[r["athlete_id"]]["timezone"] not in ("America/Sao_Paulo", "Australia/Brisbane"):
                hot_months.append(int(r["start_time"][5:7]))
        elif m:
            temps_cold.append(int(m.group(1)))
    assert temps_hot and temps_cold
    assert min(temps_hot) >= 27 and max(temps_cold) <= 0
    assert sum(5 <= m <= 9 for m in hot_months) > 0.8 * len(hot_months), "northern heat comes in summer"


def test_niggle_notes_name_a_body_part_and_come_in_episodes(clean):
    sessions, _ = clean
    niggles: dict[str, list[tuple[date, str]]] = defaultdict(list)
    for r in sessions:
        if note_topic(r["notes"]) == "niggle":
            part = niggle_body_part(r["notes"])
            assert part in t.BODY_PARTS, r["notes"]
            niggles[r["athlete_id"]].append((_day(r), part))
    assert {p for v in niggles.values() for _, p in v} == set(t.BODY_PARTS)
    # Within a few days, an athlete's niggle notes are about the same part (one episode).
    same = close = 0
    for notes in niggles.values():
        notes.sort()
        for (d0, p0), (d1, p1) in zip(notes, notes[1:], strict=False):
            if (d1 - d0).days <= 3:
                close += 1
                same += p0 == p1
    assert close > 20 and same > 0.9 * close


# --------------------------------------------------------------------------- dirt


def test_dirt_is_present_and_stays_within_what_silver_keeps(dirty):
    records, _, _ = dirty
    notes = [r["notes"] for r in records]
    assert sum(n == "" for n in notes) > 50
    assert any(n and not n.strip() for n in notes), "whitespace-only notes"
    long = [n for n in notes if len(n) > 1000]
    assert long and all(LONG_CHARS[0] - 40 <= len(n) <= MAX_TEXT_CHARS for n in long)
    assert all(len(n) <= MAX_TEXT_CHARS for n in notes)
    assert any("\x00" in n for n in notes) and any("\r\n" in n for n in notes), "control characters"
    assert any(re.search("[\U0001f300-\U0001faff]", n) for n in notes), "emoji"
    for marker in ("Beine", "piernas|carrera de|dormí|molestia", "pernas|prova de|dormi|sentindo"):
        assert any(re.search(marker, n) for n in notes), marker
    injections = [r for r in records if note_topic(r["notes"]) == "prompt_injection"]
    assert any(r["athlete_id"] == "ath_0001" for r in injections)
    assert "Ignore all previous instructions" in " ".join(r["notes"] for r in injections)


def test_edited_notes_keep_their_topic(dirty):
    records, _, summary = dirty
    versions: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        versions[r["session_id"]].append(r)
    edited = [v for sid, v in versions.items() if sid in set(summary.dirt_session_ids["updated_duplicate"])]
    assert len(edited) > 50
    for old, new in (sorted(v, key=lambda r: r["updated_at"]) for v in edited):
        assert new["notes"].startswith(old["notes"]) and new["notes"] != old["notes"]
        assert note_topic(new["notes"]) == note_topic(old["notes"])


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_notes_other_seed_other_notes(tmp_path):
    config = GeneratorConfig(seed=9, n_athletes=4, n_days=200)
    runs = []
    for name, cfg in (("a", config), ("b", config), ("c", GeneratorConfig(seed=10, n_athletes=4, n_days=200))):
        generate(cfg, tmp_path / name)
        runs.append(sorted((r["session_id"], r["updated_at"], r["notes"]) for r in _records(tmp_path / name)[0]))
    assert runs[0] == runs[1]
    assert [n for *_, n in runs[0]] != [n for *_, n in runs[2]]


def _values_digest(config: GeneratorConfig, root: Path) -> tuple[int, str]:
    """Every record field but the notes (with its file), and the latent truth, hashed."""
    generate(config, root)
    rows = []
    for path in sorted((root / "app_export").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and obj.get("record_type") in ("athlete", "session"):
                obj.pop("notes", None)
                rows.append(path.name + " " + json.dumps(obj, sort_keys=True))
    digest = hashlib.sha256("\n".join(sorted(rows)).encode())
    digest.update((root / "_generator" / "latent_fitness.csv").read_bytes())
    return len(rows), digest.hexdigest()


def test_notes_move_no_other_generated_value(tmp_path):
    """The digests were computed with the generator of main before notes had their own stream
    (commit 07a58d9): every value, arrival, file and duplicate is still bit for bit the same."""
    config = GeneratorConfig(
        seed=11,
        n_athletes=5,
        n_days=240,
        start_date=date(2024, 3, 1),
        duplicate_rate=0.1,
        late_rate=0.05,
        missing_hr_rate=0.05,
        invalid_rate=0.02,
        malformed_rate=0.01,
    )
    assert _values_digest(config, tmp_path / "a") == (
        1285,
        "7bea9f318a595ffccba2363a629b1b51a6740a36efdf1d2d836380e27792ac58",
    )
    assert _values_digest(GeneratorConfig(n_athletes=3, n_days=120), tmp_path / "b") == (
        238,
        "66384549d4f81e37f6642b6cee0de1e584ca377cf1d5e01d5065fe49e40cef5c",
    )


# --------------------------------------------------------------------------- note_topic


def _rendered(topic: str) -> list[str]:
    out = []
    for family in t.TEMPLATES_BY_TOPIC[topic]:
        for lang, texts in family.items():
            for text in texts:
                part = t.PART_WORDS[lang]["achilles"]
                out.append(text.format(part=part, side="left", label=t.RACE_WORDS[lang][2], temp=-4))
    return out


@pytest.mark.parametrize("topic", t.TOPICS)
def test_note_topic_recognises_every_sentence_of_its_topic(topic):
    for text in _rendered(topic):
        assert note_topic(text) == topic, text
        assert note_topic(text + " 🏃\u200d♀️ (edited)") == topic
        assert note_topic(text.capitalize()) == topic
        long = t.DIARY_OPENING + "\n\n" + text + "\n\n" + " ".join(t.DIARY_FILLER) * 10
        assert note_topic(long) == topic


def test_note_topic_is_none_for_generic_blank_and_foreign_text():
    assert note_topic("") is None and note_topic("  \n\t") is None
    for text in ("tempo run", "easy run, flat route 👍", "race: 10K", "long swim, with the club", "Lockerer Dauerlauf"):
        assert note_topic(text) is None, text
    assert note_topic(" ".join(t.DIARY_FILLER)) is None
    assert note_topic("My dog ate my watch.") is None
    assert note_topic(None) is None  # type: ignore[arg-type]


def test_niggle_body_part():
    assert niggle_body_part("niggle in my left calf, keeping an eye on it") == "calf"
    assert niggle_body_part("Knie tut immer noch weh") == "knee"
    assert niggle_body_part("pontada no tendão de Aquiles, encurtei o treino") == "achilles"
    assert niggle_body_part("legs heavy after the big week") is None


def test_note_topic_is_fast_on_the_longest_note():
    """No catastrophic backtracking: 4 ms of CPU here. CPU time, not wall time, so that a loaded
    machine that leaves the test waiting for a core cannot fail it."""
    text = "x" * 3 + " ".join(t.DIARY_FILLER) * 80  # ~ 8,000+ characters, no topic
    start = time.process_time()
    assert note_topic(text[:MAX_TEXT_CHARS]) is None
    assert time.process_time() - start < 0.5
