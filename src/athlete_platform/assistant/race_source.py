"""Where the `race_prediction` tool gets its numbers (config `assistant.race_prediction_source`).

- :class:`ApiRaceSource` (`api`): the deployment API's `POST /v1/athletes/{id}/race-predictions`
  over HTTP (the "external API" of the agent; README "Serving"). The API predicts from the online
  store's current row, so its `feature_date` is the latest one, whatever the question's as-of day.
- :class:`GoldTableRaceSource` (`gold_table`): the batch job's `gold.athlete_predictions`, the
  latest `as_of_date` on or before the question's day.

Each returns the prediction and the citation of where it came from.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from athlete_platform.assistant.citations import api_citation, table_citation
from athlete_platform.assistant.tools import ToolError
from athlete_platform.lakehouse.tables import ATHLETE_PREDICTIONS

if TYPE_CHECKING:
    from athlete_platform.assistant.lake import LakeReader
    from athlete_platform.config import Settings

#: Distances within this many metres are the same race (as ab-report matches them).
DISTANCE_TOLERANCE_M = 0.5


class ApiRaceSource:
    """`POST {base_url}/v1/athletes/{athlete_id}/race-predictions` with the configured API key."""

    def __init__(self, base_url: str, api_key: str | None, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"X-API-Key": api_key} if api_key else {}
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiRaceSource:
        serving = settings.serving
        base = settings.assistant.race_prediction_api_url or f"http://{serving.host}:{serving.port}"
        key = serving.api_key.get_secret_value() if serving.api_key else None
        return cls(base, key, settings.assistant.timeout_s)

    def predict(self, athlete_id: str, distance_m: float, as_of: date | None) -> dict[str, Any]:
        import httpx

        route = f"/v1/athletes/{athlete_id}/race-predictions"
        try:
            response = httpx.post(
                self.base_url + route,
                json={"race_distance_m": distance_m},
                headers=self.headers,
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise ToolError(
                f"The deployment API at {self.base_url} did not answer ({type(exc).__name__}: {exc}). Start it with "
                "`athlete-platform serve`, or set assistant.race_prediction_source: gold_table."
            ) from None
        if response.status_code != 200:
            raise ToolError(f"The deployment API answered {response.status_code} for {route}: {response.text[:300]}")
        body = response.json()
        prediction = body["predictions"][0]
        return {
            "predicted_finish_time_s": prediction["predicted_finish_time_s"],
            "predicted_pace_s_per_km": prediction["predicted_pace_s_per_km"],
            "feature_date": body.get("feature_date"),
            "model_name": body.get("model_name"),
            "model_version": body.get("model_version"),
            "source": "api",
            "citation": api_citation(
                route,
                body.get("request_id"),
                race_distance_m=distance_m,
                feature_date=body.get("feature_date"),
                model_version=body.get("model_version"),
            ),
        }


class GoldTableRaceSource:
    """The batch predictions: the athlete's row at `distance_m` of the latest as_of_date <= as_of."""

    def __init__(self, lake: LakeReader) -> None:
        self.lake = lake

    def predict(self, athlete_id: str, distance_m: float, as_of: date | None) -> dict[str, Any]:
        read = self.lake.athlete_rows(ATHLETE_PREDICTIONS, athlete_id, "as_of_date", None, as_of)
        rows = [r for r in read.rows if abs(r["race_distance_m"] - distance_m) <= DISTANCE_TOLERANCE_M]
        if not rows:
            raise ToolError(
                f"{read.table} has no prediction for athlete {athlete_id} at {distance_m:g} m"
                + (f" on or before {as_of}" if as_of else "")
                + " (batch inference predicts 5000, 10000, 21097.5 and 42195 m; run `athlete-platform predict`)."
            )
        row = rows[-1]  # sorted by as_of_date
        as_of_date = row["as_of_date"].isoformat()
        return {
            "predicted_finish_time_s": row["predicted_finish_time_s"],
            "predicted_pace_s_per_km": row["predicted_pace_s_per_km"],
            "feature_date": as_of_date,
            "model_name": row["model_name"],
            "model_version": row["model_version"],
            "source": "gold_table",
            "citation": table_citation(
                read.table, read.version, athlete_id=athlete_id, as_of_date=as_of_date, race_distance_m=distance_m
            ),
        }


def race_source_from_settings(settings: Settings, lake: LakeReader) -> ApiRaceSource | GoldTableRaceSource:
    if settings.assistant.race_prediction_source == "gold_table":
        return GoldTableRaceSource(lake)
    return ApiRaceSource.from_settings(settings)
