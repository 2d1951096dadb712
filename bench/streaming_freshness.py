"""Streaming freshness: post session events at a steady rate through the event writer and time,
per event, from the post being accepted to the online store returning the updated value.

    .venv/bin/python bench/streaming_freshness.py                    # 60 events per backend at 3/s
    .venv/bin/python bench/streaming_freshness.py --events 30 --rate 2 --backends sqlite

Goal (issue 11): p95 <= 5 s on this machine, for the SQLite and the Redis online store.

A throw-away lakehouse (conf/test.yaml's settings, a small sample: `--athletes` x `--days`), its
own catalog server and redis-server on free ports. One child process (the streaming job's
side) builds the Spark session, runs ingest -> silver -> features -> materialize (into both
stores), then for each backend starts the streaming query exactly as `athlete-platform stream`
does (Delta source, processing-time trigger `--trigger-s`, foreachBatch into the store) and
signals the parent. The parent plays the app + API: it posts one event per call of
`append_session_events` (delta-rs, no Spark) every 1/rate s, and a poller reads the store
(`store.get`) every `--poll-ms` until the athlete's row counts the posted session
(`intraday_state` holds its session_id). Freshness = that moment - the moment the append
returned. Events that never show up within `--timeout-s` count as lost (should be 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HOME = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HOME))
from bench.measure import machine_line  # noqa: E402

BACKENDS = ("sqlite", "redis")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_for(backend: str):
    from athlete_platform.config import load_settings

    return load_settings(environ={**os.environ, "ATHLETE_ONLINE_STORE__BACKEND": backend})


# --- child: the streaming job's side --------------------------------------------------------------


def child(work: Path, backends: list[str], trigger_s: float) -> None:
    from athlete_platform import steps
    from athlete_platform.ingestion.sample_data import GeneratorConfig, generate
    from athlete_platform.lakehouse.spark import build_spark
    from athlete_platform.lakehouse.step import StepContext
    from athlete_platform.lakehouse.tables import TableNames
    from athlete_platform.online.backends import open_store
    from athlete_platform.online.streaming import IntradayWriter, prepare_tables, start_query, tune_for_micro_batches

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    settings = settings_for(backends[0])
    cfg = settings.sample_data
    reuse = (work / "batch-kept").exists()  # a kept --work-dir: the sample batch is there already
    if not reuse:
        generate(GeneratorConfig(cfg.seed, cfg.n_athletes, cfg.n_days, cfg.start_date), settings.landing_path)
    spark = build_spark(settings)
    names = TableNames.from_settings(settings.catalog)
    (work / "spark-up").write_text(f"{time.perf_counter() - started:.1f}")
    if not reuse:
        for step in ("ingest", "silver", "features"):
            steps.run_step(steps.BY_NAME[step], StepContext(settings, spark, names, cfg.last_date))
    for backend in backends:
        shutil.rmtree(work / f"checkpoint-{backend}", ignore_errors=True)
        if not reuse or backend == "redis":  # a new redis-server starts empty
            context = StepContext(settings_for(backend), spark, names, cfg.last_date)
            steps.run_step(steps.BY_NAME["materialize"], context, {"full_refresh": True})
    source = prepare_tables(spark, names, settings)
    tune_for_micro_batches(spark)  # as `athlete-platform stream` does
    (work / "batch-kept").write_text("the sample batch is in lake/")
    (work / "batch-done").write_text(f"{time.perf_counter() - started:.1f}")
    for backend in backends:
        store = open_store(settings_for(backend))
        writer = IntradayWriter(spark, names, store, f"bench_{backend}")
        query = start_query(spark, source, writer, work / f"checkpoint-{backend}", trigger_s)
        query.processAllAvailable()  # catch up with what an earlier backend's run posted
        (work / f"ready-{backend}").write_text("ready")
        while not (work / f"done-{backend}").exists():
            if query.exception() is not None:
                raise query.exception()
            time.sleep(0.2)
        progress = [p["durationMs"] for p in query.recentProgress if p.get("numInputRows")]
        query.stop()
        phases = sorted({k for p in progress for k in p})
        mean_ms = {k: round(sum(p.get(k, 0) for p in progress) / max(1, len(progress))) for k in phases}
        stats = {"batches_with_rows": len(progress), "mean_ms": mean_ms}
        (work / f"stats-{backend}.json").write_text(json.dumps(stats))
        store.close()


# --- parent: the app + API side -------------------------------------------------------------------


def wait_for(path: Path, child_proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if child_proc.poll() is not None:
            raise SystemExit(f"stream child exited ({child_proc.returncode}); log {log}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"no {path.name} within {timeout_s:.0f} s; log {log}")
        time.sleep(0.1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[index]


def measure(backend: str, athletes: list[str], events: int, rate: float, poll_s: float, timeout_s: float) -> dict:
    from athlete_platform.ingestion.events import append_session_events
    from athlete_platform.online import intraday
    from athlete_platform.online.backends import open_store

    settings = settings_for(backend)
    store = open_store(settings)
    pending: dict[str, tuple[str, float]] = {}  # session_id -> (athlete, accepted at)
    seen: dict[str, float] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            with lock:
                waiting = dict(pending)
            if waiting:
                rows = store.get(sorted({a for a, _ in waiting.values()}))
                now = time.perf_counter()
                for session_id, (athlete, _) in waiting.items():
                    state = (rows.get(athlete) or {}).get(intraday.STATE) or ""
                    if f'"{session_id}"' in state:
                        with lock:
                            seen[session_id] = now
                            pending.pop(session_id, None)
            time.sleep(poll_s)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    post_ms, accepted = [], {}
    started = time.perf_counter()
    run_tag = datetime.now(UTC).strftime("%H%M%S")
    for n in range(events):
        target = started + n / rate
        time.sleep(max(0.0, target - time.perf_counter()))
        athlete = athletes[n % len(athletes)]
        start = datetime.now(UTC) - timedelta(hours=1)
        event = {
            "session_id": f"bench-{backend}-{run_tag}-{n:05d}",
            "athlete_id": athlete,
            "sport": "run",
            "start_time": start.isoformat(),
            "duration_s": 1800 + n % 7 * 60,
            "distance_m": 5000.0 + n,
            "avg_hr": 140 + n % 11,
            "max_hr": 175,
        }
        t0 = time.perf_counter()
        append_session_events(settings, [event])
        t1 = time.perf_counter()
        post_ms.append((t1 - t0) * 1000)
        accepted[event["session_id"]] = t1
        with lock:
            pending[event["session_id"]] = (athlete, t1)
    posting_s = time.perf_counter() - started
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        with lock:
            if not pending:
                break
        time.sleep(0.05)
    stop.set()
    poller.join()
    store.close()
    fresh = [seen[s] - accepted[s] for s in seen]
    last_seen = max(seen.values(), default=started)
    return {
        "backend": backend,
        "events": events,
        "counted": len(fresh),
        "lost": events - len(fresh),
        "p50_s": percentile(fresh, 0.50) if fresh else None,
        "p95_s": percentile(fresh, 0.95) if fresh else None,
        "max_s": max(fresh) if fresh else None,
        "events_per_s": len(fresh) / (last_seen - started) if fresh else 0.0,
        "post_p50_ms": percentile(post_ms, 0.5),
        "post_p95_ms": percentile(post_ms, 0.95),
        "posting_s": posting_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60, help="events per backend (default 60)")
    parser.add_argument("--rate", type=float, default=3.0, help="events posted per second (default 3)")
    parser.add_argument("--trigger-s", type=float, default=1.0, help="the stream's processing-time trigger")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma list of sqlite,redis")
    parser.add_argument("--athletes", type=int, default=4, help="sample athletes (default 4)")
    parser.add_argument("--days", type=int, default=60, help="sample days (default 60)")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="how often the store is read (default 20)")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="wait for stragglers after posting")
    parser.add_argument("--work-dir", help="default: a new temp dir, removed at the end")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    if unknown := set(backends) - set(BACKENDS):
        raise SystemExit(f"--backends: unknown {sorted(unknown)}; use {','.join(BACKENDS)}")

    if args.role == "stream":
        child(Path(args.work_dir), backends, args.trigger_s)
        return

    from athlete_platform.lakehouse.catalog_server import CatalogServer
    from athlete_platform.online.redis_server import RedisServer

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-stream-"))
    work.mkdir(parents=True, exist_ok=True)
    for stale in [*work.glob("ready-*"), *work.glob("done-*"), *work.glob("stats-*"), *work.glob("batch-done")]:
        stale.unlink()
    os.environ.update(
        ATHLETE_CONF_FILE=str(HOME / "conf" / "test.yaml"),
        ATHLETE_DATA_DIR=str(work / "lake"),
        ATHLETE_CATALOG__PORT=str(free_port()),
        ATHLETE_ONLINE_STORE__PORT=str(free_port()),
        ATHLETE_SAMPLE_DATA__N_ATHLETES=str(args.athletes),
        ATHLETE_SAMPLE_DATA__N_DAYS=str(args.days),
        ATHLETE_SPARK__LOG_LEVEL="WARN",
    )
    os.environ.pop("ATHLETE_CATALOG__SCHEMA_PREFIX", None)
    print(machine_line(), flush=True)
    settings = settings_for("sqlite")
    catalog = CatalogServer.from_settings(settings)
    redis = RedisServer.from_settings(settings_for("redis")) if "redis" in backends else None
    child_proc = None
    started = time.perf_counter()
    try:
        print(f"catalog server: {catalog.start()}", flush=True)
        if redis is not None:
            print(f"redis-server: {redis.start()}", flush=True)
        log = work / "stream.log"
        cmd = [sys.executable, __file__, "--role", "stream", "--work-dir", str(work), "--backends", ",".join(backends),
               "--trigger-s", str(args.trigger_s)]  # fmt: skip
        with open(log, "w") as handle:
            child_proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=os.environ.copy())
        wait_for(work / "batch-done", child_proc, log, 600)
        print(
            f"stream process: Spark up in {(work / 'spark-up').read_text()} s, sample batch + materialize done at "
            f"{(work / 'batch-done').read_text()} s",
            flush=True,
        )
        athletes = sorted(open_athletes(settings))
        results = []
        for backend in backends:
            wait_for(work / f"ready-{backend}", child_proc, log, 300)
            result = measure(backend, athletes, args.events, args.rate, args.poll_ms / 1000, args.timeout_s)
            (work / f"done-{backend}").write_text("done")
            results.append(result)
            print(json.dumps(result), flush=True)
        child_proc.wait(timeout=120)
        for backend in backends:
            print(f"{backend} micro-batches (mean ms per phase): {(work / f'stats-{backend}.json').read_text()}")
    finally:
        if child_proc is not None and child_proc.poll() is None:
            child_proc.kill()
        if redis is not None:
            redis.stop()
        catalog.stop()
    print()
    print(
        f"{args.events} events per backend at {args.rate:g}/s, trigger {args.trigger_s:g} s, poll {args.poll_ms:g} ms"
    )
    print(f"{'backend':<8} {'counted':>8} {'lost':>5} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'events/s':>9} "
          f"{'post p50 ms':>12} {'post p95 ms':>12}")  # fmt: skip
    for r in results:
        print(
            f"{r['backend']:<8} {r['counted']:>8} {r['lost']:>5} {r['p50_s']:>7.2f} {r['p95_s']:>7.2f} "
            f"{r['max_s']:>7.2f} {r['events_per_s']:>9.2f} {r['post_p50_ms']:>12.1f} {r['post_p95_ms']:>12.1f}"
        )
    verdict = all(r["p95_s"] is not None and r["p95_s"] <= 5.0 and r["lost"] == 0 for r in results)
    print(
        f"goal p95 <= 5 s, nothing lost: {'met' if verdict else 'NOT met'}; total {time.perf_counter() - started:.0f} s"
    )
    print(machine_line())
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


def open_athletes(settings) -> list[str]:
    """The sample's athletes, from the online store the child materialized (no Spark here)."""
    from athlete_platform.online.backends import open_store

    with open_store(settings) as store:
        return store.keys()


if __name__ == "__main__":
    main()
