"""The generator's knobs (`GeneratorConfig`) and the fixed constants of its simulation."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from datetime import date, datetime

from athlete_platform.errors import ConfigError

GENERATOR_VERSION = 1

SPORTS: tuple[str, ...] = ("run", "ride", "swim")
RACE_DISTANCES_M: tuple[float, ...] = (5000.0, 10000.0, 21097.5, 42195.0)
RACE_LABELS: tuple[str, ...] = ("5K", "10K", "half marathon", "marathon")

INVALID_RULES: tuple[str, ...] = (
    "duration_positive",
    "distance_non_negative",
    "hr_range",
    "speed_plausible",
    "start_not_in_future",
)
HR_VALID_RANGE = (25, 250)
MAX_RUN_SPEED_MPS = 12.0

CTL_TIME_CONSTANT_DAYS = 42.0
CTL_K = 1.0 - math.exp(-1.0 / CTL_TIME_CONSTANT_DAYS)
LATENT_RELATIVE_GAIN = 8.0  # VDOT points for a CTL one full habitual load above the reference
LATENT_REF_FLOOR = 20.0  # TRIMP/day; keeps the gain sane for very low-volume athletes
LATENT_MAX_SHIFT = 6.0  # VDOT points either side of base_vdot
VDOT_RANGE = (30.0, 85.0)
RACE_MIN_DAYS_AFTER_FIRST_DAY = 30
FUTURE_MIN_DAYS, FUTURE_MAX_DAYS = 3650, 7300  # impossible start times land 10-20 years after as_of

# Session kinds (index into the per-kind tables of the simulation).
KIND_EASY, KIND_TEMPO, KIND_INTERVALS, KIND_LONG, KIND_RACE = range(5)

# Random streams, as SeedSequence spawn keys: (stream,) or (stream, athlete index).
TRAINING_STREAM = 1  # per athlete: profile, calendar, sessions, athlete re-emissions
DIRT_STREAM = 2  # per athlete: invalid values, missing HR, late arrivals, duplicates
MALFORMED_STREAM = 4  # whole generation: malformed lines in the daily files
SPLITS_STREAM = 5  # per athlete: pacing tendency, then each race's per-km splits (in race order)
NOTES_STREAM = 6  # per athlete: the free-text notes (state episodes, weather, wording, dirt)


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(
            f"GeneratorConfig.{name} must be an integer, got {value!r} ({type(value).__name__}); "
            f"pass a whole number between {lo} and {hi}."
        )
    if not lo <= int(value) <= hi:
        raise ConfigError(
            f"GeneratorConfig.{name} must be between {lo} and {hi}, got {value}; choose a value in that range."
        )


def _check_float(name: str, value: object, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(
            f"GeneratorConfig.{name} must be a finite number, got {value!r}; pass a value between {lo} and {hi}."
        )
    if not lo <= float(value) <= hi:
        raise ConfigError(
            f"GeneratorConfig.{name} must be between {lo} and {hi}, got {value}; choose a value in that range."
        )


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of the generator. Rates are probabilities per session (per line for malformed).

    * ``duplicate_rate``: a session gets a second copy; half are exact (same line again),
      half are updated (same session_id, changed notes/rpe, later updated_at).
    * ``late_rate``: the session is written into the file of a day 1-3 days later.
    * ``missing_hr_rate``: avg_hr and max_hr are null (still a valid session).
    * ``invalid_rate``: a non-race session carries one impossible value (see INVALID_RULES).
    * ``malformed_rate``: per written record line, chance of an extra malformed line in
      the same file (a truncated copy of a record, or non-JSON garbage).
    """

    seed: int = 42
    n_athletes: int = 20
    n_days: int = 365
    start_date: date = date(2024, 1, 1)
    race_noise_sigma: float = 0.03
    duplicate_rate: float = 0.02
    late_rate: float = 0.02
    missing_hr_rate: float = 0.05
    invalid_rate: float = 0.005
    malformed_rate: float = 0.002

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("n_athletes", self.n_athletes, 1, 9999)
        _check_int("n_days", self.n_days, 1, 3660)
        if isinstance(self.start_date, datetime) or not isinstance(self.start_date, date):
            raise ConfigError(
                f"GeneratorConfig.start_date must be a datetime.date (not a datetime or a "
                f"string), got {self.start_date!r}; pass e.g. date(2024, 1, 1)."
            )
        if not 1971 <= self.start_date.year <= 2200:
            raise ConfigError(
                f"GeneratorConfig.start_date must be between 1971 and 2200, got "
                f"{self.start_date.isoformat()}; choose a date in that range."
            )
        _check_float("race_noise_sigma", self.race_noise_sigma, 0.0, 0.5)
        for name in ("duplicate_rate", "late_rate", "missing_hr_rate", "invalid_rate", "malformed_rate"):
            _check_float(name, getattr(self, name), 0.0, 1.0)

    def to_dict(self) -> dict:
        """The config as plain JSON values (for the manifest)."""
        return {
            "seed": int(self.seed),
            "n_athletes": int(self.n_athletes),
            "n_days": int(self.n_days),
            "start_date": self.start_date.isoformat(),
            "race_noise_sigma": float(self.race_noise_sigma),
            "duplicate_rate": float(self.duplicate_rate),
            "late_rate": float(self.late_rate),
            "missing_hr_rate": float(self.missing_hr_rate),
            "invalid_rate": float(self.invalid_rate),
            "malformed_rate": float(self.malformed_rate),
        }
