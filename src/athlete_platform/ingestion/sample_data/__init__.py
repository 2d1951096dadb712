"""Deterministic generator of app-export-like landing files.

The whole platform can run without outside data: `generate(config, landing_dir)` writes
what a fitness app's daily export would drop into the landing zone, with realistic dirt,
plus the ground truth a model can be scored against.

Layout written under ``landing_dir``::

    app_export/YYYY-MM-DD.jsonl      one UTF-8 JSON-lines file per calendar day
    _generator/manifest.json         seed, config, noise floor, dirt counts and ids
    _generator/latent_fitness.csv    athlete_id,date,vdot_latent (ground truth)

Every non-malformed line is one JSON object with ``record_type`` "athlete" or "session".
The same config always produces byte-identical files, and rewriting is idempotent.

Simulation, per athlete (vectorised with numpy, one random stream per athlete, so an
athlete's data does not depend on how many athletes are generated):

* a profile (sex, age, resting/max HR, LTHR, weight, base VDOT, habits, timezone);
* a training calendar (sessions/week, long-run day, seasonal volume, recovery weeks,
  an occasional break) and per-session sport, intensity, HR, duration and RPE;
* the true daily Banister TRIMP load and its CTL (EWMA, k = 1 - exp(-1/42));
  the latent VDOT of day d is ``base_vdot + gain * (CTL(d-1) - ref)`` where ``ref`` is the
  athlete's habitual load (the mean daily TRIMP) and ``gain = 8 / max(ref, 20)``,
  clamped to ``base_vdot +- 6`` and to [30, 85];
* paces from the latent VDOT through the Daniels-Gilbert equations; races every ~4-8
  weeks (never in the athlete's first 30 days) finish in the Daniels time at the latent
  VDOT of the race day times ``exp(eps)``, ``eps ~ N(0, race_noise_sigma)``.

Dirt (drawn from separate random streams, so changing a dirt rate never changes the
underlying training or the latent truth) is listed in the manifest and the summary.

Modules, by job: ``config`` (knobs and constants), ``profile`` and ``training`` (what each
athlete is and does), ``physiology`` (VDOT, TRIMP, latent fitness, speeds), ``timezones``,
``records`` (the JSON records), ``notes`` and ``note_templates`` (free-text notes from each
athlete's state, with their own dirt and stream; ``notes.note_topic`` labels them), ``dirt``,
``writers`` (files and manifest), ``summary`` and ``generator`` (`generate`).
"""

from __future__ import annotations

from athlete_platform.ingestion.sample_data.config import (
    CTL_K,
    HR_VALID_RANGE,
    INVALID_RULES,
    MAX_RUN_SPEED_MPS,
    RACE_DISTANCES_M,
    SPORTS,
    GeneratorConfig,
)
from athlete_platform.ingestion.sample_data.generator import generate
from athlete_platform.ingestion.sample_data.physiology import (
    banister_trimp,
    daniels_time_s,
    daniels_vdot,
    expected_mape_floor,
)
from athlete_platform.ingestion.sample_data.summary import GenerationSummary
from athlete_platform.ingestion.sample_data.timezones import utc_offset_minutes

__all__ = [
    "CTL_K",
    "GenerationSummary",
    "GeneratorConfig",
    "HR_VALID_RANGE",
    "INVALID_RULES",
    "MAX_RUN_SPEED_MPS",
    "RACE_DISTANCES_M",
    "SPORTS",
    "banister_trimp",
    "daniels_time_s",
    "daniels_vdot",
    "expected_mape_floor",
    "generate",
    "utc_offset_minutes",
]
