"""Snapshots of races in progress, from their per-km splits: the live model's training rows.

A snapshot is what a watch would show at a fraction `f` of a race: the distance done
(`f * distance`), the time elapsed there (the splits' cumulative time, linear within a split:
even pace inside a kilometre is all the splits tell), the pace over the last kilometre
(`current_pace_s_per_km`) and the time-weighted mean HR over that kilometre (`current_hr`, null
when the race has no HR). Fixed fractions (5 %, 10 %, ..., 95 %) rather than kilometre marks
give every race the same weight in every fraction bucket of the gate, whatever its distance.
Pure pandas / numpy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SNAPSHOT_FRACTIONS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))
CURRENT_WINDOW_M = 1000.0
SNAPSHOT_COLUMNS = ("session_id", "fraction", "distance_done_m", "elapsed_s", "current_pace_s_per_km", "current_hr")


def race_snapshots(
    splits: pd.DataFrame, race_distance_m: float, fractions: tuple[float, ...] = SNAPSHOT_FRACTIONS
) -> pd.DataFrame:
    """One race's splits (rows of silver.race_splits, any order) -> one snapshot per fraction."""
    ordered = splits.sort_values("km")
    ends = np.concatenate([[0.0], ordered["cumulative_distance_m"].to_numpy(float)])
    times = np.concatenate([[0.0], ordered["cumulative_time_s"].to_numpy(float)])
    hr = ordered["split_avg_hr"].to_numpy(float)
    done = np.asarray(fractions, float) * float(race_distance_m)
    start = np.maximum(done - CURRENT_WINDOW_M, 0.0)
    elapsed = np.interp(done, ends, times)
    window_s = elapsed - np.interp(start, ends, times)
    pace = window_s / (done - start) * 1000.0
    current_hr = np.array([_window_hr(ends, times, hr, a, b) for a, b in zip(start, done, strict=True)])
    return pd.DataFrame(
        {
            "session_id": ordered["session_id"].iloc[0],
            "fraction": np.asarray(fractions, float),
            "distance_done_m": done,
            "elapsed_s": elapsed,
            "current_pace_s_per_km": pace,
            "current_hr": current_hr,
        }
    )


def _window_hr(ends: np.ndarray, times: np.ndarray, hr: np.ndarray, start_m: float, end_m: float) -> float:
    """Time-weighted mean split HR over [start_m, end_m]; NaN when a split in it has no HR."""
    overlap = np.clip(np.minimum(ends[1:], end_m) - np.maximum(ends[:-1], start_m), 0.0, None)
    seconds = overlap * np.diff(times) / np.diff(ends)
    used = seconds > 0
    if not used.any() or np.isnan(hr[used]).any():
        return float("nan")
    return float(np.average(hr[used], weights=seconds[used]))


def snapshots(
    splits: pd.DataFrame, races: pd.DataFrame, fractions: tuple[float, ...] = SNAPSHOT_FRACTIONS
) -> pd.DataFrame:
    """Pure: silver.race_splits rows + races (session_id, distance_m) -> snapshots of every race
    that has splits (SNAPSHOT_COLUMNS), ordered by race and fraction."""
    distance = races.set_index("session_id")["distance_m"]
    frames = [
        race_snapshots(group, float(distance[session_id]), fractions)
        for session_id, group in splits.groupby("session_id", sort=True)
        if session_id in distance.index
    ]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in SNAPSHOT_COLUMNS}).astype({"session_id": object})
    return pd.concat(frames, ignore_index=True)[list(SNAPSHOT_COLUMNS)]


def snapshot_rows(race_rows: pd.DataFrame, race_snapshot_frame: pd.DataFrame) -> pd.DataFrame:
    """Each snapshot joined with its race's row (label, stored features of the day before, profile,
    previous race: `training.dataset.training_rows`); races without splits drop out."""
    return race_snapshot_frame.merge(race_rows, on="session_id", how="inner", validate="many_to_one")
