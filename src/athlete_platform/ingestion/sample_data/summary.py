"""`GenerationSummary`: what one `generate` call wrote."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GenerationSummary:
    """What `generate` wrote. Counts refer to the daily JSONL files only."""

    landing_dir: str
    files_written: int  # daily JSONL files (one per calendar day, possibly empty)
    file_names: tuple[str, ...]
    lines_written: int  # all lines of the daily files = records + malformed
    malformed_lines: int
    malformed_lines_by_file: Mapping[str, int]  # file name -> malformed lines (every file listed)
    athlete_records: int  # incl. re-emitted (updated) athlete records
    athletes: int
    session_records: int  # incl. duplicates and invalid sessions
    distinct_session_ids: int
    distinct_valid_session_ids: int
    invalid_session_ids: Mapping[str, tuple[str, ...]]  # rule name -> sorted session_ids
    races: int  # distinct valid race session_ids
    race_noise_sigma: float
    expected_mape_floor: float
    exact_duplicates: int  # extra byte-identical lines
    updated_duplicates: int  # extra lines with same session_id, later updated_at
    late_records: int  # sessions whose first record lands 1-3 days after the session day
    missing_hr_sessions: int
    as_of_utc: str
    manifest_path: str
    latent_fitness_path: str
    dirt_session_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def records_written(self) -> int:
        """Athlete and session records written (lines that are not malformed)."""
        return self.athlete_records + self.session_records
