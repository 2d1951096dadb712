"""`generate`: simulate every athlete, add the dirt, and write the landing files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from athlete_platform.errors import ConfigError
from athlete_platform.ingestion.sample_data.config import (
    DIRT_STREAM,
    INVALID_RULES,
    MALFORMED_STREAM,
    NOTES_STREAM,
    RACE_DISTANCES_M,
    SPLITS_STREAM,
    TRAINING_STREAM,
    GeneratorConfig,
)
from athlete_platform.ingestion.sample_data.dirt import (
    apply_invalid_values,
    apply_missing_hr,
    draw_session_dirt,
    schedule_arrivals,
    session_lines,
    with_malformed_lines,
)
from athlete_platform.ingestion.sample_data.notes import session_notes
from athlete_platform.ingestion.sample_data.physiology import (
    expected_mape_floor,
    session_speed_mps,
    simulate_latent_fitness,
)
from athlete_platform.ingestion.sample_data.profile import draw_profile
from athlete_platform.ingestion.sample_data.records import (
    Line,
    athlete_update_lines,
    first_athlete_line,
    generic_notes,
    session_records,
    session_values,
)
from athlete_platform.ingestion.sample_data.splits import draw_pacing_slope, race_splits
from athlete_platform.ingestion.sample_data.summary import GenerationSummary
from athlete_platform.ingestion.sample_data.timezones import EPOCH_DATE, iso_z, offset_minutes_table, offset_str
from athlete_platform.ingestion.sample_data.training import (
    draw_calendar,
    draw_sessions,
    elevation_gain_m,
    session_distance_m,
)
from athlete_platform.ingestion.sample_data.writers import (
    build_manifest,
    previous_daily_files,
    remove_stale_daily_files,
    write_manifest,
    write_text_lines,
)

_DIRT_KINDS = ("exact_duplicate", "updated_duplicate", "late", "missing_hr")


class _Context:
    """Things shared by all athletes of one generation."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        n_days = config.n_days
        days = [config.start_date + timedelta(days=i) for i in range(n_days)]
        self.day_iso = [d.isoformat() for d in days]
        self.day_compact = [d.strftime("%Y%m%d") for d in days]
        self.epoch0_s = (config.start_date - EPOCH_DATE).days * 86400
        self.start_weekday = config.start_date.weekday()
        self.as_of_epoch_s = self.epoch0_s + (n_days + 1) * 86400
        self.offsets_min = offset_minutes_table(days)  # [timezone index, day index]
        self.offset_texts = {int(m): offset_str(int(m)) for m in np.unique(self.offsets_min)}


@dataclass(frozen=True)
class _AthleteOutput:
    """One athlete's lines (in emission order), latent truth and tallies."""

    athlete_id: str
    first_day: int
    lines: list[Line]
    vdot_per_day: np.ndarray  # from first_day on
    athlete_records: int
    session_records: int
    distinct_sessions: int
    race_ids: list[str]
    invalid_ids: dict[str, list[str]]  # rule -> session ids
    dirt_ids: dict[str, list[str]]  # dirt kind -> session ids


def _simulate_athlete(i: int, ctx: _Context) -> _AthleteOutput:
    """Simulate athlete ``i`` from its own random streams (training, dirt)."""
    config = ctx.config
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(TRAINING_STREAM, i)))
    dirt_rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(DIRT_STREAM, i)))
    athlete_id = f"ath_{i + 1:04d}"

    profile = draw_profile(rng, config.n_days)
    calendar = draw_calendar(rng, profile, config.n_days, ctx.start_weekday)
    sessions = draw_sessions(rng, profile, calendar)
    vdot_per_day, duration_s = simulate_latent_fitness(profile, calendar, sessions, config.race_noise_sigma)
    speed_mps = session_speed_mps(profile, sessions, vdot_per_day)
    distance_m = session_distance_m(sessions, calendar, speed_mps, duration_s)
    elevation_m = elevation_gain_m(profile, sessions, distance_m)

    day_abs = profile.first_day + sessions.day_rel  # day index from the generation's start
    day_offsets_min = ctx.offsets_min[profile.tz_index]
    dirt = draw_session_dirt(dirt_rng, config, sessions, day_abs)
    arrivals = schedule_arrivals(
        sessions, dirt, duration_s, day_abs, day_offsets_min, ctx.epoch0_s, ctx.as_of_epoch_s, config.n_days
    )
    values = session_values(
        sessions, duration_s, distance_m, arrivals.local_start_epoch_s, arrivals.utc_offset_min, ctx.offset_texts
    )
    invalid_pos = apply_invalid_values(values, dirt, sessions.start_of_day_s, profile.tz_name, ctx.as_of_epoch_s)
    apply_missing_hr(values, dirt.missing_hr)

    session_ids = [
        f"{athlete_id}-{ctx.day_compact[d]}-{q}" for d, q in zip(day_abs.tolist(), sessions.seq.tolist(), strict=True)
    ]
    splits = _race_splits(config, i, profile, calendar, sessions, vdot_per_day, duration_s, values)
    notes = _session_notes(config, i, profile, calendar, sessions, duration_s, dirt.invalid, ctx)
    records = session_records(
        session_ids, athlete_id, sessions, values, elevation_m, iso_z(arrivals.first_epoch_s), notes, splits
    )
    first_files, second_files = arrivals.first_file_day.tolist(), arrivals.second_file_day.tolist()
    first_arrivals, edit_times = arrivals.first_epoch_s.tolist(), iso_z(arrivals.second_epoch_s)
    lines = [first_athlete_line(athlete_id, profile, config.start_date, ctx.epoch0_s, day_offsets_min)]
    for s, record in enumerate(records):
        lines.extend(session_lines(record, s, dirt, first_files[s], second_files[s], first_arrivals[s], edit_times[s]))
    n_session_lines = len(lines) - 1
    updates = athlete_update_lines(
        rng, athlete_id, profile, config.start_date, config.n_days, ctx.epoch0_s, day_offsets_min
    )
    lines.extend(updates)

    def ids(mask: np.ndarray) -> list[str]:
        return [session_ids[s] for s in np.nonzero(mask)[0].tolist()]

    return _AthleteOutput(
        athlete_id=athlete_id,
        first_day=profile.first_day,
        lines=lines,
        vdot_per_day=vdot_per_day,
        athlete_records=1 + len(updates),
        session_records=n_session_lines,
        distinct_sessions=len(session_ids),
        race_ids=ids(sessions.is_race),
        invalid_ids={r: [session_ids[s] for s in pos] for r, pos in invalid_pos.items()},
        dirt_ids={
            "exact_duplicate": ids(dirt.exact_duplicate),
            "updated_duplicate": ids(dirt.updated_duplicate),
            "late": ids(dirt.late),
            "missing_hr": ids(dirt.missing_hr),
        },
    )


def _session_notes(config, i, profile, calendar, sessions, duration_s, invalid, ctx: _Context) -> list[str]:
    """The notes of athlete ``i``'s sessions from the athlete's own notes stream (drawn after the
    simulation, so no other value depends on them)."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(NOTES_STREAM, i)))
    day0 = config.start_date + timedelta(days=profile.first_day)
    return session_notes(
        rng,
        i,
        profile,
        calendar,
        sessions,
        duration_s,
        generic_notes(sessions, calendar),
        day0.timetuple().tm_yday - 1,
        (ctx.start_weekday + profile.first_day) % 7,
        invalid,
    )


def _race_splits(config, i, profile, calendar, sessions, vdot_per_day, duration_s, values) -> dict[int, list[dict]]:
    """Per-km splits of athlete ``i``'s races, by session position, from the athlete's own splits
    stream (drawn after everything else is known, so no other value depends on them)."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(SPLITS_STREAM, i)))
    slope = draw_pacing_slope(rng)
    out = {}
    for p, s in enumerate(sessions.race_index.tolist()):
        out[s] = race_splits(
            rng,
            slope,
            RACE_DISTANCES_M[int(calendar.race_distance_idx[p])],
            int(duration_s[s]),
            float(vdot_per_day[sessions.day_rel[s]]),
            float(calendar.race_z[p]),
            values.avg_hr_bpm[s],
            values.max_hr_bpm[s],
            profile.hr_rest_bpm,
        )
    return out


def _write_daily_files(ctx: _Context, buckets: list[list[tuple[int, int, int, str]]], export_dir: Path) -> list[dict]:
    """Write one file per day: its records sorted by arrival, plus malformed lines; returns
    per file its name, lines, malformed lines and bytes."""
    config = ctx.config
    malformed_rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(MALFORMED_STREAM,)))
    files = []
    for d, bucket in enumerate(buckets):
        record_lines = [t[3] for t in sorted(bucket)]
        lines, n_malformed = with_malformed_lines(malformed_rng, record_lines, config.malformed_rate)
        name = f"{ctx.day_iso[d]}.jsonl"
        n_bytes = write_text_lines(export_dir / name, lines)
        files.append({"name": name, "lines": len(lines), "malformed": n_malformed, "bytes": n_bytes})
    return files


def generate(config: GeneratorConfig, landing_dir: Path) -> GenerationSummary:
    """Write the landing files for `config` under `landing_dir` and return what was written.

    Files are replaced atomically; daily files listed by a previous manifest in the same
    directory but not part of this generation are removed (nothing else is touched)."""
    if not isinstance(config, GeneratorConfig):
        raise ConfigError(f"generate() needs a GeneratorConfig, got {type(config).__name__}.")
    landing_dir = Path(landing_dir)
    ctx = _Context(config)
    n_days = config.n_days

    # ---- simulate: every line goes to the bucket of its file day ----
    buckets: list[list[tuple[int, int, int, str]]] = [[] for _ in range(n_days)]  # (arrival_s, athlete, line no., line)
    latent_rows: list[str] = ["athlete_id,date,vdot_latent"]
    athlete_records = session_records = distinct_sessions = 0
    invalid: dict[str, list[str]] = {r: [] for r in INVALID_RULES}
    dirt: dict[str, list[str]] = {k: [] for k in _DIRT_KINDS}
    race_ids: list[str] = []
    for i in range(config.n_athletes):
        out = _simulate_athlete(i, ctx)
        for n, (file_day, arrival_s, line) in enumerate(out.lines):
            buckets[file_day].append((arrival_s, i, n, line))
        for j, v in enumerate(out.vdot_per_day.tolist()):
            latent_rows.append(f"{out.athlete_id},{ctx.day_iso[out.first_day + j]},{v:.4f}")
        athlete_records += out.athlete_records
        session_records += out.session_records
        distinct_sessions += out.distinct_sessions
        for r in INVALID_RULES:
            invalid[r].extend(out.invalid_ids[r])
        for k in _DIRT_KINDS:
            dirt[k].extend(out.dirt_ids[k])
        race_ids.extend(out.race_ids)

    invalid_t = {r: tuple(sorted(v)) for r, v in invalid.items()}
    dirt_t = {k: tuple(sorted(v)) for k, v in dirt.items()}
    n_invalid = sum(len(v) for v in invalid_t.values())

    # ---- daily files, with malformed lines from their own stream ----
    export_dir = landing_dir / "app_export"
    gen_dir = landing_dir / "_generator"
    manifest_path = gen_dir / "manifest.json"
    old_files = previous_daily_files(manifest_path)
    files_meta = _write_daily_files(ctx, buckets, export_dir)
    file_names = [f["name"] for f in files_meta]
    malformed_by_file = {f["name"]: f["malformed"] for f in files_meta}
    lines_total = sum(f["lines"] for f in files_meta)
    malformed_total = sum(f["malformed"] for f in files_meta)
    remove_stale_daily_files(export_dir, old_files, set(file_names))

    latent_path = gen_dir / "latent_fitness.csv"
    write_text_lines(latent_path, latent_rows)

    # ---- manifest and summary ----
    invalid_set = {s for v in invalid_t.values() for s in v}
    races_valid = sum(1 for s in race_ids if s not in invalid_set)
    floor = expected_mape_floor(float(config.race_noise_sigma))
    as_of = iso_z([ctx.as_of_epoch_s])[0]
    counts = {
        "files": n_days,
        "lines": lines_total,
        "malformed_lines": malformed_total,
        "records": athlete_records + session_records,
        "athlete_records": athlete_records,
        "athletes": config.n_athletes,
        "session_records": session_records,
        "distinct_session_ids": distinct_sessions,
        "distinct_valid_session_ids": distinct_sessions - n_invalid,
        "races": races_valid,
        "exact_duplicates": len(dirt_t["exact_duplicate"]),
        "updated_duplicates": len(dirt_t["updated_duplicate"]),
        "late_records": len(dirt_t["late"]),
        "missing_hr_sessions": len(dirt_t["missing_hr"]),
        "invalid_sessions": {r: len(v) for r, v in invalid_t.items()},
    }
    manifest = build_manifest(
        config, ctx.day_iso[0], ctx.day_iso[-1], as_of, floor, counts, invalid_t, dirt_t, files_meta
    )
    write_manifest(manifest_path, manifest)

    return GenerationSummary(
        landing_dir=str(landing_dir),
        files_written=n_days,
        file_names=tuple(file_names),
        lines_written=lines_total,
        malformed_lines=malformed_total,
        malformed_lines_by_file=malformed_by_file,
        athlete_records=athlete_records,
        athletes=config.n_athletes,
        session_records=session_records,
        distinct_session_ids=distinct_sessions,
        distinct_valid_session_ids=distinct_sessions - n_invalid,
        invalid_session_ids=invalid_t,
        races=races_valid,
        race_noise_sigma=float(config.race_noise_sigma),
        expected_mape_floor=floor,
        exact_duplicates=len(dirt_t["exact_duplicate"]),
        updated_duplicates=len(dirt_t["updated_duplicate"]),
        late_records=len(dirt_t["late"]),
        missing_hr_sessions=len(dirt_t["missing_hr"]),
        as_of_utc=as_of,
        manifest_path=str(manifest_path),
        latent_fitness_path=str(latent_path),
        dirt_session_ids=dirt_t,
    )
