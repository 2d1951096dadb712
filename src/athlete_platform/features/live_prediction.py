"""What a live-coaching response says, from the live model's raw output: pure, no Spark, no I/O.

The serving route (a layer above) calls `live_prediction` per request after scoring the vector
`OnlineFeatureView(store, features=LIVE_INPUTS, request_defaults={})` built; training uses
the same `features.live_inputs.predicted_finish_s`, so the number served is the number gated.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from athlete_platform.domain.limits import MAX_SPEED_M_PER_S
from athlete_platform.features import live_inputs as li
from athlete_platform.features import on_demand


@dataclass(frozen=True)
class LivePrediction:
    """One live prediction. Paces in s/km; None where a value does not exist (no distance left, no target)."""

    predicted_finish_time_s: float
    predicted_pace_s_per_km: float  # over the whole race
    remaining_time_s: float
    remaining_distance_m: float
    predicted_remaining_pace_s_per_km: float | None
    target_time_s: float | None = None
    required_pace_s_per_km: float | None = None  # to finish exactly at the target from here
    target_reachable: bool | None = None  # False: target already passed, or faster than any runner
    on_track: bool | None = None  # the predicted finish is at or under the target

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def live_prediction(
    model_output: float,
    *,
    elapsed_s: float,
    distance_done_m: float,
    race_distance_m: float,
    target_time_s: float | None = None,
) -> LivePrediction:
    """The response of one live request (model output = the raw XGBoost margin of LIVE_INPUTS).

    The finish time is `even_pace_finish_s * exp(model_output)`, at least the time already run.
    With `target_time_s`, `required_pace_s_per_km` is the pace to hold over the rest of the race
    to finish exactly on target; the target is unreachable when it has already passed (or is
    now), when no distance is left, or when that pace is faster than the fastest plausible run
    (`domain.limits.MAX_SPEED_M_PER_S["run"]`).

    Raises:
        ValueError: a value is not finite, or the distances or time are out of range (the
            serving layer validates requests first; this guards the arithmetic).
    """
    for name, value in (("elapsed_s", elapsed_s), ("distance_done_m", distance_done_m)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if not math.isfinite(race_distance_m) or race_distance_m <= 0:
        raise ValueError(f"race_distance_m must be a finite number > 0, got {race_distance_m!r}")
    if distance_done_m <= 0:
        raise ValueError("distance_done_m must be > 0: nothing to extrapolate from before the first metre")
    fraction = on_demand.fraction_done(race_distance_m, distance_done_m)
    even = on_demand.even_pace_finish_s(elapsed_s, fraction)
    finish = float(li.predicted_finish_s(model_output, even, elapsed_s))
    remaining_m = float(on_demand.remaining_distance_m(race_distance_m, distance_done_m))
    remaining_s = finish - elapsed_s
    out = LivePrediction(
        predicted_finish_time_s=finish,
        predicted_pace_s_per_km=finish / race_distance_m * 1000.0,
        remaining_time_s=remaining_s,
        remaining_distance_m=remaining_m,
        predicted_remaining_pace_s_per_km=remaining_s / remaining_m * 1000.0 if remaining_m > 0 else None,
    )
    if target_time_s is None:
        return out
    if not math.isfinite(target_time_s) or target_time_s <= 0:
        raise ValueError(f"target_time_s must be a finite number > 0, got {target_time_s!r}")
    left_s = target_time_s - elapsed_s
    fastest_pace = 1000.0 / MAX_SPEED_M_PER_S["run"]
    required = left_s / remaining_m * 1000.0 if remaining_m > 0 and left_s > 0 else None
    reachable = required is not None and required >= fastest_pace
    return LivePrediction(
        **{
            **out.to_dict(),
            "target_time_s": float(target_time_s),
            "required_pace_s_per_km": required if reachable else None,
            "target_reachable": reachable,
            "on_track": finish <= target_time_s,
        }
    )
