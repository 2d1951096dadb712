"""The live pace coach's inputs and target: one definition for training, batch and serving.

A live request has the athlete's stored row (feature store + profile + last race, as for the
time estimator), the *passed* live values (`elapsed_s`, `distance_done_m`, `current_hr` (may be
null), `current_pace_s_per_km`: the pace over the last kilometre) and the request parameter
`race_distance_m`. `LIVE_INPUTS` are computed from those by the shared on-demand
transformations (`features.on_demand`), so `OnlineFeatureView(store, features=LIVE_INPUTS,
request_defaults={})` builds the same vector serving needs as `live_inputs` builds for a
training snapshot. No input needs `race_date` (a race in progress is today's), so the view asks
only for `race_distance_m`.

Target: ``log(finish_time_s / even_pace_finish_s)``, a residual over the even-pace projection
(`elapsed_s / fraction_done`). It is the even-pace baseline's own relative error, so it is in
the units the gate judges (finish-time MAPE) at every fraction done, it is defined from the
first metre to the finish (0 at the line), and the trees only learn the correction: how much a
runner at this point, with this pace trend, heart rate and pre-race expectation
(`log_prerace_over_even_pace`), still gains or loses. The prediction is
``even_pace_finish_s * exp(model_output)``. (Log of the remaining time over the even-pace
remaining time was the alternative; it blows up relative noise near the finish, where the
remaining time is small, while the finish-time error there is tiny.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from athlete_platform.features import on_demand

#: The live values the caller passes (serving) or a snapshot carries (training).
PASSED_LIVE_FEATURES = ("elapsed_s", "distance_done_m", "current_hr", "current_pace_s_per_km")
LIVE_STORED_INPUTS = (
    "ctl",
    "atl",
    "tsb",
    "distance_28d_m",
    "longest_session_28d_m",
    "avg_pace_28d_s_per_km",
    "vdot_best_90d",
    "weight_kg",
)
LIVE_INPUTS: tuple[str, ...] = (
    "distance_m",
    "log_distance_m",
    "fraction_done",
    "remaining_distance_m",
    "log_prerace_over_even_pace",
    "pace_ratio_so_far",
    "pace_ratio_vdot",
    "pace_ratio_28d",
    "hr_reserve_fraction",
    "base_log_pace",
    *LIVE_STORED_INPUTS,
    "sex_male",
)
#: The frame column that carries each request parameter in training snapshots.
FRAME_REQUEST_COLUMNS = {"race_distance_m": "distance_m"}
_NEEDS = on_demand.dependencies(LIVE_INPUTS)
#: What `live_inputs` needs in its frame: the race distance, the passed values, the stored ones.
REQUIRED_COLUMNS = tuple(
    dict.fromkeys((*FRAME_REQUEST_COLUMNS.values(), *PASSED_LIVE_FEATURES, *sorted(_NEEDS.stored)))
)


def live_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """The live model's input columns (float64, LIVE_INPUTS order) for each snapshot row of `frame`."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"live_inputs needs columns {missing}")
    values = {**{c: frame[c] for c in frame.columns}, **{p: frame[c] for p, c in FRAME_REQUEST_COLUMNS.items()}}
    computed = on_demand.compute(LIVE_INPUTS, values)
    return pd.DataFrame(computed, index=frame.index, columns=list(LIVE_INPUTS)).astype(float)


def even_pace_finish_s(frame: pd.DataFrame) -> np.ndarray:
    """The even-pace projection of each snapshot row (the target's baseline and the gate's first bar)."""
    values = {"race_distance_m": frame["distance_m"], **{c: frame[c] for c in ("elapsed_s", "distance_done_m")}}
    return np.asarray(on_demand.compute(["even_pace_finish_s"], values)["even_pace_finish_s"], float)


def training_target(finish_time_s, even_pace_s) -> np.ndarray:
    """What the model learns: log(finish time / even-pace finish)."""
    return np.log(np.asarray(finish_time_s, float) / np.asarray(even_pace_s, float))


def predicted_finish_s(model_output, even_pace_s, elapsed_s) -> np.ndarray:
    """Finish time from the model's raw output; never before the time already run."""
    finish = np.asarray(even_pace_s, float) * np.exp(np.asarray(model_output, float))
    return np.maximum(finish, np.asarray(elapsed_s, float))
