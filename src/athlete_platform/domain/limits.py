"""What a plausible session and athlete look like: known sports, heart-rate range, top speeds, sizes."""

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
# The longest single session (24-hour races, 100-mile ultras fit); multi-day events are several.
MAX_SESSION_DURATION_S = 48 * 3600
# Total ascent of one session, m (the highest one-day ultras climb ~10 km).
MAX_ELEVATION_GAIN_M = 20_000.0
# Rating of perceived exertion, Borg CR-10.
RPE_MIN, RPE_MAX = 1, 10
# How far back before it landed a session may start (imported history older than this is a corrupt date).
MAX_HISTORY_DAYS = 20 * 365
# Body mass of an adult endurance athlete, kg.
MIN_WEIGHT_KG, MAX_WEIGHT_KG = 25.0, 250.0
# A race's per-km splits must add up to its finish time and distance within these (rounding of
# each split to 0.1 s / 0.1 m, device clocks); more is a broken export, not rounding.
SPLIT_TIME_TOLERANCE_S = 1.0
SPLIT_DISTANCE_TOLERANCE_M = 1.0
# More splits than this in one race is a corrupt list (a 100-mile ultra has 161 km splits).
MAX_SPLITS_PER_RACE = 500
