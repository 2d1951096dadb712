"""The deployment API: FastAPI routes over the in-memory models and the online store.

Routes (README "Serving" has a curl and a real response for each):

    POST /v1/athletes/{athlete_id}/race-predictions   time_estimator on stored features
    POST /v1/athletes/{athlete_id}/live-coaching      live_pace_coach with passed features
    POST /v1/events/sessions                          session events -> bronze.session_events (202)
    POST /v1/athletes/{athlete_id}/ask                the assistant: a grounded answer with citations
    GET  /v2, /v2/health/live, /v2/health/ready       Open Inference Protocol v2 ...
    GET  /v2/models/{name}[/versions/{v}][/ready]
    POST /v2/models/{name}[/versions/{v}]/infer       ... on the raw model signature
    GET  /status                                      models, A/B shares, inference-log counters

A v1 prediction goes: A/B variant from the athlete id (`variants`) -> that variant's model from
the current snapshot (`models`) -> ONE online-store lookup -> `OnlineFeatureView` vectors (the
on-demand transformations training and batch scoring use) -> `booster.inplace_predict` ->
the model kind's output transform (`model_inputs.predicted_time_s`, as the batch job). So a
race-prediction equals the `gold.athlete_predictions` row of the same athlete, feature day and
distance, to the bit. Then one record goes to the inference log queue.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import numpy as np
from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictStr, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from athlete_platform.config import Settings
from athlete_platform.errors import InvalidRequest
from athlete_platform.features import model_inputs as mi
from athlete_platform.features.live_prediction import live_prediction
from athlete_platform.ingestion.fields import check_athlete_id
from athlete_platform.lakehouse.tables import TableNames
from athlete_platform.online.backends import open_store
from athlete_platform.online.store import FEATURE_DATE, OnlineStore, OnlineStoreUnavailable
from athlete_platform.serving import events as session_events
from athlete_platform.serving import inference_log as ilog
from athlete_platform.serving.http_errors import error_answer, validation_answer
from athlete_platform.serving.kinds import KINDS, LIVE_PACE_COACH, TIME_ESTIMATOR
from athlete_platform.serving.middleware import GuardMiddleware
from athlete_platform.serving.models import (
    ModelUnavailable,
    ModelWatcher,
    RegistryLoader,
    ServedModel,
    Snapshot,
    describe,
)
from athlete_platform.serving.oip import OIPError, infer_response, model_metadata, parse_infer_request

log = logging.getLogger("athlete_platform.serving")

SERVER_NAME = "athlete-platform"
#: Most distances one race-prediction request may ask for.
MAX_DISTANCES = 32

Distance = Annotated[StrictFloat, Field(gt=0, le=1_000_000, allow_inf_nan=False)]


def _iso_text(value: Any) -> Any:
    """Dates and times come as ISO-8601 text: pydantic would also take a number as a Unix time."""
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an ISO-8601 text such as 2025-01-12 (a date) or 2025-01-12T08:30:00Z (a time)")
    return value


class RacePredictionRequest(BaseModel):
    """One athlete, one or several race distances, optionally the race day."""

    model_config = ConfigDict(extra="forbid")

    race_distance_m: Distance | Annotated[list[Distance], Field(min_length=1, max_length=MAX_DISTANCES)]
    race_date: dt.date | None = Field(
        None, description="race day; default: the day after the stored features' day, as the batch job predicts"
    )

    _race_date_text = field_validator("race_date", mode="before")(_iso_text)


class LiveCoachingRequest(BaseModel):
    """A race in progress: its distance, the passed (live) features, optionally day and time."""

    model_config = ConfigDict(extra="forbid")

    race_distance_m: Distance
    passed_features: dict[StrictStr, Any] = Field(default_factory=dict)
    target_time_s: Annotated[StrictFloat, Field(gt=0, le=14 * 86400, allow_inf_nan=False)] | None = Field(
        None, description="when given, the response says the pace to hold for the rest of the race to reach it"
    )
    race_date: dt.date | None = None
    ts: dt.datetime | None = None

    _iso = field_validator("race_date", "ts", mode="before")(_iso_text)


class AskRequest(BaseModel):
    """A question about the athlete of the path, optionally as of a day (default: the latest feature day)."""

    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(min_length=1, max_length=2000)
    as_of: dt.date | None = None

    _as_of_text = field_validator("as_of", mode="before")(_iso_text)


class StoreHandle:
    """The online store, opened at start-up and reopened after it failed (e.g. a redis restart)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: OnlineStore | None = None
        self._lock = threading.Lock()

    def get_rows(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        store = self._open()
        try:
            return store.get(keys)
        except OnlineStoreUnavailable:
            with self._lock:
                if self._store is store:
                    self._store = None
                    with contextlib.suppress(Exception):
                        store.close()
            raise

    def rows_count(self) -> int:
        return self._open().metadata().rows

    def _open(self) -> OnlineStore:
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self.settings)
                store = self._store
        return store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                with contextlib.suppress(Exception):
                    self._store.close()
                self._store = None


class _Fetched:
    """Rows already read (one lookup per request), offered to `OnlineFeatureView` as a store."""

    def __init__(self, rows: Mapping[str, Mapping[str, Any]]) -> None:
        self.rows = rows

    def get(self, keys: Sequence[str]) -> Mapping[str, Mapping[str, Any]]:
        return {k: self.rows[k] for k in keys if k in self.rows}


class ServiceState:
    """Everything the routes share: settings, models, store, inference log."""

    def __init__(self, settings: Settings, watcher: ModelWatcher, store: StoreHandle, log_: ilog.InferenceLog) -> None:
        self.settings = settings
        self.watcher = watcher
        self.store = store
        self.inference_log = log_
        self.started_at = ilog.utc_iso(dt.datetime.now(dt.UTC))
        self._assistant: Any = None
        self._assistant_lock = threading.Lock()

    def assistant(self) -> Any:
        """The assistant, built on first use; its race predictions come from this service in-process
        (the same function as the race-predictions route, without an HTTP hop to itself)."""
        if self._assistant is None:
            with self._assistant_lock:
                if self._assistant is None:
                    from athlete_platform.assistant.agent import Assistant

                    self._assistant = Assistant(self.settings, race_source=_InProcessRaces(self))
        return self._assistant

    @classmethod
    def load(cls, settings: Settings) -> ServiceState:
        """Load every served model from the registry and open the online store (start-up errors
        say what to run: `athlete-platform train`, `athlete-platform materialize`)."""
        from athlete_platform.errors import PlatformError

        loader = RegistryLoader(settings, TableNames.from_settings(settings.catalog))
        snapshot = loader.snapshot()
        store = StoreHandle(settings)
        if store.rows_count() == 0:
            raise PlatformError(
                f"The online store ({settings.online_store.backend}) holds no athlete rows, so every prediction "
                "would be a 404. Run `athlete-platform materialize` (after the feature pipeline) and start again."
            )
        watcher = ModelWatcher(loader, snapshot, settings.serving.alias_poll_s)
        inference_log = ilog.InferenceLog(settings.inference_log_path, settings.serving.inference_log_queue)
        return cls(settings, watcher, store, inference_log)

    def start(self) -> None:
        self.inference_log.start()
        self.watcher.start()

    def stop(self) -> None:
        self.watcher.stop()
        self.inference_log.close()
        self.store.close()


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def race_predictions(
    state: ServiceState, request_id: str, athlete_id: str, body: RacePredictionRequest
) -> dict[str, Any]:
    """The time estimator for one athlete and one or several distances (one store lookup)."""
    started = time.perf_counter()
    athlete = check_athlete_id(athlete_id)
    variant, model = state.watcher.snapshot.for_athlete(TIME_ESTIMATOR.key, athlete)
    distances = body.race_distance_m if isinstance(body.race_distance_m, list) else [body.race_distance_m]
    asked_date = body.race_date.isoformat() if body.race_date else None
    parameters = {"race_date": asked_date} if asked_date else {}
    rows = state.store.get_rows([athlete])
    vectors = model.kind.view.get_feature_vectors(
        [{"athlete_id": athlete}] * len(distances),
        None,
        [{"race_distance_m": d, **parameters} for d in distances],
        store=_Fetched(rows),
    )
    raw, times_s = model.predict(np.asarray(vectors, np.float64))
    bounds = model.interval(raw, np.asarray(vectors, np.float64))
    feature_date = str(rows[athlete][FEATURE_DATE])
    race_date = (
        asked_date
        or (dt.date.fromisoformat(feature_date) + dt.timedelta(days=mi.RACE_DAYS_AFTER_FEATURE_DATE)).isoformat()
    )
    predictions = [
        {
            "race_distance_m": float(d),
            "predicted_finish_time_s": float(t),
            # as the batch job: time / (distance / 1000)
            "predicted_pace_s_per_km": float(t / (d / 1000.0)),
            # the 80 % interval, when the version has one (as the batch job's columns)
            **({} if bounds is None else interval_fields(bounds[0][i], bounds[1][i])),
        }
        for i, (d, t) in enumerate(zip(distances, times_s, strict=True))
    ]
    response = {
        "request_id": request_id,
        "athlete_id": athlete,
        "variant": variant,
        "model_name": model.name,
        "model_version": model.version,
        "feature_date": feature_date,
        "race_date": race_date,
        "predictions": predictions,
    }
    state.inference_log.log(
        ilog.record(
            request_id=request_id,
            route="race-predictions",
            athlete_id=athlete,
            variant=variant,
            model_name=model.name,
            model_version=model.version,
            feature_date=feature_date,
            race_date=race_date,
            inputs={"race_distance_m": [float(d) for d in distances], "race_date": asked_date},
            outputs=[
                {"race_distance_m": p["race_distance_m"], "predicted_finish_time_s": p["predicted_finish_time_s"]}
                for p in predictions
            ],
            latency_ms=_ms_since(started),
        )
    )
    return response


def interval_fields(p10_s: float, p90_s: float) -> dict[str, float]:
    """The interval's fields of a race prediction, named as gold.athlete_predictions' columns."""
    return {"predicted_finish_time_p10_s": float(p10_s), "predicted_finish_time_p90_s": float(p90_s)}


def _live_progress(body: LiveCoachingRequest) -> tuple[float, float]:
    """(elapsed_s, distance_done_m) of a race in progress, or a 422 naming the field: the live
    prediction extrapolates from them, so unlike the other passed features they cannot be null."""
    values = []
    for name in ("elapsed_s", "distance_done_m"):
        value = body.passed_features.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise InvalidRequest(
                f"passed_features.{name} must be a number > 0 (the race so far), got {value!r}",
                field=f"passed_features.{name}",
            )
        values.append(float(value))
    elapsed_s, done_m = values
    if done_m > body.race_distance_m:
        raise InvalidRequest(
            f"passed_features.distance_done_m ({done_m:g} m) is beyond race_distance_m ({body.race_distance_m:g} m)",
            field="passed_features.distance_done_m",
        )
    return elapsed_s, done_m


def live_coaching(state: ServiceState, request_id: str, athlete_id: str, body: LiveCoachingRequest) -> dict[str, Any]:
    """The live model for a race in progress: stored features + passed features + the race ->
    predicted finish, pace, what is left, and with `target_time_s` the pace to hold to reach it."""
    started = time.perf_counter()
    athlete = check_athlete_id(athlete_id)
    variant, model = state.watcher.snapshot.for_athlete(LIVE_PACE_COACH, athlete)
    elapsed_s, done_m = _live_progress(body)
    parameters: dict[str, Any] = {"race_distance_m": body.race_distance_m}
    rows = state.store.get_rows([athlete])
    vector = model.kind.view.get_feature_vector(
        {"athlete_id": athlete}, body.passed_features, parameters, store=_Fetched(rows)
    )
    raw, _margin = model.predict(np.asarray([vector], np.float64))
    coached = live_prediction(
        float(raw[0]),
        elapsed_s=elapsed_s,
        distance_done_m=done_m,
        race_distance_m=body.race_distance_m,
        target_time_s=body.target_time_s,
    )
    feature_date = str(rows[athlete][FEATURE_DATE])
    output = coached.to_dict()
    race_date = body.race_date.isoformat() if body.race_date else None
    state.inference_log.log(
        ilog.record(
            request_id=request_id,
            route="live-coaching",
            athlete_id=athlete,
            variant=variant,
            model_name=model.name,
            model_version=model.version,
            feature_date=feature_date,
            race_date=race_date,
            inputs={
                "passed_features": dict(body.passed_features),
                **parameters,
                "target_time_s": body.target_time_s,
                "ts": body.ts.isoformat() if body.ts else None,
            },
            outputs=[{"race_distance_m": body.race_distance_m, **output}],
            latency_ms=_ms_since(started),
        )
    )
    return {
        "request_id": request_id,
        "athlete_id": athlete,
        "variant": variant,
        "model_name": model.name,
        "model_version": model.version,
        "feature_date": feature_date,
        "prediction": output,
    }


class _InProcessRaces:
    """The assistant's `race_prediction` tool inside the API: the race-predictions route's function."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state

    def predict(self, athlete_id: str, distance_m: float, as_of: dt.date | None) -> dict[str, Any]:
        from athlete_platform.assistant.citations import api_citation

        request_id = ilog.new_request_id()
        body = race_predictions(self.state, request_id, athlete_id, RacePredictionRequest(race_distance_m=distance_m))
        prediction = body["predictions"][0]
        return {
            **prediction,
            "feature_date": body["feature_date"],
            "model_name": body["model_name"],
            "model_version": body["model_version"],
            "source": "api",
            "citation": api_citation(
                f"/v1/athletes/{athlete_id}/race-predictions",
                request_id,
                race_distance_m=distance_m,
                feature_date=body["feature_date"],
                model_version=body["model_version"],
            ),
        }


def ask(state: ServiceState, request_id: str, athlete_id: str, body: AskRequest) -> dict[str, Any]:
    """The assistant's answer for the athlete of the path (its data only), with citations."""
    from athlete_platform.assistant.llm import LlmError

    athlete = check_athlete_id(athlete_id)
    try:
        answer = state.assistant().ask(athlete, body.question, body.as_of)
    except LlmError as exc:  # the configured LLM server is down: not the client's fault
        raise ModelUnavailable(str(exc)) from None
    return {"request_id": request_id, **answer.to_dict()}


def _oip_model(snapshot: Snapshot, names: TableNames, name: str, version: str | None) -> tuple[str, ServedModel]:
    """(alias, model) for an OIP model name (`time_estimator` or its registered name) and version."""
    kind = KINDS.get(name) or next((k for k in KINDS.values() if names(k.registered) == name), None)
    if kind is None or kind.key not in snapshot.models:
        raise OIPError(f"unknown model {name!r}; this server serves {', '.join(snapshot.models)}", status=404)
    if version is None:
        return snapshot.primary(kind.key)
    found = snapshot.version(kind.key, version)
    if found is None:
        raise OIPError(
            f"model {name!r} has no loaded version {version!r}; loaded: {', '.join(snapshot.versions(kind.key))}",
            status=404,
        )
    return found


def v2_infer(state: ServiceState, request_id: str, name: str, version: str | None, body: Any) -> dict[str, Any]:
    started = time.perf_counter()
    alias, model = _oip_model(state.watcher.snapshot, TableNames.from_settings(state.settings.catalog), name, version)
    parsed = parse_infer_request(body, model.input_names, model.output_names)
    raw = model.raw_output(parsed.matrix)
    answer_id = parsed.id if parsed.id is not None else request_id
    response = infer_response(model.kind.key, model.version, answer_id, model.output_names[0], raw)
    state.inference_log.log(
        ilog.record(
            request_id=request_id,
            route="v2-infer",
            athlete_id=None,
            variant=alias,
            model_name=model.name,
            model_version=model.version,
            feature_date=None,
            race_date=None,
            inputs={"id": parsed.id, "parameters": body.get("parameters"), "inputs": list(parsed.tensors)},
            outputs=[{model.output_names[0]: float(v)} for v in np.asarray(raw, np.float32).reshape(-1)],
            latency_ms=_ms_since(started),
        )
    )
    return response


def create_app(settings: Settings, state: ServiceState | None = None) -> FastAPI:
    """The app. With `state` (already loaded) it serves those models; without, it loads them at
    start-up (each uvicorn worker then loads its own)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        nonlocal state
        if state is None:
            state = await run_in_threadpool(ServiceState.load, settings)
        app.state.service = state
        state.start()
        try:
            yield
        finally:
            state.stop()

    app = FastAPI(
        title="Athlete Platform deployment API",
        version=package_version(),
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    key = settings.serving.api_key.get_secret_value() if settings.serving.api_key else None
    app.add_middleware(GuardMiddleware, api_key=key, max_body_bytes=settings.serving.max_body_bytes)
    names = TableNames.from_settings(settings.catalog)
    retry_after_s = settings.serving.retry_after_s

    def service(request: Request) -> ServiceState:
        return request.app.state.service

    def request_id(request: Request) -> str:
        return request.state.request_id

    # --- errors -----------------------------------------------------------------------------

    def answer(request: Request, exc: BaseException) -> JSONResponse:
        status, body, headers = error_answer(exc, request_id(request), retry_after_s)
        if status >= 500 and status != 503:
            log.error("request %s %s failed", request_id(request), request.url.path, exc_info=exc)
        if request.url.path.startswith("/v2") and "error" not in body:
            body = {"error": body["detail"]}
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        field, message = validation_answer(exc.errors())
        return JSONResponse({"detail": message, "field": field}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {"error": exc.detail} if request.url.path.startswith("/v2") else {"detail": exc.detail}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _any(request: Request, exc: Exception) -> JSONResponse:
        return answer(request, exc)

    for handled in (OIPError, InvalidRequest, OnlineStoreUnavailable):
        app.add_exception_handler(handled, _any)
    from athlete_platform.errors import PlatformError

    app.add_exception_handler(PlatformError, _any)

    # --- v1 ---------------------------------------------------------------------------------

    @app.post("/v1/athletes/{athlete_id}/race-predictions")
    def post_race_predictions(athlete_id: str, body: RacePredictionRequest, request: Request) -> JSONResponse:
        return JSONResponse(race_predictions(service(request), request_id(request), athlete_id, body))

    @app.post("/v1/athletes/{athlete_id}/live-coaching")
    def post_live_coaching(athlete_id: str, body: LiveCoachingRequest, request: Request) -> JSONResponse:
        return JSONResponse(live_coaching(service(request), request_id(request), athlete_id, body))

    @app.post("/v1/athletes/{athlete_id}/ask")
    def post_ask(athlete_id: str, body: AskRequest, request: Request) -> JSONResponse:
        return JSONResponse(ask(service(request), request_id(request), athlete_id, body))

    @app.post("/v1/events/sessions", status_code=202)
    def post_session_events(body: Annotated[Any, Body()], request: Request) -> JSONResponse:
        answer_body = session_events.post_events(service(request).settings, body)
        return JSONResponse({"request_id": request_id(request), **answer_body}, status_code=202)

    # --- Open Inference Protocol v2 ---------------------------------------------------------

    @app.get("/v2")
    def server_metadata() -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": app.version, "extensions": []}

    @app.get("/v2/health/live")
    def live() -> dict[str, Any]:
        return {"live": True}

    @app.get("/v2/health/ready")
    def ready(request: Request) -> JSONResponse:
        state_ = getattr(request.app.state, "service", None)
        is_ready = state_ is not None and bool(state_.watcher.snapshot.models)
        return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    def metadata(request: Request, name: str, version: str | None) -> dict[str, Any]:
        snapshot = service(request).watcher.snapshot
        _alias, model = _oip_model(snapshot, names, name, version)
        versions = [version] if version else snapshot.versions(model.kind.key)
        return model_metadata(name, versions, model.input_names, model.input_datatypes, model.output_names)

    @app.get("/v2/models/{name}")
    def get_model(name: str, request: Request) -> dict[str, Any]:
        return metadata(request, name, None)

    @app.get("/v2/models/{name}/versions/{version}")
    def get_model_version(name: str, version: str, request: Request) -> dict[str, Any]:
        return metadata(request, name, version)

    @app.get("/v2/models/{name}/ready")
    def get_model_ready(name: str, request: Request) -> dict[str, Any]:
        metadata(request, name, None)
        return {"name": name, "ready": True}

    @app.get("/v2/models/{name}/versions/{version}/ready")
    def get_model_version_ready(name: str, version: str, request: Request) -> dict[str, Any]:
        metadata(request, name, version)
        return {"name": name, "version": version, "ready": True}

    async def infer(request: Request, name: str, version: str | None) -> JSONResponse:
        raw = await request.body()
        try:
            body = _json(raw)
        except ValueError as exc:
            raise OIPError(f"the request body is not valid JSON ({exc})") from None
        result = await run_in_threadpool(v2_infer, service(request), request_id(request), name, version, body)
        return JSONResponse(result)

    @app.post("/v2/models/{name}/infer")
    async def post_infer(name: str, request: Request) -> JSONResponse:
        return await infer(request, name, None)

    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def post_version_infer(name: str, version: str, request: Request) -> JSONResponse:
        return await infer(request, name, version)

    # --- operations -------------------------------------------------------------------------

    @app.get("/status")
    def status(request: Request) -> dict[str, Any]:
        state_ = service(request)
        watcher = state_.watcher
        return {
            "server": SERVER_NAME,
            "started_at": state_.started_at,
            "models": describe(watcher.snapshot),
            "alias_polls": watcher.polls,
            "model_swaps": watcher.swaps,
            "last_poll_error": watcher.last_error,
            "inference_log": state_.inference_log.stats(),
            "online_store": state_.settings.online_store.backend,
        }

    return app


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("athlete-platform")
    except PackageNotFoundError:
        return "0.0.0"


def _json(raw: bytes) -> Any:
    import json

    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc.reason}") from None


def app_factory() -> FastAPI:
    """For `uvicorn --factory` (serving.workers > 1): settings from the environment."""
    from athlete_platform.config import load_settings

    return create_app(load_settings())
