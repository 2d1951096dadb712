"""The deployment API started for real (`athlete-platform serve` in its own process, on a free
port, real HTTP) over the module's own small lakehouse (issue 12, items 2, 3 and 5).

One lake (sample data -> bronze -> silver -> features -> train -> predict -> materialize into a
redis-server of the module's own) and one server for the whole module. The tests prove: zero
online/offline skew (every athlete x standard distance equals gold.athlete_predictions to the
bit); the Open Inference Protocol shapes and datatypes; session events land in
bronze.session_events (202) or are refused naming the field (422); bad input never gets a 5xx;
401/404/413/422 as documented; every prediction is in the inference log with the schema; an
alias moved under load switches the model with no failed request; a stopped online store is a
503 with Retry-After, and the service recovers when it is back.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from pyspark.sql import functions as F

from athlete_platform.config import SampleDataSettings
from athlete_platform.domain.distances import RACE_DISTANCES_M
from athlete_platform.features import model_inputs as mi
from athlete_platform.features.online_view import OnlineFeatureView
from athlete_platform.inference.online_log import RECORD_SCHEMA, ROUTES
from athlete_platform.ingestion.events import events_location
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.models import (
    CHALLENGER,
    CHAMPION,
    ModelVersionRef,
    configure_mlflow,
    resolve_alias,
    signature_input_names,
)
from athlete_platform.online.backends import open_store
from athlete_platform.online.redis_server import RedisServer
from tests.conftest import HOME, free_port, generate_sample
from tests.integration import assistant_cases, query_cases
from tests.own_lake import own_names, own_settings  # noqa: F401  (the module's own lakehouse)

pytestmark = pytest.mark.integration

API_KEY = "test-key-0123456789"
MAX_BODY_BYTES = 64 * 1024
# A canary variant whose alias does not exist: skipped, its weight shared by the others.
VARIANTS = "[{alias: champion, weight: 70}, {alias: challenger, weight: 30}, {alias: canary, weight: 10}]"
# Light trees: the lake is small and the point here is serving, not accuracy.
XGB_PARAMS = {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.1, "n_jobs": 1}
LIGHT_LIVE = {"n_estimators": 120, "max_depth": 3}


@pytest.fixture(scope="module")
def redis_store(tmp_path_factory):
    """A redis-server of this module's own, so stopping it (the 503 test) touches no other module."""
    server = RedisServer("127.0.0.1", free_port(), tmp_path_factory.mktemp("serving-redis") / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def runs(spark, module_lake, redis_store):
    """20 athletes x 240 days through every batch step (both models), the online store in redis.

    The live model is trained twice: first while the time estimator has no champion (its gate
    must fail saying so), then after. A lake this small may not pass the gates; the serving
    tests serve each model's version anyway (the gates are tested on their own numbers below
    and in test_training_inference)."""
    from mlflow import MlflowClient

    base = module_lake.settings
    settings = base.model_copy(
        update={
            "sample_data": SampleDataSettings(seed=5, n_athletes=20, n_days=240, start_date=date(2024, 1, 1)),
            "online_store": base.online_store.model_copy(update={"backend": "redis", "port": redis_store.port}),
        }
    )
    names = module_lake.names
    for table in tables.ALL_TABLES:
        spark.sql(f"DROP TABLE IF EXISTS {names(table)}")
    shutil.rmtree(settings.landing_path, ignore_errors=True)
    shutil.rmtree(events_location(settings), ignore_errors=True)
    shutil.rmtree(settings.inference_log_path, ignore_errors=True)
    generate_sample(settings)
    run_date = settings.sample_data.last_date
    out = {"settings": settings, "run_date": run_date}
    module_lake.run("ingest", date(2030, 1, 1), "serving-1", settings=settings)
    out["silver"] = module_lake.run("silver", run_date, "serving-1", settings=settings)
    module_lake.run("features", run_date, "serving-1", settings=settings)
    out["live_before"] = module_lake.run("train-live", run_date, "live-0", settings=settings, xgb_params=LIGHT_LIVE)
    trained = module_lake.run("train", run_date, "serving-1", settings=settings, xgb_params=XGB_PARAMS)
    client = MlflowClient()
    if not trained.promoted:
        client.set_registered_model_alias(trained.model_name, CHAMPION, trained.version)
    out["trained"] = trained
    out["live"] = live = module_lake.run("train-live", run_date, "live-1", settings=settings, xgb_params=LIGHT_LIVE)
    out["live_champion_before_serving"] = resolve_alias(live.model_name, CHAMPION)
    if not live.promoted:
        client.set_registered_model_alias(live.model_name, CHAMPION, live.version)
    module_lake.run("predict", run_date, "serving-1", settings=settings)
    module_lake.run("materialize", run_date, "serving-1", settings=settings)
    out["documents"] = module_lake.run("embed-documents", run_date, "serving-1", settings=settings)
    return out


@pytest.fixture(scope="module")
def lake(runs):
    return runs["settings"], runs["run_date"], runs["trained"]


SERVE = [sys.executable, "-m", "athlete_platform.cli", "serve"]


def serve_env(redis_store, port: int, **overrides: str) -> dict[str, str]:
    """The environment of `athlete-platform serve` here: the module's lakehouse (exported by
    `module_lake`), its redis-server, a free port, a key, a fast alias poll, three variants."""
    return {
        **os.environ,
        "PYTHONPATH": str(HOME / "src"),
        "ATHLETE_ONLINE_STORE__BACKEND": "redis",
        "ATHLETE_ONLINE_STORE__PORT": str(redis_store.port),
        "ATHLETE_ONLINE_STORE__TIMEOUT_S": "1",
        "ATHLETE_SERVING__PORT": str(port),
        "ATHLETE_SERVING__API_KEY": API_KEY,
        "ATHLETE_SERVING__ALIAS_POLL_S": "0.5",
        "ATHLETE_SERVING__VARIANTS": VARIANTS,
        "ATHLETE_SERVING__MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "ATHLETE_SERVING__RETRY_AFTER_S": "7",
        **overrides,
    }


@pytest.fixture(scope="module")
def server(lake, redis_store, tmp_path_factory):
    """`athlete-platform serve` in its own process; yields (base URL, pid)."""
    settings, _run_date, _trained = lake
    port = free_port()
    out = tmp_path_factory.mktemp("serving") / "serve.log"
    with open(out, "wb") as log:
        process = subprocess.Popen(SERVE, env=serve_env(redis_store, port), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{out.read_text()}")
        try:
            if httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"serve did not get ready:\n{out.read_text()}")
        time.sleep(0.25)
    yield base, process.pid
    process.terminate()  # uvicorn shuts down gracefully: the inference log is flushed
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def client(server):
    base, _pid = server
    with httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def gold(spark, lake, names):
    """(athlete, distance) -> the batch job's row for the run date."""
    _settings, run_date, _trained = lake
    rows = spark.table(names(tables.ATHLETE_PREDICTIONS)).where(f"as_of_date = DATE'{run_date}'").collect()
    return {(r.athlete_id, r.race_distance_m): r for r in rows}


SEEN_REQUEST_IDS: list[str] = []


def predict(client, athlete: str, distances=RACE_DISTANCES_M, **extra) -> httpx.Response:
    response = client.post(
        f"/v1/athletes/{athlete}/race-predictions", json={"race_distance_m": list(distances), **extra}
    )
    if response.status_code == 200:
        SEEN_REQUEST_IDS.append(response.json()["request_id"])
    return response


def test_race_predictions_equal_the_batch_rows_to_the_bit(client, lake, gold):
    _settings, run_date, trained = lake
    athletes = sorted({a for a, _d in gold})
    assert len(athletes) >= 15 and len(gold) == 4 * len(athletes)
    variants = set()
    for athlete in athletes:
        response = predict(client, athlete)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["feature_date"] == run_date.isoformat()
        assert body["race_date"] == (run_date + timedelta(days=1)).isoformat()  # as batch: the day after
        assert body["model_name"] == trained.model_name and body["model_version"] == trained.version
        assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
        assert response.headers["x-request-id"] == body["request_id"]
        variants.add(body["variant"])
        assert [p["race_distance_m"] for p in body["predictions"]] == list(RACE_DISTANCES_M)
        for p in body["predictions"]:
            row = gold[(athlete, p["race_distance_m"])]
            assert row.model_version == body["model_version"]
            # float equality: zero online/offline skew, not "close"
            assert p["predicted_finish_time_s"] == row.predicted_finish_time_s, (athlete, p)
            assert p["predicted_pace_s_per_km"] == row.predicted_pace_s_per_km, (athlete, p)
            # the 80 % interval: the same offsets of the same version, the same arithmetic
            assert row.predicted_finish_time_p10_s < row.predicted_finish_time_s < row.predicted_finish_time_p90_s
            assert p["predicted_finish_time_p10_s"] == row.predicted_finish_time_p10_s, (athlete, p)
            assert p["predicted_finish_time_p90_s"] == row.predicted_finish_time_p90_s, (athlete, p)
    # both live variants get athletes; the canary (no such alias) none
    assert variants == {CHAMPION, CHALLENGER}


def test_ab_split_is_sticky_and_skips_a_missing_alias(client, gold):
    athlete = sorted({a for a, _d in gold})[0]
    first = predict(client, athlete, [5000.0]).json()["variant"]
    assert {predict(client, athlete, [10000.0]).json()["variant"] for _ in range(5)} == {first}
    status = client.get("/status").json()
    (model,) = [m for m in status["models"] if m["model"] == "time_estimator"]
    assert model["skipped_variants"] == ["canary"]
    assert {v["alias"]: v["share"] for v in model["variants"]} == {CHAMPION: 0.7, CHALLENGER: 0.3}


def test_a_race_date_and_one_distance(client, gold):
    athlete = sorted({a for a, _d in gold})[1]
    body = predict(client, athlete, [21097.5], race_date="2025-03-01").json()
    assert body["race_date"] == "2025-03-01" and len(body["predictions"]) == 1
    single = client.post(f"/v1/athletes/{athlete}/race-predictions", json={"race_distance_m": 21097.5})
    assert single.status_code == 200
    assert (
        single.json()["predictions"][0]["predicted_finish_time_s"] == gold[(athlete, 21097.5)].predicted_finish_time_s
    )


def online_matrix(settings, athlete: str) -> np.ndarray:
    with open_store(settings) as store:
        vectors = OnlineFeatureView(store).get_feature_vectors(
            [{"athlete_id": athlete}] * 4, None, [{"race_distance_m": d} for d in RACE_DISTANCES_M]
        )
    return np.asarray(vectors, np.float64)


def test_open_inference_protocol(client, lake, gold):
    settings, _run_date, trained = lake
    meta = client.get("/v2").json()
    assert meta["name"] == "athlete-platform" and isinstance(meta["version"], str) and meta["extensions"] == []
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    model = client.get("/v2/models/time_estimator").json()
    assert model["platform"] == "xgboost" and trained.version in model["versions"]
    assert [i["name"] for i in model["inputs"]] == list(mi.MODEL_INPUTS)
    assert {(i["datatype"], tuple(i["shape"])) for i in model["inputs"]} == {("FP64", (-1,))}
    assert client.get("/v2/models/time_estimator/ready").json()["ready"] is True
    assert client.get(f"/v2/models/{trained.model_name}").status_code == 200  # the registered name works too

    athlete = sorted({a for a, _d in gold})[2]
    matrix = online_matrix(settings, athlete)
    missing = np.isnan(matrix)
    per_input = {
        "id": "example-1",
        "inputs": [
            {
                "name": name,
                "shape": [4, 1] if i % 2 else [4],
                "datatype": "FP64",
                "data": [None if missing[r, i] else matrix[r, i] for r in range(4)],
            }
            for i, name in enumerate(mi.MODEL_INPUTS)
        ],
    }
    response = client.post("/v2/models/time_estimator/infer", json=per_input)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "time_estimator" and body["model_version"] == trained.version
    assert body["id"] == "example-1"
    (output,) = body["outputs"]
    assert output["datatype"] == "FP32" and output["shape"] == [4] and len(output["data"]) == 4
    # The raw output through the batch job's transform gives the gold rows exactly.
    raw = np.asarray(output["data"], np.float32)
    times = mi.predicted_time_s(raw, {n: matrix[:, i] for i, n in enumerate(mi.MODEL_INPUTS)})
    assert list(times) == [gold[(athlete, d)].predicted_finish_time_s for d in RACE_DISTANCES_M]

    # One [N, F] tensor, nested rows, FP32 (the model casts to FP32 anyway): the same output.
    nested = [[None if math.isnan(v) else float(np.float32(v)) for v in row] for row in matrix]
    single = {"inputs": [{"name": "input-0", "shape": [4, len(mi.MODEL_INPUTS)], "datatype": "FP32", "data": nested}]}
    again = client.post(f"/v2/models/time_estimator/versions/{trained.version}/infer", json=single)
    assert again.status_code == 200, again.text
    assert again.json()["outputs"][0]["data"] == output["data"]
    assert re.fullmatch(r"[0-9a-f]{32}", again.json()["id"])  # no id given: the request id

    for path, payload, status in (
        ("/v2/models/nope/infer", single, 404),
        ("/v2/models/time_estimator/versions/999/infer", single, 404),
        ("/v2/models/time_estimator/infer", {"inputs": [{**single["inputs"][0], "shape": [4, 3]}]}, 400),
        ("/v2/models/time_estimator/infer", {"inputs": [{**single["inputs"][0], "datatype": "BYTES"}]}, 400),
        ("/v2/models/time_estimator/infer", {"inputs": per_input["inputs"][1:]}, 400),
    ):
        bad = client.post(path, json=payload)
        assert bad.status_code == status and set(bad.json()) == {"error"}, (path, bad.text)
    assert "distance_m" in client.post("/v2/models/time_estimator/infer", json={"inputs": per_input["inputs"][1:]}).text
    assert client.get("/v2/models/time_estimator/versions/999").status_code == 404


def session(session_id: str, athlete: str, **changes) -> dict:
    return {
        "session_id": session_id,
        "athlete_id": athlete,
        "sport": "run",
        "start_time": "2024-08-27T07:00:00Z",
        "duration_s": 3000.0,
        "distance_m": 10000.0,
        "avg_hr": 150.0,
        "max_hr": 172.0,
        "updated_at": "2024-08-27T08:00:00Z",
        **changes,
    }


def test_session_events_are_appended_or_refused_naming_the_field(client, lake, gold):
    from deltalake import DeltaTable

    settings, _run_date, _trained = lake
    athlete = sorted({a for a, _d in gold})[0]
    one = client.post("/v1/events/sessions", json=session("api-s1", athlete))
    assert one.status_code == 202, one.text
    assert one.json()["accepted"] == 1
    two = client.post("/v1/events/sessions", json=[session("api-s2", athlete), session("api-s3", athlete, rpe=6)])
    assert two.status_code == 202 and two.json()["accepted"] == 2
    ids = one.json()["event_ids"] + two.json()["event_ids"]

    for payload, field in (
        (session("x", athlete, duration_s="3000"), "duration_s"),
        ([session("x", athlete), session("y", athlete, athlete_id=None)], "events[1].athlete_id"),
        (session("x", athlete, rpe=11), "rpe"),
        (session("x", athlete, avg_hr=float("nan")), "avg_hr"),
        (session("x", athlete, start_time="yesterday"), "start_time"),
        (session("x", athlete, sport="chess"), "sport"),
        ([session("x", athlete), 5], "events[1]"),
        ([], "body"),
    ):
        refused = client.post(
            "/v1/events/sessions",
            content=json.dumps(payload, allow_nan=True),
            headers={"Content-Type": "application/json"},
        )
        assert refused.status_code == 422 and refused.json()["field"] == field, (payload, refused.text)

    table = DeltaTable(str(events_location(settings))).to_pyarrow_table().to_pylist()
    stored = {row["event_id"]: row for row in table}
    assert set(ids) <= set(stored) and len(table) == 3  # nothing refused was written
    assert {stored[i]["source"] for i in ids} == {"api"}
    assert {stored[i]["session_id"] for i in ids} == {"api-s1", "api-s2", "api-s3"}
    assert json.loads(stored[ids[2]]["payload"])["rpe"] == 6


def test_bad_requests_get_the_documented_answers(client, server, gold):
    base, _pid = server
    athlete = sorted({a for a, _d in gold})[0]
    url = f"/v1/athletes/{athlete}/race-predictions"
    ok = {"race_distance_m": 5000}

    assert httpx.post(base + url, json=ok).status_code == 401
    wrong = httpx.post(base + url, json=ok, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401 and wrong.json()["field"] == "X-API-Key"
    assert httpx.get(base + "/v2/models/time_estimator").status_code == 200  # OIP routes take no key

    unknown = client.post("/v1/athletes/ath_9999/race-predictions", json=ok)
    assert unknown.status_code == 404 and "ath_9999" in unknown.json()["detail"]

    for payload, field in (
        ({"race_distance_m": "5000"}, "race_distance_m"),
        ({}, "race_distance_m"),
        ({"race_distance_m": -5}, "race_distance_m"),
        ({"race_distance_m": [5000, True]}, "race_distance_m"),
        ({"race_distance_m": 5000, "race_date": "2025-13-01"}, "race_date"),
        ({"race_distance_m": 5000, "race_date": 1700000000}, "race_date"),  # not a Unix time
        ({"race_distance_m": 5000, "colour": "red"}, "colour"),
        ({"race_distance_m": [5000] * 40}, "race_distance_m"),
    ):
        refused = client.post(url, json=payload)
        assert refused.status_code == 422 and refused.json()["field"] == field, (payload, refused.text)
        assert field in refused.json()["detail"]
    for raw in (b"{not json", b"", b'{"race_distance_m": NaN}', b'{"race_distance_m": 1e400}'):
        refused = client.post(url, content=raw, headers={"Content-Type": "application/json"})
        assert refused.status_code == 422, (raw, refused.text)
    too_long = client.post(f"/v1/athletes/{'a' * 200}/race-predictions", json=ok)
    assert too_long.status_code == 422 and too_long.json()["field"] == "athlete_id"

    big = {"race_distance_m": 5000, "pad": "x" * MAX_BODY_BYTES}
    assert client.post(url, json=big).status_code == 413

    def chunks():  # no Content-Length: the service counts the bytes as they stream in
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    streamed = client.post(url, content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["field"] == "body"

    live = client.post(f"/v1/athletes/{athlete}/live-coaching", json={"race_distance_m": 10000})
    assert live.status_code == 422 and live.json()["field"] == "passed_features.elapsed_s"


def hostile_bodies(rng: random.Random, count: int):
    """Seeded malformed bodies: wrong types, non-finite and huge numbers, unicode, deep nesting, junk."""
    atoms = [
        None,
        True,
        0,
        -1,
        1e308,
        -1e308,
        10**30,
        "5000",
        "",
        "\u0000",
        "\ud83c\udfc3",
        "é" * 50,
        [],
        {},
        3.5,
        float("nan"),
        float("inf"),
        "NaN",
        "2024-02-30",
        "9999-12-31",
        [[[]]],
        {"a": {"b": 1}},
    ]
    keys = ["race_distance_m", "race_date", "passed_features", "inputs", "session_id", "duration_s", "x", "é", ""]
    for n in range(count):
        kind = n % 6
        if kind == 0:
            yield json.dumps({rng.choice(keys): rng.choice(atoms) for _ in range(rng.randint(0, 4))}).encode()
        elif kind == 1:
            yield json.dumps([rng.choice(atoms) for _ in range(rng.randint(0, 5))]).encode()
        elif kind == 2:
            depth = rng.choice([50, 500, 5000, 50_000])
            yield ("[" * depth + "]" * depth).encode()
        elif kind == 3:
            yield bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200)))
        elif kind == 4:
            yield json.dumps({"race_distance_m": rng.choice(atoms), "race_date": rng.choice(atoms)}).encode()
        else:
            yield json.dumps(
                {
                    "inputs": [
                        {
                            "name": rng.choice(keys),
                            "shape": rng.choice(atoms),
                            "datatype": rng.choice(["FP32", "INT8", "BYTES", None, 5]),
                            "data": rng.choice(atoms),
                        }
                    ]
                }
            ).encode()


def test_hundreds_of_malformed_requests_never_get_a_5xx(client, gold):
    athlete = sorted({a for a, _d in gold})[0]
    paths = [
        f"/v1/athletes/{athlete}/race-predictions",
        "/v1/athletes/%F0%9F%8F%83/race-predictions",
        f"/v1/athletes/{athlete}/live-coaching",
        "/v1/events/sessions",
        "/v2/models/time_estimator/infer",
        "/v2/models/time_estimator/versions/1/infer",
        "/v2/models/%00/infer",
    ]
    rng = random.Random(12)
    statuses = {}
    for n, body in enumerate(hostile_bodies(rng, 360)):
        path = paths[n % len(paths)]
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
        statuses.setdefault(response.status_code, []).append((path, body[:80]))
    server_errors = {s: v[:3] for s, v in statuses.items() if s >= 500 and s != 503}
    assert not server_errors, server_errors
    assert set(statuses) <= {400, 404, 413, 422, 503}, statuses.keys()  # 503: the live model is not served
    assert client.get("/v2/models/%F0%9F%8F%83").status_code == 404


def log_lines(settings) -> list[tuple[Path, dict]]:
    lines = []
    for path in sorted(settings.inference_log_path.glob("inference-*.jsonl")):
        for line in path.read_text().splitlines():
            lines.append((path, json.loads(line)))
    return lines


def test_every_prediction_is_in_the_inference_log(client, lake, server):
    settings, _run_date, _trained = lake
    _base, pid = server
    deadline = time.monotonic() + 30
    while True:
        stats = client.get("/status").json()["inference_log"]
        if stats["pending"] == 0 and stats["written"] >= len(SEEN_REQUEST_IDS):
            break
        assert time.monotonic() < deadline, stats
        time.sleep(0.1)
    assert stats["dropped"] == 0 and stats["failed"] == 0
    lines = log_lines(settings)
    by_id = {entry["request_id"]: entry for _path, entry in lines}
    assert set(SEEN_REQUEST_IDS) <= set(by_id)
    types = {"string": str, "number": float, "object": dict, "array": list}
    for path, entry in lines:
        assert re.fullmatch(rf"inference-\d{{10}}-{pid}\.jsonl", path.name)
        assert list(entry) == list(RECORD_SCHEMA)
        for key, kind in RECORD_SCHEMA.items():
            allowed = tuple(types[k] if k != "null" else type(None) for k in kind.split("|"))
            assert isinstance(entry[key], allowed), (key, entry[key])
        assert entry["route"] in ROUTES and entry["latency_ms"] >= 0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", entry["logged_at"])
        assert path.name[10:20] == entry["logged_at"][:13].replace("-", "").replace("T", "")
    first = by_id[SEEN_REQUEST_IDS[0]]
    assert first["route"] == "race-predictions" and first["inputs"]["race_distance_m"] == list(RACE_DISTANCES_M)
    assert [o["race_distance_m"] for o in first["outputs"]] == list(RACE_DISTANCES_M)
    assert {"v2-infer", "race-predictions"} <= {entry["route"] for _p, entry in lines}


def test_start_up_problems_are_one_paragraph_saying_what_to_do(server, redis_store):
    base, _pid = server
    taken = int(base.rsplit(":", 1)[1])
    cases = {
        "port in use": ({}, taken, [f"Port {taken} on 127.0.0.1 is in use", "serving.port"]),
        "no model": ({"ATHLETE_CATALOG__SCHEMA_PREFIX": "serving_empty_"}, free_port(), ["athlete-platform train"]),
        "empty store": ({"ATHLETE_ONLINE_STORE__DB": "7"}, free_port(), ["athlete-platform materialize"]),
    }
    running = {
        case: subprocess.Popen(
            SERVE, env=serve_env(redis_store, port, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for case, (env, port, _says) in cases.items()
    }
    for case, process in running.items():
        try:
            _out, err = process.communicate(timeout=180)
        finally:
            process.kill()
        assert process.returncode == 2, (case, err)
        message = err.strip().splitlines()[-1]  # log lines may come before it
        assert message.startswith("athlete-platform: ") and "Traceback" not in err, (case, err)
        for phrase in cases[case][2]:
            assert phrase in message, (case, err)


def register_another_version(settings, trained) -> str:
    """A second version of the time estimator (same signature, other trees), registered like training does."""
    import mlflow
    import pandas as pd
    import xgboost as xgb
    from mlflow.models import infer_signature

    configure_mlflow(settings)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(200, len(mi.MODEL_INPUTS))), columns=list(mi.MODEL_INPUTS))
    model = xgb.XGBRegressor(n_estimators=5, max_depth=2).fit(frame, rng.normal(0.05, 0.01, size=200))
    with mlflow.start_run(run_name="serving test: another version"):
        info = mlflow.xgboost.log_model(
            model,
            name="model",
            signature=infer_signature(frame, model.predict(frame)),
            registered_model_name=trained.model_name,
        )
    return str(info.registered_model_version)


def test_moving_the_champion_alias_under_load_fails_no_request(client, lake, gold):
    from mlflow import MlflowClient

    settings, _run_date, trained = lake
    new_version = register_another_version(settings, trained)
    athletes = sorted({a for a, _d in gold})
    on_champion = [a for a in athletes if predict(client, a, [5000.0]).json()["variant"] == CHAMPION][:4]
    on_challenger = [a for a in athletes if a not in on_champion][:1]
    assert len(on_champion) >= 2
    stop = threading.Event()
    seen: dict[str, list[tuple[int, str]]] = {a: [] for a in on_champion}

    def hammer(athlete: str) -> None:
        while not stop.is_set():
            try:
                response = predict(client, athlete, [5000.0, 42195.0])
            except httpx.HTTPError as exc:
                seen[athlete].append((-1, repr(exc)))
                continue
            version = response.json().get("model_version", "") if response.status_code == 200 else response.text
            seen[athlete].append((response.status_code, version))

    threads = [threading.Thread(target=hammer, args=(a,)) for a in on_champion]
    for thread in threads:
        thread.start()
    try:
        while min(len(v) for v in seen.values()) < 5:
            time.sleep(0.05)
        MlflowClient().set_registered_model_alias(trained.model_name, CHAMPION, new_version)
        deadline = time.monotonic() + 60
        while not all(v and v[-1][1] == new_version for v in seen.values()):
            assert time.monotonic() < deadline, "the new champion was not served within 60 s"
            time.sleep(0.1)
        marks = {a: len(v) for a, v in seen.items()}
        while any(len(seen[a]) < marks[a] + 5 for a in seen):
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    failures = [(a, s) for a, v in seen.items() for s in v if s[0] != 200]
    assert not failures, failures[:5]
    for answers in seen.values():
        versions = [version for _status, version in answers]
        switch = versions.index(new_version)
        assert switch > 0 and set(versions[:switch]) == {trained.version} and set(versions[switch:]) == {new_version}
    # the challenger alias did not move: its athletes stay on the old version
    for athlete in on_challenger:
        body = predict(client, athlete, [5000.0]).json()
        assert (body["variant"], body["model_version"]) == (CHALLENGER, trained.version)
    assert client.get("/status").json()["model_swaps"] >= 1
    assert new_version in client.get("/v2/models/time_estimator").json()["versions"]


def test_online_store_down_is_a_503_with_retry_after_and_recovers(client, redis_store, gold):
    athlete = sorted({a for a, _d in gold})[0]
    url = f"/v1/athletes/{athlete}/race-predictions"
    redis_store.stop()
    try:
        down = client.post(url, json={"race_distance_m": 5000})
        assert down.status_code == 503 and down.headers["retry-after"] == "7"
        assert "online-store up" in down.json()["detail"]
        assert client.get("/v2/health/live").status_code == 200
    finally:
        redis_store.start()  # the append-only file brings the rows back
    deadline = time.monotonic() + 30
    while (back := client.post(url, json={"race_distance_m": 5000})).status_code != 200:
        assert time.monotonic() < deadline, back.text
        time.sleep(0.2)


# --- the live pace coach: race splits, its gate, its route ----------------------------------------


def test_race_splits_reconcile_and_sum_to_the_finish_time(spark, names, runs):
    silver = runs["silver"]
    assert silver.splits_reconcile
    assert silver.race_split_records == silver.race_splits_accepted + silver.race_splits_quarantined
    assert silver.race_splits_accepted > 40 and silver.race_splits_quarantined == 0  # the generator's are clean
    splits = spark.table(names(tables.RACE_SPLITS))
    assert splits.count() == silver.race_split_rows
    totals = splits.groupBy("session_id").agg(
        F.sum("split_time_s").alias("t"),
        F.sum("split_distance_m").alias("d"),
        F.count("km").alias("n"),
        F.max("km").alias("last_km"),
    )
    races = {r.session_id: r for r in spark.table(names(tables.RACES)).collect()}
    checked = 0
    for r in totals.collect():
        race = races[r.session_id]
        assert round(r.t, 1) == race.finish_time_s
        assert abs(r.d - race.distance_m) < 1e-6
        assert r.n == r.last_km  # km numbered 1..n
        checked += 1
    assert checked == silver.race_splits_accepted


def test_rerunning_silver_changes_no_split(spark, names, runs, module_lake):
    table = names(tables.RACE_SPLITS)
    before = spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").first().version
    again = module_lake.run("silver", runs["run_date"], "serving-2", settings=runs["settings"])
    assert (again.sessions_in_scope, again.race_split_rows) == (0, 0)  # incremental: nothing new to judge
    rebuilt = module_lake.run("silver", runs["run_date"], "serving-3", settings=runs["settings"], full_refresh=True)
    assert rebuilt.splits_reconcile and rebuilt.race_split_rows == spark.table(table).count()
    assert spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").first().version == before


def test_without_a_time_estimator_champion_the_live_gate_fails_and_says_why(runs):
    from mlflow import MlflowClient

    result = runs["live_before"]
    assert not result.promoted
    assert "no champion of" in result.decision and "athlete-platform train" in result.decision
    assert result.version in {
        str(v.version) for v in MlflowClient().search_model_versions(f"name='{result.model_name}'")
    }


def test_live_gate_numbers_are_in_mlflow_and_the_registry_follows_the_gate(runs):
    from mlflow import MlflowClient

    from athlete_platform.features.live_inputs import LIVE_INPUTS
    from athlete_platform.training import live_gate

    live = runs["live"]
    run = MlflowClient().get_run(live.run_id)
    metrics = run.data.metrics
    for group in live_gate.GROUPS:
        for _, _, bucket in live_gate.BUCKETS:
            assert metrics[f"{group}_rows_{bucket}"] > 0
            for predictor in ("live", "even_pace", "prerace"):
                key = f"{group}_{predictor}_mape_{bucket}"
                assert metrics[key] == pytest.approx(live.metrics[key])
    # The decision is the one the numbers give: beat both bars in every bucket of both groups
    # (the earlier live version is a challenger only: no champion to beat).
    beats = all(
        metrics[f"{g}_live_mape_{b}"] < min(metrics[f"{g}_even_pace_mape_{b}"], metrics[f"{g}_prerace_mape_{b}"])
        for g in live_gate.GROUPS
        for _, _, b in live_gate.BUCKETS
    )
    assert live.promoted == beats and run.data.tags["promotion.promoted"] == str(beats)
    assert run.data.params["buckets"] == "b00_25,b25_50,b50_75,b75_100"
    champion = runs["live_champion_before_serving"]
    assert (champion.version if champion else None) == (live.version if beats else None)
    assert signature_input_names(ModelVersionRef(live.model_name, live.version)) == LIVE_INPUTS
    assert "heldout_athletes" in live.gate_table and "b75_100" in live.gate_table
    # Late in a race the live model has most of the answer: far better than before the start.
    late = metrics["heldout_races_live_mape_b75_100"]
    assert np.isfinite(late) and late < metrics["heldout_races_prerace_mape_b75_100"]


LIVE_BODY = {
    "race_distance_m": 10000.0,
    "passed_features": {
        "elapsed_s": 1500.0,
        "distance_done_m": 5000.0,
        "current_hr": 171.0,
        "current_pace_s_per_km": 296.0,
    },
}


def test_live_coaching_answers_what_the_registered_live_model_and_training_function_give(client, runs, gold):
    import mlflow

    from athlete_platform.features.live_inputs import LIVE_INPUTS
    from athlete_platform.features.live_prediction import live_prediction

    settings, live = runs["settings"], runs["live"]
    athlete = sorted({a for a, _d in gold})[2]
    response = client.post(f"/v1/athletes/{athlete}/live-coaching", json={**LIVE_BODY, "target_time_s": 2950.0})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == live.model_name and body["variant"] in (CHAMPION, CHALLENGER)
    served = resolve_alias(live.model_name, body["variant"])
    assert body["model_version"] == served.version
    # Independently: the online vector, the registered booster, the training-side function.
    with open_store(settings) as store:
        vector = OnlineFeatureView(store, features=LIVE_INPUTS, request_defaults={}).get_feature_vector(
            {"athlete_id": athlete}, LIVE_BODY["passed_features"], {"race_distance_m": 10000.0}
        )
    booster = mlflow.xgboost.load_model(f"models:/{live.model_name}/{served.version}").get_booster()
    raw = booster.inplace_predict(np.asarray([vector], np.float32), missing=np.nan)
    expected = live_prediction(
        float(raw[0]), elapsed_s=1500.0, distance_done_m=5000.0, race_distance_m=10000.0, target_time_s=2950.0
    )
    prediction = body["prediction"]
    assert prediction == expected.to_dict()
    assert prediction["predicted_finish_time_s"] >= 1500.0 and prediction["remaining_distance_m"] == 5000.0
    # 5 km left in 1450 s: 290 s/km to hold
    assert prediction["required_pace_s_per_km"] == pytest.approx(290.0)
    SEEN_REQUEST_IDS.append(body["request_id"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"distance_done_m": 0.0}, "passed_features.distance_done_m"),
        ({"distance_done_m": 12000.0}, "passed_features.distance_done_m"),
        ({"elapsed_s": None}, "passed_features.elapsed_s"),
        ({"elapsed_s": "25 min"}, "passed_features.elapsed_s"),
        ({"current_hr": "high"}, "current_hr"),
        ({"cadence_spm": 180}, "cadence_spm"),
    ],
)
def test_live_coaching_refuses_bad_live_values_naming_the_field(client, gold, change, field):
    athlete = sorted({a for a, _d in gold})[2]
    passed = {**LIVE_BODY["passed_features"], **change}
    response = client.post(f"/v1/athletes/{athlete}/live-coaching", json={**LIVE_BODY, "passed_features": passed})
    assert response.status_code == 422, response.text
    assert field in response.json()["field"]


def test_live_coaching_for_an_unknown_athlete_is_404(client):
    assert client.post("/v1/athletes/ath_9999/live-coaching", json=LIVE_BODY).status_code == 404


def test_the_served_log_lines_flush_into_delta(spark, names, client, runs, module_lake):
    """The API's real log lines through `flush-inference-log` (the writer and reader agree)."""
    deadline = time.monotonic() + 30
    while client.get("/status").json()["inference_log"]["pending"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    lines = [entry for _path, entry in log_lines(runs["settings"])]
    result = module_lake.run("flush-inference-log", runs["run_date"], "flush-1", settings=runs["settings"])
    assert result.quarantined == 0 and result.lines == len(lines)
    assert result.rows_read == sum(len(entry["outputs"]) for entry in lines)
    stored = spark.table(names(tables.ONLINE_INFERENCE_LOG))
    assert result.rows_inserted == result.rows_read == stored.count()
    # The current hour's file stays in place; reading it again inserts nothing. (A file whose
    # hour ended before the flush was moved away, so count what is still there: near a full
    # hour that is only the new hour's file, if any.)
    remaining = [entry for _path, entry in log_lines(runs["settings"])]
    again = module_lake.run("flush-inference-log", runs["run_date"], "flush-2", settings=runs["settings"])
    assert again.rows_read == sum(len(entry["outputs"]) for entry in remaining)
    assert again.rows_inserted == 0 and stored.count() == result.rows_read
    first = next(e for e in lines if e["route"] == "race-predictions")
    rows = stored.where(F.col("request_id") == first["request_id"]).orderBy("prediction_index").collect()
    assert [(r.race_distance_m, r.predicted_finish_time_s) for r in rows] == [
        (o["race_distance_m"], o["predicted_finish_time_s"]) for o in first["outputs"]
    ]
    assert {r.variant for r in rows} == {first["variant"]} and rows[0].model_version == first["model_version"]


def test_train_live_with_too_few_races_with_splits_is_skipped_not_failed(runs, module_lake):
    """A day before any race with splits: the live model is optional, so the step says why and
    the batch run and DAG go on (the served live version is untouched)."""
    from athlete_platform.training.live_pace import LiveTrainingSkipped

    early = date(2024, 1, 20)
    result = module_lake.run("train-live", early, "live-early", settings=runs["settings"], xgb_params=LIGHT_LIVE)
    assert isinstance(result, LiveTrainingSkipped) and not result.promoted
    assert "up to 2024-01-20" in result.decision and "run silver and features first" in result.decision
    assert resolve_alias(result.model_name, CHAMPION) is not None  # the served one stays


# --- the assistant (issue 13) on this module's lake: no lakehouse of its own --------------------


def test_assistant_tools_equal_spark(spark, names, lake):
    assistant_cases.tools_equal_spark(spark, names, lake)


def test_assistant_answers_the_highest_week(spark, names, lake):
    assistant_cases.answers_the_highest_week(spark, names, lake)


def test_assistant_ask_route(client, lake, gold):
    assistant_cases.ask_route(client, lake, gold)


def test_assistant_ask_cli_is_traced(lake):
    assistant_cases.ask_cli_is_traced(lake)


def test_assistant_held_out_evaluation_meets_its_goals(lake):
    assistant_cases.held_out_evaluation(lake)


# --- query access (issue 15) on this module's lake: SQL servers, Spark Connect, reads without Spark


def test_duckdb_engine_equals_spark_for_the_readme_queries(spark, names, lake):
    query_cases.duckdb_equals_spark_for_the_readme_queries(spark, names, lake)


def test_read_table_equals_spark_and_time_travels(spark, names, lake):
    query_cases.read_table_equals_spark_and_time_travels(spark, names, lake)


def test_thrift_server_answers_beeline_by_three_level_name(spark, names, lake):
    query_cases.thrift_server_answers_beeline(spark, names, lake)


def test_connect_server_answers_the_thin_client_by_three_level_name(spark, names, lake):
    query_cases.connect_server_answers_the_thin_client(spark, names, lake)


def test_status_reports_tables_models_and_services(spark, names, lake):
    query_cases.status_reports_tables_and_models(spark, names, lake)
