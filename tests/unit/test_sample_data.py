"""Tests of the deterministic landing-file generator (pure Python + numpy, no Spark)."""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from athlete_platform.errors import ConfigError
from athlete_platform.ingestion import sample_data as sd
from athlete_platform.ingestion.fields import MAX_TEXT_CHARS
from athlete_platform.ingestion.sample_data import (
    CTL_K,
    INVALID_RULES,
    RACE_DISTANCES_M,
    GeneratorConfig,
    daniels_time_s,
    daniels_vdot,
    expected_mape_floor,
    generate,
)
from athlete_platform.ingestion.sample_data.timezones import TIMEZONE_NAMES

DIRTY = GeneratorConfig(
    seed=7,
    n_athletes=60,
    n_days=365,
    race_noise_sigma=0.05,
    duplicate_rate=0.06,
    late_rate=0.06,
    missing_hr_rate=0.08,
    invalid_rate=0.03,
    malformed_rate=0.01,
)
NO_DIRT = dict(duplicate_rate=0.0, late_rate=0.0, missing_hr_rate=0.0, invalid_rate=0.0, malformed_rate=0.0)
ISO_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


# --------------------------------------------------------------------------- helpers


class Landing:
    """A generated landing directory, parsed."""

    def __init__(self, root: Path, summary: sd.GenerationSummary) -> None:
        self.root = root
        self.summary = summary
        self.manifest = json.loads((root / "_generator" / "manifest.json").read_text(encoding="utf-8"))
        self.files: dict[str, list[str]] = {}
        self.records: list[tuple[str, int, str, dict]] = []  # (file, position, raw line, object)
        self.malformed: list[tuple[str, str]] = []
        for path in sorted((root / "app_export").glob("*.jsonl")):
            text = path.read_bytes().decode("utf-8")
            lines = text.split("\n")
            assert lines[-1] == "", f"{path.name} must end with a newline (or be empty)"
            lines = lines[:-1]
            self.files[path.name] = lines
            for pos, line in enumerate(lines):
                obj = _parse(line)
                if obj is None:
                    self.malformed.append((path.name, line))
                else:
                    self.records.append((path.name, pos, line, obj))
        self.athletes = [r for _, _, _, r in self.records if r["record_type"] == "athlete"]
        self.sessions = [(f, p, line, r) for f, p, line, r in self.records if r["record_type"] == "session"]
        self.latent: dict[tuple[str, str], float] = {}
        rows = (root / "_generator" / "latent_fitness.csv").read_text(encoding="utf-8").split("\n")
        assert rows[0] == "athlete_id,date,vdot_latent" and rows[-1] == ""
        for row in rows[1:-1]:
            aid, day, v = row.split(",")
            self.latent[(aid, day)] = float(v)
        # latest athlete record per athlete
        self.athlete: dict[str, dict] = {}
        for a in sorted(self.athletes, key=lambda r: r["updated_at"]):
            self.athlete[a["athlete_id"]] = a
        # one (winning = latest updated_at) version per session id
        self.session: dict[str, dict] = {}
        for _, _, _, r in self.sessions:
            cur = self.session.get(r["session_id"])
            if cur is None or r["updated_at"] > cur["updated_at"]:
                self.session[r["session_id"]] = r
        self.invalid_ids = {s for ids in summary.invalid_session_ids.values() for s in ids}

    def valid_sessions(self) -> list[dict]:
        return [r for sid, r in self.session.items() if sid not in self.invalid_ids]


def _parse(line: str):
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if isinstance(obj, dict) and obj.get("record_type") in ("athlete", "session"):
        return obj
    return None


def _utc(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _build(tmp_path_factory, name: str, config: GeneratorConfig) -> Landing:
    root = tmp_path_factory.mktemp(name)
    return Landing(root, generate(config, root))


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> Landing:
    return _build(tmp_path_factory, "dirty", DIRTY)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Landing:
    return _build(tmp_path_factory, "clean", replace(DIRTY, race_noise_sigma=0.0, **NO_DIRT))


# --------------------------------------------------------------------------- pure functions


def test_daniels_matches_published_vdot_50_times():
    # Daniels' tables for VDOT 50: 5K 19:57, 10K 41:21, HM 1:31:35, M 3:10:49
    published = {5000.0: 1197, 10000.0: 2481, 21097.5: 5495, 42195.0: 11449}
    for dist, secs in published.items():
        assert daniels_time_s(50.0, dist) == pytest.approx(secs, rel=2e-3)


def test_daniels_inverse_roundtrip_and_vectorised_agrees_with_scalar():
    vdots = np.linspace(30, 85, 23)
    for dist in RACE_DISTANCES_M:
        t_vec = daniels_time_s(vdots, dist)
        t_scalar = np.array([daniels_time_s(float(v), dist) for v in vdots])
        np.testing.assert_allclose(t_vec, t_scalar, rtol=1e-9)
        np.testing.assert_allclose(daniels_vdot(dist, t_vec), vdots, rtol=1e-9)
        assert np.all(np.diff(t_vec) < 0), "higher VDOT must mean faster times"
    with pytest.raises(ValueError):
        daniels_time_s(float("nan"), 5000.0)


def test_banister_trimp_constants():
    # one hour at x = 0.5
    assert sd.banister_trimp(3600, 120, 60, 180, "M") == pytest.approx(60 * 0.5 * 0.64 * math.exp(1.92 * 0.5))
    assert sd.banister_trimp(3600, 120, 60, 180, "F") == pytest.approx(60 * 0.5 * 0.86 * math.exp(1.67 * 0.5))


@pytest.mark.parametrize("sigma", [0.005, 0.03, 0.1, 0.3])
def test_noise_floor_matches_closed_form(sigma):
    # E|exp(eps)-1| = exp(sigma^2/2) * (2 Phi(sigma) - 1) = exp(sigma^2/2) * erf(sigma/sqrt 2)
    exact = math.exp(sigma**2 / 2) * math.erf(sigma / math.sqrt(2))
    assert expected_mape_floor(sigma) == pytest.approx(exact, rel=1e-7)


def test_noise_floor_small_sigma_approximation_and_zero():
    assert expected_mape_floor(0.0) == 0.0
    sigma = 0.03
    approx = sigma * math.sqrt(2 / math.pi)
    assert expected_mape_floor(sigma) == pytest.approx(approx, rel=1e-3)
    assert expected_mape_floor(sigma) > approx  # exp(eps) is convex: the floor sits above the linearisation
    assert expected_mape_floor(0.2) > 0.2 * math.sqrt(2 / math.pi) * 1.005


def test_generator_utc_offsets_match_zoneinfo():
    # The tz database comes from the pinned `tzdata` package (constraints.txt), so no skip.
    import zoneinfo

    zones = {name: zoneinfo.ZoneInfo(name) for name in TIMEZONE_NAMES}
    day = date(2024, 1, 1)
    for _ in range(366):
        for name, zone in zones.items():
            local = datetime(day.year, day.month, day.day, 5, 0)
            expected = int(local.replace(tzinfo=zone).utcoffset().total_seconds() // 60)
            assert sd.utc_offset_minutes(name, day) == expected, (name, day)
        day += timedelta(days=1)


@pytest.mark.parametrize(
    "field, value",
    [
        ("n_athletes", 0),
        ("n_days", 0),
        ("seed", -1),
        ("seed", 1.5),
        ("n_athletes", True),
        ("duplicate_rate", 1.5),
        ("late_rate", -0.1),
        ("invalid_rate", float("nan")),
        ("race_noise_sigma", -0.01),
        ("start_date", "2024-01-01"),
        ("start_date", datetime(2024, 1, 1)),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ConfigError, match=field):
        GeneratorConfig(**{field: value})


def test_config_defaults():
    cfg = GeneratorConfig()
    assert (cfg.seed, cfg.n_athletes, cfg.n_days, cfg.start_date) == (42, 20, 365, date(2024, 1, 1))
    assert (cfg.race_noise_sigma, cfg.duplicate_rate, cfg.late_rate) == (0.03, 0.02, 0.02)
    assert (cfg.missing_hr_rate, cfg.invalid_rate, cfg.malformed_rate) == (0.05, 0.005, 0.002)


# --------------------------------------------------------------------------- determinism and layout


def test_same_config_gives_byte_identical_files(tmp_path):
    cfg = replace(DIRTY, n_athletes=12, n_days=120)
    s1 = generate(cfg, tmp_path / "a")
    s2 = generate(cfg, tmp_path / "b")
    t1, t2 = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert len(t1) == 120 + 2
    assert t1 == t2
    assert replace(s1, landing_dir="", manifest_path="", latent_fitness_path="") == replace(
        s2, landing_dir="", manifest_path="", latent_fitness_path=""
    )
    generate(replace(cfg, seed=8), tmp_path / "c")
    t3 = _tree(tmp_path / "c")
    assert t3.keys() == t1.keys()
    assert t3["app_export/2024-03-01.jsonl"] != t1["app_export/2024-03-01.jsonl"]


def test_rewrite_is_idempotent_and_drops_only_own_stale_files(tmp_path):
    cfg = replace(DIRTY, n_athletes=5, n_days=40)
    generate(cfg, tmp_path)
    first = _tree(tmp_path)
    generate(cfg, tmp_path)
    assert _tree(tmp_path) == first
    (tmp_path / "app_export" / "README.txt").write_text("not ours")
    summary = generate(replace(cfg, n_days=30), tmp_path)
    names = sorted(p.name for p in (tmp_path / "app_export").iterdir())
    assert names == sorted([*summary.file_names, "README.txt"])
    assert len(summary.file_names) == 30
    assert not list(tmp_path.rglob("*.tmp")), "no temporary files may be left behind"


def test_athlete_stream_does_not_depend_on_athlete_count(tmp_path):
    generate(replace(DIRTY, n_athletes=2, n_days=90), tmp_path / "two")
    generate(replace(DIRTY, n_athletes=5, n_days=90), tmp_path / "five")
    two = (tmp_path / "two" / "_generator" / "latent_fitness.csv").read_text().splitlines()
    five = (tmp_path / "five" / "_generator" / "latent_fitness.csv").read_text().splitlines()
    assert five[: len(two)] == two


def test_layout_and_manifest(dirty):
    root, s, m = dirty.root, dirty.summary, dirty.manifest
    expected = [(date(2024, 1, 1) + timedelta(days=i)).isoformat() + ".jsonl" for i in range(365)]
    assert sorted(dirty.files) == expected == list(s.file_names)
    assert s.files_written == 365
    assert m["seed"] == 7 and m["config"]["n_athletes"] == 60 and m["config"]["start_date"] == "2024-01-01"
    assert m["race_noise_sigma"] == 0.05 == s.race_noise_sigma
    assert m["expected_mape_floor"] == expected_mape_floor(0.05) == s.expected_mape_floor
    assert m["as_of_utc"] == s.as_of_utc == "2025-01-01T00:00:00Z"
    assert m["counts"]["distinct_valid_session_ids"] == s.distinct_valid_session_ids
    assert m["counts"]["races"] == s.races
    assert m["counts"]["invalid_sessions"] == {r: len(v) for r, v in s.invalid_session_ids.items()}
    assert {r: tuple(v) for r, v in m["invalid_session_ids"].items()} == dict(s.invalid_session_ids)
    assert set(m["invalid_session_ids"]) == set(INVALID_RULES)
    assert (root / "_generator" / "latent_fitness.csv").is_file()


# --------------------------------------------------------------------------- reconciliation


def test_counts_reconcile(dirty):
    s, m = dirty.summary, dirty.manifest
    total_lines = sum(len(v) for v in dirty.files.values())
    assert total_lines == s.lines_written == len(dirty.records) + len(dirty.malformed)
    assert len(dirty.malformed) == s.malformed_lines > 0
    per_file = Counter(f for f, _ in dirty.malformed)
    assert {f: n for f, n in s.malformed_lines_by_file.items() if n} == dict(per_file)
    assert {f["name"]: (f["lines"], f["malformed"]) for f in m["files"]} == {
        name: (len(lines), per_file.get(name, 0)) for name, lines in dirty.files.items()
    }
    assert len(dirty.athletes) == s.athlete_records
    assert len({a["athlete_id"] for a in dirty.athletes}) == s.athletes == 60
    assert len(dirty.sessions) == s.session_records
    assert s.records_written == len(dirty.records)
    assert len(dirty.session) == s.distinct_session_ids
    assert len(dirty.session) - len(dirty.invalid_ids) == s.distinct_valid_session_ids
    assert dirty.invalid_ids <= set(dirty.session)
    races = {sid for sid, r in dirty.session.items() if r["is_race"] and sid not in dirty.invalid_ids}
    assert len(races) == s.races > 100
    missing = {sid for sid, r in dirty.session.items() if r["avg_hr"] is None}
    assert missing == set(s.dirt_session_ids["missing_hr"]) and len(missing) == s.missing_hr_sessions > 0
    assert m["counts"]["lines"] == s.lines_written
    for key in (
        "athlete_records",
        "session_records",
        "malformed_lines",
        "exact_duplicates",
        "updated_duplicates",
        "late_records",
        "missing_hr_sessions",
        "distinct_session_ids",
    ):
        assert m["counts"][key] == getattr(s, key), key


def test_malformed_lines_are_truncated_records_or_garbage(dirty):
    truncated = 0
    for _, line in dirty.malformed:
        assert line.strip(), "no blank lines"
        with pytest.raises(ValueError):
            json.loads(line)
        if line.startswith('{"record_type":'):
            truncated += 1
    assert 0 < truncated < len(dirty.malformed)


def test_duplicates_exact_and_updated(dirty):
    s = dirty.summary
    by_id: dict[str, list[tuple[str, int, str, dict]]] = defaultdict(list)
    for f, p, line, r in dirty.sessions:
        by_id[r["session_id"]].append((f, p, line, r))
    groups = {sid: g for sid, g in by_id.items() if len(g) > 1}
    assert all(len(g) == 2 for g in groups.values())
    exact = {sid for sid, g in groups.items() if g[0][2] == g[1][2]}
    updated = set(groups) - exact
    assert exact == set(s.dirt_session_ids["exact_duplicate"]) and len(exact) == s.exact_duplicates > 0
    assert updated == set(s.dirt_session_ids["updated_duplicate"]) and len(updated) == s.updated_duplicates > 0
    assert any(g[0][0] != g[1][0] for sid, g in groups.items() if sid in exact), "some copies land in other files"
    stale_arrives_last = 0
    for sid in updated:
        (f1, p1, _, a), (f2, p2, _, b) = groups[sid]
        old, new = sorted([a, b], key=lambda r: r["updated_at"])
        assert old["updated_at"] < new["updated_at"]
        assert new["notes"] != old["notes"] and new["notes"].startswith(old["notes"])
        assert abs(new["rpe"] - old["rpe"]) <= 1
        assert {k: v for k, v in old.items() if k not in ("notes", "rpe", "updated_at")} == {
            k: v for k, v in new.items() if k not in ("notes", "rpe", "updated_at")
        }
        assert dirty.session[sid] is new
        if (f1, p1) > (f2, p2):
            a, b = b, a
        stale_arrives_last += b is old
    assert 0 < stale_arrives_last < len(updated), "file order must not always agree with updated_at"


def test_late_records_land_in_later_files(dirty):
    s = dirty.summary
    first_file: dict[str, str] = {}
    for f, _, _, r in dirty.sessions:
        first_file[r["session_id"]] = min(first_file.get(r["session_id"], f), f)
    late = set(s.dirt_session_ids["late"])
    assert len(late) == s.late_records > 0
    for sid, f in first_file.items():
        day = date.fromisoformat(f[:10])
        session_day = datetime.strptime(sid.split("-")[1], "%Y%m%d").date()
        if sid in late:
            assert 1 <= (day - session_day).days <= 3, sid
        else:
            assert day == session_day, sid
    for sid in late:  # late ones still look like the day they happened
        r = dirty.session[sid]
        if sid not in dirty.summary.invalid_session_ids["start_not_in_future"]:
            assert r["start_time"][:10] == datetime.strptime(sid.split("-")[1], "%Y%m%d").date().isoformat()
            assert _utc(r["updated_at"]) > _utc(r["start_time"])


# --------------------------------------------------------------------------- validity rules


def _violations(r: dict, as_of: datetime) -> set[str]:
    out = set()
    if r["duration_s"] <= 0:
        out.add("duration_positive")
    if r["distance_m"] < 0:
        out.add("distance_non_negative")
    for hr in (r["avg_hr"], r["max_hr"]):
        if hr is not None and not 25 <= hr <= 250:
            out.add("hr_range")
    if r["sport"] == "run" and r["duration_s"] > 0 and r["distance_m"] / r["duration_s"] > 12.0:
        out.add("speed_plausible")
    if _utc(r["start_time"]) >= as_of:
        out.add("start_not_in_future")
    return out


def test_invalid_sessions_break_exactly_their_listed_rule(dirty):
    s = dirty.summary
    as_of = _utc(s.as_of_utc)
    found: dict[str, set[str]] = defaultdict(set)
    for _, _, _, r in dirty.sessions:  # every version, duplicates included
        v = _violations(r, as_of)
        assert len(v) <= 1, (r["session_id"], v)
        for rule in v:
            found[rule].add(r["session_id"])
    for rule in INVALID_RULES:
        assert found[rule] == set(s.invalid_session_ids[rule]), rule
        assert len(s.invalid_session_ids[rule]) > 0, rule
    assert all(not dirty.session[sid]["is_race"] for sid in dirty.invalid_ids)
    listed = [sid for ids in s.invalid_session_ids.values() for sid in ids]
    assert len(listed) == len(set(listed)), "each invalid session is listed under one rule"


def test_future_start_times_are_far_ahead(dirty):
    for sid in dirty.summary.invalid_session_ids["start_not_in_future"]:
        assert _utc(dirty.session[sid]["start_time"]) > datetime(2034, 12, 31, tzinfo=UTC)


# --------------------------------------------------------------------------- physiology


def test_valid_sessions_are_physiologically_plausible(dirty):
    as_of = _utc(dirty.summary.as_of_utc)
    hrr_frac, rpes, easy_speed, easy_vdot = [], [], [], []
    with_hr = 0
    for r in dirty.valid_sessions():
        a = dirty.athlete[r["athlete_id"]]
        assert r["sport"] in ("run", "ride", "swim") and r["source"] == "app"
        assert isinstance(r["rpe"], int) and 1 <= r["rpe"] <= 10
        assert isinstance(r["duration_s"], int) and (10 if r["is_race"] else 15) * 60 <= r["duration_s"] <= 6 * 3600
        assert r["distance_m"] > 0 and r["elevation_gain_m"] >= 0
        assert _utc(r["start_time"]) < as_of and _utc(r["updated_at"]) < as_of
        speed = r["distance_m"] / r["duration_s"]
        assert {"run": (1.5, 7.0), "ride": (3.0, 12.0), "swim": (0.3, 1.5)}[r["sport"]][0] < speed
        assert speed < {"run": 7.0, "ride": 12.0, "swim": 1.5}[r["sport"]]
        if r["sport"] == "swim":
            assert r["elevation_gain_m"] == 0
        if r["avg_hr"] is not None:
            with_hr += 1
            assert a["hr_rest"] < r["avg_hr"] <= r["max_hr"] <= a["hr_max"]
            hrr_frac.append((r["avg_hr"] - a["hr_rest"]) / (a["hr_max"] - a["hr_rest"]))
            rpes.append(r["rpe"])
        if r["sport"] == "run" and not r["is_race"] and r["notes"].startswith(("easy run", "recovery jog")):
            easy_speed.append(speed)
            easy_vdot.append(dirty.latent[(r["athlete_id"], r["start_time"][:10])])
    assert with_hr > 1000
    assert np.corrcoef(hrr_frac, rpes)[0, 1] > 0.7, "harder sessions: higher HR and RPE"
    assert np.corrcoef(easy_vdot, easy_speed)[0, 1] > 0.7, "fitter athletes run faster"


def test_races_use_standard_distances_and_sane_schedule(dirty):
    races = [r for r in dirty.valid_sessions() if r["is_race"]]
    by_athlete = defaultdict(list)
    first_day = {}
    for aid, day in dirty.latent:
        first_day[aid] = min(first_day.get(aid, day), day)
    for r in races:
        assert r["sport"] == "run" and r["distance_m"] in RACE_DISTANCES_M
        assert isinstance(r["distance_m"], float)
        day = date.fromisoformat(r["start_time"][:10])
        assert day.weekday() >= 5, "races are on weekends"
        assert (day - date.fromisoformat(first_day[r["athlete_id"]])).days >= 30
        by_athlete[r["athlete_id"]].append(day)
        a = dirty.athlete[r["athlete_id"]]
        if r["avg_hr"] is not None:
            assert (r["avg_hr"] - a["hr_rest"]) / (a["hr_max"] - a["hr_rest"]) >= 0.79
        assert r["rpe"] >= 7
    assert {r["distance_m"] for r in races} == set(RACE_DISTANCES_M)
    gaps = [(b - a).days for days in by_athlete.values() for a, b in itertools.pairwise(sorted(days))]
    assert min(gaps) >= 14 and 28 <= float(np.median(gaps)) <= 56
    assert len(by_athlete) >= 50


def test_race_times_follow_latent_vdot_within_noise(dirty):
    sigma = dirty.summary.race_noise_sigma
    races = [r for r in dirty.valid_sessions() if r["is_race"]]
    vdot = np.array([dirty.latent[(r["athlete_id"], r["start_time"][:10])] for r in races])
    dist = np.array([r["distance_m"] for r in races])
    actual = np.array([r["duration_s"] for r in races], dtype=float)
    log_ratio = np.log(actual / daniels_time_s(vdot, dist))
    assert len(races) > 300
    assert abs(log_ratio.mean()) < 4 * sigma / math.sqrt(len(races))
    assert 0.85 * sigma < log_ratio.std() < 1.15 * sigma
    mape = np.mean(np.abs(daniels_time_s(vdot, dist) / actual - 1))
    assert mape == pytest.approx(dirty.summary.expected_mape_floor, rel=0.2)


def test_race_times_are_exact_daniels_times_without_noise(clean):
    races = [r for r in clean.valid_sessions() if r["is_race"]]
    assert len(races) > 300
    vdot = np.array([clean.latent[(r["athlete_id"], r["start_time"][:10])] for r in races])
    pred = daniels_time_s(vdot, np.array([r["distance_m"] for r in races]))
    actual = np.array([r["duration_s"] for r in races], dtype=float)
    assert np.max(np.abs(actual - pred)) < 1.0  # whole seconds, VDOT rounded to 4 decimals


def test_latent_vdot_is_driven_by_trimp_ctl(clean):
    """Recompute Banister TRIMP and CTL from the exported records: the latent VDOT of day d
    is affine in CTL(d-1) (plus the decaying start level) for every athlete."""
    daily = defaultdict(float)
    for r in clean.valid_sessions():
        a = clean.athlete[r["athlete_id"]]
        daily[(r["athlete_id"], r["start_time"][:10])] += sd.banister_trimp(
            r["duration_s"], r["avg_hr"], a["hr_rest"], a["hr_max"], a["sex"]
        )
    by_athlete = defaultdict(list)
    for (aid, day), v in sorted(clean.latent.items()):
        by_athlete[aid].append((day, v))
    fitted, ranges = 0, []
    for aid, rows in by_athlete.items():
        v = np.array([x for _, x in rows])
        ranges.append(v.max() - v.min())
        z_prev, z = [], 0.0
        for day, _ in rows:
            z_prev.append(z)
            z += CTL_K * (daily[(aid, day)] - z)
        j = np.arange(len(rows))
        X = np.column_stack([np.ones(len(rows)), z_prev, (1 - CTL_K) ** j])
        # days sitting on a clamp bound are excluded (plateaus at the athlete's min/max)
        free = (v > v.min() + 1e-9) & (v < v.max() - 1e-9)
        if free.sum() < 60:
            continue
        coef, *_ = np.linalg.lstsq(X[free], v[free], rcond=None)
        resid = v[free] - X[free] @ coef
        assert np.max(np.abs(resid)) < 2e-3, aid
        assert coef[1] > 0, "more training load, higher fitness"
        fitted += 1
    assert fitted >= 0.9 * len(by_athlete)
    assert 1.0 < float(np.median(ranges)) < 10.0, "a training year moves VDOT by a few points"


def test_dirt_rates_do_not_change_truth(dirty, clean, tmp_path):
    # same seed and sigma as `dirty`, no dirt: identical latent truth and identical races
    generate(replace(DIRTY, **NO_DIRT), tmp_path)
    assert (tmp_path / "_generator" / "latent_fitness.csv").read_bytes() == (
        dirty.root / "_generator" / "latent_fitness.csv"
    ).read_bytes()
    no_dirt = Landing(tmp_path, generate(replace(DIRTY, **NO_DIRT), tmp_path))

    def races(landing: Landing) -> dict:
        return {sid: (r["distance_m"], r["duration_s"]) for sid, r in landing.session.items() if r["is_race"]}

    assert races(no_dirt) == races(dirty)
    assert set(no_dirt.session) == set(dirty.session)
    # and sigma only changes race times, not the rest of the training
    assert {sid for sid, r in clean.session.items() if r["is_race"]} == set(races(dirty))


def test_zero_dirt_output_is_clean(clean):
    s = clean.summary
    assert s.malformed_lines == 0 and not clean.malformed
    assert s.exact_duplicates == s.updated_duplicates == s.late_records == s.missing_hr_sessions == 0
    assert all(len(v) == 0 for v in s.invalid_session_ids.values())
    assert len(clean.sessions) == s.distinct_session_ids == s.distinct_valid_session_ids
    assert s.expected_mape_floor == 0.0


# --------------------------------------------------------------------------- athletes and timestamps


def test_athletes_differ(dirty):
    latest = list(dirty.athlete.values())
    assert {a["sex"] for a in latest} == {"F", "M"}
    ages = np.array([(date(2024, 1, 1) - date.fromisoformat(a["birth_date"])).days / 365.25 for a in latest])
    assert ages.min() >= 18 and ages.max() < 66 and ages.max() - ages.min() > 30
    hr_rest = np.array([a["hr_rest"] for a in latest])
    hr_max = np.array([a["hr_max"] for a in latest])
    assert hr_rest.min() >= 40 and hr_rest.max() <= 70 and hr_rest.std() > 3
    assert np.all(np.abs(hr_max - (208 - 0.7 * ages)) < 25)
    assert np.corrcoef(ages, hr_max)[0, 1] < -0.6
    assert all(a["hr_rest"] < a["lthr"] < a["hr_max"] for a in latest)
    assert all(40 <= a["weight_kg"] <= 115 for a in latest)
    assert len({a["timezone"] for a in latest}) >= 5
    per_week = Counter(r["athlete_id"] for r in dirty.valid_sessions())
    rate = np.array([per_week[aid] / (sum(1 for (x, _) in dirty.latent if x == aid) / 7) for aid in dirty.athlete])
    assert rate.min() < 4.5 and rate.max() > 7.5
    sports = {aid: Counter() for aid in dirty.athlete}
    for r in dirty.valid_sessions():
        sports[r["athlete_id"]][r["sport"]] += 1
    run_share = np.array([c["run"] / sum(c.values()) for c in sports.values()])
    assert run_share.min() < 0.7 and run_share.max() > 0.9
    first_days = {min(d for (x, d) in dirty.latent if x == aid) for aid in dirty.athlete}
    assert len(first_days) > 1, "some athletes join later"


def test_athlete_records_first_and_updated(dirty):
    by_id = defaultdict(list)
    first_file = {}
    for f, _, _, r in dirty.records:
        if r["record_type"] == "athlete":
            by_id[r["athlete_id"]].append((f, r))
    for f, _, _, r in dirty.sessions:
        first_file[r["athlete_id"]] = min(first_file.get(r["athlete_id"], f), f)
    updated = 0
    for aid, recs in by_id.items():
        recs.sort(key=lambda x: x[0])
        first_latent = min(d for (x, d) in dirty.latent if x == aid)
        assert recs[0][0] == first_latent + ".jsonl" <= first_file[aid]
        stamps = [r["updated_at"] for _, r in recs]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        for (_, a), (_, b) in itertools.pairwise(recs):
            assert {k: v for k, v in a.items() if k not in ("weight_kg", "updated_at")} == {
                k: v for k, v in b.items() if k not in ("weight_kg", "updated_at")
            }
            updated += a["weight_kg"] != b["weight_kg"]
        assert set(recs[0][1]) == {
            "record_type",
            "athlete_id",
            "sex",
            "birth_date",
            "weight_kg",
            "hr_rest",
            "hr_max",
            "lthr",
            "timezone",
            "updated_at",
        }
    assert updated > 30


def test_start_times_carry_local_offsets(dirty):
    import zoneinfo  # stdlib; data from the pinned tzdata package

    offsets_per_athlete = defaultdict(set)
    future = set(dirty.summary.invalid_session_ids["start_not_in_future"])
    for _, _, _, r in dirty.sessions:
        assert ISO_LOCAL.match(r["start_time"]), r["start_time"]
        assert ISO_Z.match(r["updated_at"]), r["updated_at"]
        tz = dirty.athlete[r["athlete_id"]]["timezone"]
        start = datetime.fromisoformat(r["start_time"])
        try:
            expected = start.replace(tzinfo=zoneinfo.ZoneInfo(tz)).utcoffset()
        except zoneinfo.ZoneInfoNotFoundError:
            expected = None
        if expected is not None:
            assert start.utcoffset() == expected, (tz, r["start_time"])
        if r["session_id"] not in future:
            offsets_per_athlete[r["athlete_id"]].add(r["start_time"][-6:])
            assert 5 <= start.hour <= 21
            assert _utc(r["updated_at"]) > start + timedelta(seconds=max(r["duration_s"], 0))
    all_offsets = set().union(*offsets_per_athlete.values())
    assert len(all_offsets) >= 6 and any(o.startswith("-") for o in all_offsets)
    assert all(len(v) <= 2 for v in offsets_per_athlete.values())
    assert any(len(v) == 2 for v in offsets_per_athlete.values()), "DST switches show up"


def test_files_are_utf8_with_non_ascii_text(dirty):
    notes = [r["notes"] for _, _, _, r in dirty.sessions]
    assert any(not n.isascii() for n in notes)
    # Mostly short; a few diary-length ones (tests/unit/test_notes.py), all within silver's limit.
    assert all(isinstance(n, str) and len(n) <= MAX_TEXT_CHARS for n in notes)
    assert sum(len(n) < 80 for n in notes) > 0.95 * len(notes)
    raw = [p.read_bytes() for p in (dirty.root / "app_export").glob("*.jsonl")]
    assert any(not b.isascii() for b in raw), "non-ASCII text is written as UTF-8, not \\u escapes"


def test_session_record_schema(dirty):
    types = {
        "record_type": str,
        "session_id": str,
        "athlete_id": str,
        "sport": str,
        "start_time": str,
        "duration_s": int,
        "distance_m": float,
        "elevation_gain_m": float,
        "avg_hr": (int, type(None)),
        "max_hr": (int, type(None)),
        "rpe": int,
        "notes": str,
        "is_race": bool,
        "source": str,
        "updated_at": str,
    }
    for _, _, _, r in dirty.sessions:
        # races carry their per-km splits as a last field (tests/unit/test_race_splits.py checks them)
        assert list(r) == list(types) + (["splits"] if r["is_race"] else [])
        assert not r["is_race"] or isinstance(r["splits"], list)
        for k, t in types.items():
            assert isinstance(r[k], t) and not (t is int and isinstance(r[k], bool)), (k, r[k])
        assert re.fullmatch(r"ath_\d{4}-\d{8}-[12]", r["session_id"]) and r["session_id"].startswith(r["athlete_id"])


def test_generation_at_scale(tmp_path):
    """200 athletes x 365 days generate (no timing asserted: tests must not fail on a busy machine;
    the generation time is printed by `make run` and measured in the README)."""
    s = generate(GeneratorConfig(n_athletes=200, n_days=365), tmp_path)
    assert s.session_records > 40_000
