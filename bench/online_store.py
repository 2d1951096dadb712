"""Online store single-key get latency: SQLite and Redis against a Python dict, side by side.

    .venv/bin/python bench/online_store.py                      # 1,000 athletes, 20,000 gets each
    .venv/bin/python bench/online_store.py --athletes 100000 --gets 50000

One process, one run: both stores are filled with the same rows (every materialized column,
like a real online row), then the three contenders take turns in blocks of `--block` gets on the
same random key sequence, so load on this shared machine hits them alike. Each get is the
serving path's call, `store.get([athlete_id])` (lookup + JSON decode of the row), timed on its
own with `perf_counter_ns`; the dict baseline is `rows.get(athlete_id)` on the same rows in
memory. Redis is the project's own redis-server (`RedisServer`, AOF on) on a free port in the
work folder, reached over TCP on 127.0.0.1 (the serving set-up); SQLite is a WAL file in the work
folder (warm: the file is in the page cache after the fill).
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from measure import machine_line

from athlete_platform.online.materialize import ONLINE_COLUMNS
from athlete_platform.online.redis_server import RedisServer
from athlete_platform.online.redis_store import RedisOnlineStore
from athlete_platform.online.sqlite_store import SQLiteOnlineStore


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_rows(athletes: int, seed: int) -> dict[str, dict]:
    """Rows shaped like materialized ones: every online column, floats mostly, a few texts/ints."""
    rng = random.Random(seed)
    rows = {}
    for n in range(athletes):
        key = f"ath_{n:06d}"
        row = {column: round(rng.uniform(0, 500), 6) for column in ONLINE_COLUMNS}
        row |= {
            "athlete_id": key,
            "feature_date": "2024-12-30",
            "sex": rng.choice("FM"),
            "birth_date": "1990-05-17",
            "prev_race_date": "2024-11-03",
            "sessions_7d": rng.randint(0, 14),
            "sessions_28d": rng.randint(0, 50),
            "days_since_last_session": rng.randint(0, 9),
            "history_days": rng.randint(0, 1500),
            "source_version": 42,
            "materialized_at": "2024-12-31T00:05:00.000000Z",
        }
        rows[key] = row
    return rows


def percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile in microseconds."""
    index = min(len(sorted_ns) - 1, max(0, int(round(q * len(sorted_ns) + 0.5)) - 1))
    return sorted_ns[index] / 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--athletes", type=int, default=1000, help="rows in each store (default 1000)")
    parser.add_argument("--gets", type=int, default=20000, help="timed gets per contender (default 20000)")
    parser.add_argument("--block", type=int, default=500, help="gets per turn before the next contender (500)")
    parser.add_argument("--warmup", type=int, default=2000, help="untimed gets per contender first (2000)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--work-dir", type=Path, help="folder for the SQLite file and redis data (default: temp)")
    args = parser.parse_args(argv)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-online-"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    rows = make_rows(args.athletes, args.seed)
    fields = len(next(iter(rows.values())))
    print(f"work dir {work}; {args.athletes:,} rows of {fields} fields; {args.gets:,} gets each")
    server = RedisServer("127.0.0.1", free_port(), work / "redis")
    print(f"redis-server: {server.start()}")
    try:
        sqlite_path = work / "online_store.db"
        sqlite_path.unlink(missing_ok=True)
        sqlite = SQLiteOnlineStore(sqlite_path)
        redis_store = RedisOnlineStore("127.0.0.1", server.port, 0, f"bench:{time.time_ns()}")
        for store in (sqlite, redis_store):
            started = time.perf_counter()
            store.apply(rows.values(), source_version=42)
            print(f"filled {store.backend} ({store.location}) in {time.perf_counter() - started:.2f} s")

        keys = list(rows)
        rng = random.Random(args.seed + 1)
        sequence = [rng.choice(keys) for _ in range(args.gets)]
        contenders: dict[str, Callable[[str], object]] = {
            "dict": rows.get,
            "sqlite": lambda key: sqlite.get([key]),
            "redis": lambda key: redis_store.get([key]),
        }
        for name, get in contenders.items():  # warm-up: caches, connections, the JIT of nothing
            for key in sequence[: args.warmup]:
                assert get(key), name
            assert (get(keys[0]) if name == "dict" else get(keys[0])[keys[0]]) == rows[keys[0]], name

        samples: dict[str, list[int]] = {name: [] for name in contenders}
        clock = time.perf_counter_ns
        for start in range(0, args.gets, args.block):
            block = sequence[start : start + args.block]
            for name, get in contenders.items():
                timings = samples[name]
                for key in block:
                    t0 = clock()
                    get(key)
                    timings.append(clock() - t0)

        results = {}
        for name, timings in samples.items():
            timings.sort()
            results[name] = {
                "p50": percentile(timings, 0.50),
                "p99": percentile(timings, 0.99),
                "mean": statistics.fmean(timings) / 1000.0,
                "max": timings[-1] / 1000.0,
            }
        base = results["dict"]
        print()
        header = ("p50 us", "p99 us", "mean us", "max us")
        print(f"{'contender':<10}" + "".join(f"{h:>10}" for h in header) + f"{'p50 x dict':>12}{'p99 x dict':>12}")
        for name, r in results.items():
            print(
                f"{name:<10}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['mean']:>10.2f}{r['max']:>10.1f}"
                f"{r['p50'] / base['p50']:>12.1f}{r['p99'] / base['p99']:>12.1f}"
            )
        ratio = results["redis"]["p50"] / results["sqlite"]["p50"]
        print(f"\nredis / sqlite: p50 {ratio:.2f}x, p99 {results['redis']['p99'] / results['sqlite']['p99']:.2f}x")
        goal = 5000.0  # DESIGN.md: real-time p99 <= 5 ms for the whole request; the lookup is a part
        for name in ("sqlite", "redis"):
            share = results[name]["p99"] / goal
            print(f"{name}: p99 get = {share:.1%} of the 5 ms real-time p99 budget")
        sqlite.close()
        redis_store.close()
    finally:
        print(f"redis-server: {server.stop()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
