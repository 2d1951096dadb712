"""Race splits: the per-km `splits` list of a race record -> rows of `silver.race_splits`.

Splits travel inside the race's session record (a field `splits`: a list of
``{"km", "distance_m", "time_s", "avg_hr"}``), not as records of their own: they describe that
one session, arrive and are corrected with it (an updated record carries them again), and the
latest *valid* version of the session is the one whose splits count. So no landing or bronze
change was needed, and the splits of a session follow every rule of silver's deduplication.

Each split is read field by field (`ingestion.fields.SPLIT_FIELDS`: a number sent as text is
`splits_time_s_type`, not a silent null), then the race's list as a whole is judged: kms
numbered 1..n in order, positive distances and times, plausible heart rate and speed, and the
sums equal to the race's distance and finish time within `SPLIT_*_TOLERANCE_*`. A race whose
splits break any rule keeps its place in silver (its result is valid on its own); only its
splits go to quarantine, with every broken rule named (`splits_time_sum`, ...).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pandas as pd

from athlete_platform.domain.limits import (
    HR_MAX_BPM,
    HR_MIN_BPM,
    MAX_SPEED_M_PER_S,
    MAX_SPLITS_PER_RACE,
    SPLIT_DISTANCE_TOLERANCE_M,
    SPLIT_TIME_TOLERANCE_S,
)
from athlete_platform.ingestion.fields import SPLIT_FIELDS, read_fields

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

ACCEPTED, QUARANTINED, ABSENT = "accepted", "quarantined", "absent"
#: The input columns `race_split_results` needs (one row per race: its latest valid session record).
RACE_RECORD_COLUMNS = ("session_id", "athlete_id", "race_date", "distance_m", "finish_time_s", "payload", "source_file")
RESULT_SCHEMA = (
    "session_id string, km int, athlete_id string, race_date date, split_distance_m double, split_time_s double, "
    "split_avg_hr double, cumulative_distance_m double, cumulative_time_s double, "
    "status string, reason string, payload string, source_file string"
)
_REQUIRED = ("km", "distance_m", "time_s")


def check_splits(splits: object, distance_m: float, finish_time_s: float) -> tuple[list[dict], str | None]:
    """One race's `splits` value -> (typed splits in km order, None) or ([], the broken rules).

    Pure Python; never raises. Rules are named `splits_<rule>` (or `splits_<field>_<rule>` for a
    field of an element that has the wrong type), each once, in the order found.
    """
    if not isinstance(splits, list):
        return [], "splits_type"
    if not splits:
        return [], "splits_empty"
    if len(splits) > MAX_SPLITS_PER_RACE:
        return [], "splits_too_many"
    broken: list[str] = []
    typed: list[dict] = []
    for element in splits:
        if not isinstance(element, dict):
            broken.append("splits_element_type")
            continue
        values, field_rules = read_fields(element, SPLIT_FIELDS)
        broken.extend(f"splits_{rule}" for rule in field_rules)
        if not field_rules and any(values[name] is None for name in _REQUIRED):
            broken.append("splits_required_fields")
        typed.append(values)
    if not broken:
        broken = _list_rules(typed, distance_m, finish_time_s)
    reason = ",".join(dict.fromkeys(broken))
    return ([], reason) if reason else (typed, None)


def _list_rules(splits: list[dict], distance_m: float, finish_time_s: float) -> list[str]:
    """The rules of a list whose elements are well typed."""
    distances = [s["distance_m"] for s in splits]
    times = [s["time_s"] for s in splits]
    top_speed = MAX_SPEED_M_PER_S["run"]
    rules = {
        "splits_km_sequence": [s["km"] for s in splits] == list(range(1, len(splits) + 1)),
        "splits_distance_positive": all(d > 0 for d in distances),
        "splits_time_positive": all(t > 0 for t in times),
        "splits_hr_range": all(s["avg_hr"] is None or HR_MIN_BPM <= s["avg_hr"] <= HR_MAX_BPM for s in splits),
        "splits_speed_plausible": all(t <= 0 or d / t <= top_speed for d, t in zip(distances, times, strict=True)),
        "splits_distance_sum": abs(math.fsum(distances) - distance_m) <= SPLIT_DISTANCE_TOLERANCE_M,
        "splits_time_sum": abs(math.fsum(times) - finish_time_s) <= SPLIT_TIME_TOLERANCE_S,
    }
    return [name for name, ok in rules.items() if not ok]


def split_results(races: pd.DataFrame) -> pd.DataFrame:
    """Pure: race records (RACE_RECORD_COLUMNS) -> one row per accepted split, one row per race
    whose splits are quarantined (with `reason` and `payload`), one row per race without splits."""
    columns = [c.split()[0] for c in RESULT_SCHEMA.split(", ")]
    empty = dict.fromkeys(columns)  # every column in every row: an absent string is None, never NaN
    rows: list[dict] = []
    for race in races.itertuples(index=False):
        base = {**empty, "session_id": race.session_id, "athlete_id": race.athlete_id, "race_date": race.race_date}
        try:
            record = json.loads(race.payload)
        except (TypeError, ValueError):  # bronze holds JSON objects only; a payload-less row has no splits
            record = {}
        if not isinstance(record, dict) or record.get("splits") is None:
            rows.append({**base, "status": ABSENT})
            continue
        splits, reason = check_splits(record["splits"], float(race.distance_m), float(race.finish_time_s))
        if reason:
            rows.append(
                {
                    **base,
                    "status": QUARANTINED,
                    "reason": reason,
                    "payload": race.payload,
                    "source_file": race.source_file,
                }
            )
            continue
        distance = time = 0.0
        for split in splits:
            distance += split["distance_m"]
            time += split["time_s"]
            rows.append(
                {
                    **base,
                    "km": split["km"],
                    "split_distance_m": split["distance_m"],
                    "split_time_s": split["time_s"],
                    "split_avg_hr": split["avg_hr"],
                    "cumulative_distance_m": round(distance, 3),
                    "cumulative_time_s": round(time, 3),
                    "status": ACCEPTED,
                }
            )
    out = pd.DataFrame(rows, columns=columns)
    out["km"] = out["km"].astype("Int64")
    for column in ("split_distance_m", "split_time_s", "split_avg_hr", "cumulative_distance_m", "cumulative_time_s"):
        out[column] = out[column].astype("float64")
    return out


def _split_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for batch in batches:
        yield split_results(batch)


def race_split_results(race_records: DataFrame) -> DataFrame:
    """Spark: `split_results` over the race records (see RACE_RECORD_COLUMNS)."""
    return race_records.select(*RACE_RECORD_COLUMNS).mapInPandas(_split_batches, RESULT_SCHEMA)
