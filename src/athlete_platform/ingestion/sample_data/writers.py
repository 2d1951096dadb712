"""Writing the landing files: atomic replacement, the daily JSONL files, the latent fitness
CSV, the manifest, and removal of daily files a previous generation left behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

from athlete_platform.ingestion.sample_data.config import (
    CTL_K,
    GENERATOR_VERSION,
    HR_VALID_RANGE,
    LATENT_MAX_SHIFT,
    LATENT_REF_FLOOR,
    LATENT_RELATIVE_GAIN,
    MAX_RUN_SPEED_MPS,
    RACE_DISTANCES_M,
    VDOT_RANGE,
    GeneratorConfig,
)
from athlete_platform.ingestion.sample_data.physiology import TRIMP_A_B

_DAY_FILE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}\.jsonl$")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (write a hidden temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def write_text_lines(path: Path, lines: list[str]) -> int:
    """Write lines as UTF-8, each ending in a newline (no lines: an empty file); returns the bytes written."""
    data = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    write_atomic(path, data)
    return len(data)


def previous_daily_files(manifest_path: Path) -> list[str]:
    """Daily file names listed by an earlier manifest (none if it is missing or unreadable)."""
    try:
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        return [f["name"] for f in old.get("files", []) if isinstance(f, dict) and isinstance(f.get("name"), str)]
    except (OSError, ValueError, AttributeError):
        return []


def remove_stale_daily_files(export_dir: Path, previous_names: list[str], current_names: set[str]) -> None:
    """Delete daily files of a previous generation that this one did not write (nothing else)."""
    for name in previous_names:
        if name not in current_names and _DAY_FILE_RE.match(name):
            with contextlib.suppress(FileNotFoundError):
                (export_dir / name).unlink()


def build_manifest(
    config: GeneratorConfig,
    first_day: str,
    last_day: str,
    as_of_utc: str,
    expected_mape_floor: float,
    counts: dict,
    invalid_session_ids: dict[str, tuple[str, ...]],
    dirt_session_ids: dict[str, tuple[str, ...]],
    files: list[dict],
) -> dict:
    """The manifest: seed and config, noise floor, counts, dirt ids, validation rules, the
    latent model, and every daily file."""
    return {
        "generator": "athlete_platform.ingestion.sample_data",
        "generator_version": GENERATOR_VERSION,
        "seed": int(config.seed),
        "config": config.to_dict(),
        "race_noise_sigma": float(config.race_noise_sigma),
        "expected_mape_floor": expected_mape_floor,
        "first_day": first_day,
        "last_day": last_day,
        "as_of_utc": as_of_utc,
        "layout": {
            "app_export": "app_export/YYYY-MM-DD.jsonl",
            "latent_fitness": "_generator/latent_fitness.csv",
        },
        "counts": counts,
        "invalid_session_ids": {r: list(v) for r, v in invalid_session_ids.items()},
        "dirt_session_ids": {k: list(v) for k, v in dirt_session_ids.items()},
        "validation_rules": {
            "duration_positive": "duration_s > 0",
            "distance_non_negative": "distance_m >= 0",
            "hr_range": f"avg_hr and max_hr null or within [{HR_VALID_RANGE[0]}, {HR_VALID_RANGE[1]}]",
            "speed_plausible": (
                f"sport == 'run' and duration_s > 0 implies distance_m / duration_s <= {MAX_RUN_SPEED_MPS}"
            ),
            "start_not_in_future": "start_time (as UTC) < as_of_utc",
        },
        "latent_model": {
            "trimp": "minutes * x * a * exp(b * x), x = (avg_hr - hr_rest) / (hr_max - hr_rest)",
            "trimp_a_b": {k: list(v) for k, v in TRIMP_A_B.items()},
            "ctl_k": CTL_K,
            "vdot_latent": "clamp(base_vdot + gain * (CTL(d-1) - ref)); ref = mean daily TRIMP; "
            "gain = relative_gain / max(ref, ref_floor); CTL starts at ref on the athlete's first day",
            "relative_gain": LATENT_RELATIVE_GAIN,
            "ref_floor": LATENT_REF_FLOOR,
            "max_shift": LATENT_MAX_SHIFT,
            "vdot_range": list(VDOT_RANGE),
            "race_distances_m": list(RACE_DISTANCES_M),
            "race_time": "daniels_time(vdot_latent(local race date), distance) * exp(eps), eps ~ N(0, sigma)",
        },
        "files": files,
    }


def write_manifest(path: Path, manifest: dict) -> None:
    """Write the manifest as indented JSON with sorted keys."""
    write_atomic(path, (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))
