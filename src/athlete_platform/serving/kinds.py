"""What each servable model is: its registered name, inputs, feature view and output transform.

A `ModelKind` is everything the API needs to turn a request into a prediction for one model,
apart from the booster itself (which `models` loads per registry version):

- `inputs`: the signature's input names in order (a version whose signature differs is refused);
- `view`: the Spark-free `OnlineFeatureView` that builds those inputs from the online store,
  passed features and request parameters, with the same on-demand transformations as training
  and batch scoring;
- `output`: the raw model output and the input columns -> the prediction a person reads.

Adding a model: one more `ModelKind` in `KINDS`, its name in `config.ServedModelName`; the OIP
routes then serve it with no other change. A kind that is not `required` may have no version
registered yet: the API starts without it (its v1 route answers 503 saying what to train) and
the alias poll picks it up once it is registered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from athlete_platform.features import model_inputs as mi
from athlete_platform.features.live_inputs import LIVE_INPUTS
from athlete_platform.features.online_view import OnlineFeatureView
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.tables import RegisteredModel

#: raw model output (float32, one per row), input columns (float64, by name) -> prediction.
OutputTransform = Callable[[np.ndarray, Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class ModelKind:
    key: str  # the OIP model name, `serving.models` entry and inference-log model kind
    registered: RegisteredModel  # rendered to the registry name by `TableNames`
    inputs: tuple[str, ...]
    view: OnlineFeatureView
    output: OutputTransform
    output_name: str  # what `output` returns, with its unit
    route: str  # the v1 route that serves it (for messages)
    required: bool = True  # the API refuses to start while no alias of it exists


TIME_ESTIMATOR = ModelKind(
    key="time_estimator",
    registered=tables.TIME_ESTIMATOR,
    inputs=tuple(mi.MODEL_INPUTS),
    view=OnlineFeatureView(features=mi.MODEL_INPUTS),
    output=mi.predicted_time_s,  # the batch job's own function: no online/offline skew
    output_name="predicted_finish_time_s",
    route="race-predictions",
)


def raw_margin(model_output: np.ndarray, _inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The live model's raw output as it is: `log(finish / even-pace finish)`. The route turns it
    into the response with `features.live_prediction` (which needs the passed elapsed time and
    distance, not model inputs)."""
    return np.asarray(model_output, float)


LIVE = ModelKind(
    key="live_pace_coach",
    registered=tables.LIVE_PACE_COACH,
    inputs=tuple(LIVE_INPUTS),
    view=OnlineFeatureView(features=LIVE_INPUTS, request_defaults={}),
    output=raw_margin,
    output_name="log_finish_over_even_pace",
    route="live-coaching",
    required=False,
)

#: Every model the API can serve, by `key`.
KINDS: dict[str, ModelKind] = {kind.key: kind for kind in (TIME_ESTIMATOR, LIVE)}
LIVE_PACE_COACH = LIVE.key
