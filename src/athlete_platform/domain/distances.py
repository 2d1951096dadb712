"""The standard race distances the platform predicts, with their names."""

from __future__ import annotations

RACE_DISTANCES_M: tuple[float, ...] = (5000.0, 10000.0, 21097.5, 42195.0)
DISTANCE_NAMES: dict[float, str] = {5000.0: "5K", 10000.0: "10K", 21097.5: "Half marathon", 42195.0: "Marathon"}
DISTANCE_SHORT_NAMES: dict[float, str] = {5000.0: "5K", 10000.0: "10K", 21097.5: "Half", 42195.0: "Marathon"}
