"""What a plausible session looks like: known sports, heart-rate range, top speeds."""

from __future__ import annotations

SPORTS: tuple[str, ...] = ("run", "ride", "swim", "other")
# Heart rates outside this range (bpm) are sensor errors, not physiology.
HR_MIN_BPM, HR_MAX_BPM = 25, 250
# Fastest plausible average speed per sport, m/s (world-class efforts sit well below).
MAX_SPEED_M_PER_S: dict[str, float] = {"run": 12.0, "ride": 30.0, "swim": 3.0, "other": 50.0}
# For a sport the table does not know.
DEFAULT_MAX_SPEED_M_PER_S = 50.0
# A session cannot start after its record landed; device clocks and time zones get this slack.
CLOCK_SKEW_TOLERANCE_S = 86_400
