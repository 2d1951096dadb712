"""Online serving latency under load: this API's routes against `mlflow models serve`, side by side.

    make run                                              # once: a lakehouse with a champion and an online store
    .venv/bin/python bench/online_serving.py              # rates 100, 200, 500 req/s, 10 s each, soak 10,000
    .venv/bin/python bench/online_serving.py --seconds 3 --soak 2000   # quick check

Needs the lakehouse of the settings in use (conf/local.yaml, `make run`): the time estimator's
champion in the registry and a materialized online store. All on 127.0.0.1, one process each:

- (a) `athlete-platform serve` (1 worker): `POST /v1/athletes/{id}/race-predictions` with one
  distance: online-store lookup + on-demand transformations + model + response + inference log;
- (b) the same server's `POST /v2/models/time_estimator/infer` with the athlete's full input
  vector (the raw signature: no lookup, no transformations);
- (c) `mlflow models serve` (1 worker, `--env-manager local`) on the same model version,
  `POST /invocations` with the same vectors (`dataframe_split`).

The rows are the same for (b) and (c) (the vectors (a) builds for the same athletes), and their
raw outputs are checked equal first. Load: `bench/loadgen.py`, open loop (each request due at
its time whatever the server did before; latency from that due time), a pool of keep-alive
connections, the targets taking turns at each rate. Then a soak of `--soak` requests to (a) at
200 req/s with 10 % malformed ones (wrong types, unknown fields, bad JSON, unknown athletes):
the count of 5xx must be 0. Last, the embedded predictor (`export-model` of the same champion,
`EmbeddedPredictor.predict(dict)` and `predict_vector`) single-call p50/p99 in this process.
The client shares the 2 cores with the servers: absolute latencies include its scheduling; the
ratios compare the servers under the same client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from loadgen import Request, run_load
from measure import machine_line

from athlete_platform.config import load_settings
from athlete_platform.features import model_inputs as mi
from athlete_platform.features.online_view import OnlineFeatureView
from athlete_platform.lakehouse.models import CHAMPION, configure_mlflow, resolve_alias
from athlete_platform.lakehouse.tables import TIME_ESTIMATOR, TableNames
from athlete_platform.online.backends import open_store

DISTANCE_M = 10000.0
HOME = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{url}: the server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    process.kill()
    sys.exit(f"{url}: not ready after {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


def start(command: list[str], env: dict[str, str], ready_url: str, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=HOME)
    wait_ready(ready_url, process, log)
    return process


def vectors_for(settings, athletes: list[str]) -> np.ndarray:
    with open_store(settings) as store:
        rows = OnlineFeatureView(store).get_feature_vectors(
            [{"athlete_id": a} for a in athletes], None, {"race_distance_m": DISTANCE_M}
        )
    return np.asarray(rows, np.float64)


def json_floats(vector: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in vector]


def malformed(rng: random.Random, athletes: list[str]) -> Request:
    """One of several kinds of bad request a client may send."""
    athlete = rng.choice(athletes)
    kind = rng.randrange(6)
    path = f"/v1/athletes/{athlete}/race-predictions"
    bodies = {
        0: b'{"race_distance_m": "ten k"}',
        1: b'{"race_distance_m": 10000, "pace": 4}',
        2: b'{"race_distance_m": [5000, -1]}',
        3: b'{"race_distance_m": 1e999}',
        4: b'{"race_distance_m": 10000',
    }
    if kind == 5:
        return Request(
            "POST", f"/v1/athletes/ath_unknown_{rng.randrange(10**6)}/race-predictions", b'{"race_distance_m": 5000}'
        )
    return Request("POST", path, bodies[kind])


def table(results: dict[tuple[int, str], dict[str, float]], rates: list[int], targets: list[str]) -> list[str]:
    lines = [f"{'rate/s':>7} {'target':<26}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}{'sent/s':>8}"]
    for rate in rates:
        for target in targets:
            r = results[(rate, target)]
            lines.append(
                f"{rate:>7} {target:<26}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['max_ms']:>9.1f}"
                f"{int(r['errors']):>8}{r['achieved_per_s']:>8.0f}"
            )
        mlflow_p99 = results[(rate, "c mlflow /invocations")]["p99_ms"]
        for target in targets[:2]:
            ratio = mlflow_p99 / results[(rate, target)]["p99_ms"]
            lines.append(f"{'':>7}   p99 ratio mlflow / {target.split()[0]}: {ratio:.1f}x")
    return lines


def embedded_latency(settings, athletes: list[str], work: Path, calls: int) -> list[str]:
    from athlete_platform.inference.embedded import EmbeddedPredictor
    from athlete_platform.inference.export import export_model

    out = work / "embedded"
    exported = export_model(settings, "time_estimator", CHAMPION, out)
    print(exported.summary())
    predictor = EmbeddedPredictor.load(out)
    with open_store(settings) as store:
        rows = store.get(athletes)
    requests = [{**rows[a], "race_distance_m": DISTANCE_M} for a in athletes]
    vectors = vectors_for(settings, athletes)
    timings: dict[str, list[int]] = {"predict(dict)": [], "predict_vector": []}
    clock = time.perf_counter_ns
    for i in range(calls):
        request, vector = requests[i % len(requests)], vectors[i % len(vectors)]
        t0 = clock()
        predictor.predict(request)
        t1 = clock()
        predictor.predict_vector(vector)
        t2 = clock()
        timings["predict(dict)"].append(t1 - t0)
        timings["predict_vector"].append(t2 - t1)
    lines = [f"embedded predictor ({exported.summary().splitlines()[0][:80]}...), {calls:,} calls each:"]
    for name, values in timings.items():
        values.sort()
        p50_us, p99_us = values[len(values) // 2] / 1000, values[int(len(values) * 0.99)] / 1000
        lines.append(f"  {name:<16} p50 {p50_us:8.1f} us   p99 {p99_us:8.1f} us")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,200,500", help="requests per second, comma separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of load per target and rate (10)")
    parser.add_argument("--soak", type=int, default=10000, help="soak requests at 200/s, 10 %% malformed (10000)")
    parser.add_argument("--athletes", type=int, default=50, help="athletes the requests cycle through (50)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections per target (32)")
    parser.add_argument("--embedded-calls", type=int, default=20000)
    parser.add_argument("--work-dir", type=Path)
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",")]
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-serving-"))
    work.mkdir(parents=True, exist_ok=True)

    settings = load_settings()
    configure_mlflow(settings)
    name = TableNames.from_settings(settings.catalog)(TIME_ESTIMATOR)
    champion = resolve_alias(name, CHAMPION)
    if champion is None:
        sys.exit(f"{name} has no champion: run `make run` (or `athlete-platform train`) first.")
    with open_store(settings) as store:
        athletes = sorted(store.keys())[: args.athletes]
    if not athletes:
        sys.exit("The online store is empty: run `make run` (or `athlete-platform materialize`) first.")
    print(machine_line())
    print(f"model {name} v{champion.version}; {len(athletes)} athletes; work dir {work}")
    vectors = vectors_for(settings, athletes)

    api_port, mlflow_port = free_port(), free_port()
    env = {**os.environ, "ATHLETE_SERVING__PORT": str(api_port), "ATHLETE_SERVING__API_KEY": ""}
    env.pop("ATHLETE_SERVING__API_KEY")
    env["ATHLETE_SERVING__VARIANTS"] = "[{alias: champion, weight: 100}]"
    bin_dir = Path(sys.executable).parent
    servers = []
    try:
        servers.append(
            start(
                [str(bin_dir / "athlete-platform"), "serve"],
                env,
                f"http://127.0.0.1:{api_port}/v2/health/ready",
                work / "api.log",
            )
        )
        # `mlflow models serve` runs `uvicorn` from PATH: this venv's
        path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        mlflow_env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri, "PATH": path}
        servers.append(
            start(
                [
                    str(bin_dir / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    champion.uri,
                    "--env-manager",
                    "local",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mlflow_port),
                    "--workers",
                    "1",
                ],
                mlflow_env,
                f"http://127.0.0.1:{mlflow_port}/ping",
                work / "mlflow.log",
            )
        )
        targets = {
            "a v1 race-predictions": (
                api_port,
                [
                    Request(
                        "POST",
                        f"/v1/athletes/{a}/race-predictions",
                        json.dumps({"race_distance_m": DISTANCE_M}).encode(),
                    )
                    for a in athletes
                ],
            ),
            "b v2 infer": (
                api_port,
                [
                    Request(
                        "POST",
                        "/v2/models/time_estimator/infer",
                        json.dumps(
                            {
                                "inputs": [
                                    {
                                        "name": "input-0",
                                        "shape": [1, len(v)],
                                        "datatype": "FP64",
                                        "data": json_floats(v),
                                    }
                                ]
                            }
                        ).encode(),
                    )
                    for v in vectors
                ],
            ),
            "c mlflow /invocations": (
                mlflow_port,
                [
                    Request(
                        "POST",
                        "/invocations",
                        json.dumps(
                            {"dataframe_split": {"columns": list(mi.MODEL_INPUTS), "data": [json_floats(v)]}}
                        ).encode(),
                    )
                    for v in vectors
                ],
            ),
        }
        # Same rows, same answers: the raw outputs of (b) and (c) agree.
        v2 = httpx.post(
            f"http://127.0.0.1:{api_port}/v2/models/time_estimator/infer",
            content=targets["b v2 infer"][1][0].body,
            timeout=30,
        ).json()
        ml = httpx.post(
            f"http://127.0.0.1:{mlflow_port}/invocations",
            content=targets["c mlflow /invocations"][1][0].body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        ).json()
        ours, theirs = float(v2["outputs"][0]["data"][0]), float(np.ravel(ml["predictions"])[0])
        print(f"raw output, first row: v2 {ours!r}, mlflow {theirs!r} (difference {abs(ours - theirs):.1e})")

        results: dict[tuple[int, str], dict[str, float]] = {}
        for rate in rates:
            count = max(1, int(rate * args.seconds))
            for target, (port, requests) in targets.items():
                asyncio.run(run_load("127.0.0.1", port, requests, rate, min(count, 200), args.connections))  # warm-up
                load = asyncio.run(run_load("127.0.0.1", port, requests, rate, count, args.connections))
                results[(rate, target)] = {**load.summary(), "achieved_per_s": load.achieved_per_s}
                print(
                    f"  {rate}/s {target}: {load.summary()} statuses {dict(load.statuses)} "
                    f"transport {dict(load.errors)}",
                    flush=True,
                )
        print()
        print("\n".join(table(results, rates, list(targets))))

        rng = random.Random(7)
        good = targets["a v1 race-predictions"][1]
        bad_positions = {i for i in range(args.soak) if rng.random() < 0.1}
        soak_requests = [
            malformed(rng, athletes) if i in bad_positions else good[i % len(good)] for i in range(args.soak)
        ]
        soak = asyncio.run(run_load("127.0.0.1", api_port, soak_requests, 200, args.soak, args.connections))
        print()
        print(
            f"soak: {args.soak:,} requests at 200/s to (a), {len(bad_positions):,} malformed: "
            f"statuses {dict(sorted(soak.statuses.items()))}, transport errors {dict(soak.errors)}, "
            f"5xx {soak.server_errors}, p99 {soak.quantile_ms(0.99):.2f} ms"
        )
    finally:
        for process in servers:
            process.terminate()
        for process in servers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    print()
    print("\n".join(embedded_latency(settings, athletes, work, args.embedded_calls)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
