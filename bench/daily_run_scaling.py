"""Benchmark: does one more day's run cost more when the history is longer? (issue 16, item 2)

    .venv/bin/python bench/daily_run_scaling.py                       # 40 athletes, 1 and 3 years
    .venv/bin/python bench/daily_run_scaling.py --athletes 20 --years 1 3

For each history length, in a subprocess of its own (own lakehouse under --work-dir, own catalog
server on a free port, `conf/test.yaml` settings; the lengths run one after the other):

1. the sample generator writes N athletes x the years' days of daily landing files;
2. catch-up: every file but the last day's lands, then ingest, silver, features, materialize
   and train run for the day before the last (timed, but not the point);
3. the day: the last day's file lands and ingest, silver, features, materialize and predict
   run for the last day, each step timed;
4. for reference, silver's tables are restored to before the day and silver runs again for it
   with `--full-refresh` (judging every bronze record, as silver did before it was incremental).

It prints each step's seconds side by side and the ratio of the longest history's day to the
shortest's. Goal (issue 16): the 3-year day costs at most 1.3x the 1-year day. Nothing asserts
on timing; the machine is noisy, so the ratio is what to read.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from measure import HOME, machine_line, run_measured, write_result

DAY_STEPS = ("ingest", "silver", "features", "materialize", "predict")
CATCH_UP_STEPS = ("ingest", "silver", "features", "materialize", "train")
START_DATE = date(2022, 1, 1)


def child(args: argparse.Namespace) -> dict:
    """One history length: generate, catch up to the day before the last, time the last day."""
    work = args.work_dir
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    days = 365 * args.history_years
    os.environ.update(
        {
            "ATHLETE_CONF_FILE": str(HOME / "conf" / "test.yaml"),
            "ATHLETE_DATA_DIR": str(work / "data"),
            "ATHLETE_OUTPUT_DIR": str(work / "output"),
            "ATHLETE_CATALOG__PORT": str(port),
        }
    )
    from athlete_platform import steps
    from athlete_platform.config import load_settings
    from athlete_platform.ingestion.sample_data import GeneratorConfig, generate
    from athlete_platform.lakehouse import tables
    from athlete_platform.lakehouse.bootstrap import bootstrap_namespace
    from athlete_platform.lakehouse.catalog_server import CatalogServer
    from athlete_platform.lakehouse.delta import current_version
    from athlete_platform.lakehouse.spark import build_spark
    from athlete_platform.lakehouse.step import StepContext
    from athlete_platform.lakehouse.tables import TableNames

    settings = load_settings()
    staging = work / "staging"
    summary = generate(
        GeneratorConfig(n_athletes=args.athletes, n_days=days, start_date=START_DATE, seed=args.seed), staging
    )
    last = START_DATE + timedelta(days=days - 1)
    app_export = settings.landing_path / "app_export"
    app_export.mkdir(parents=True, exist_ok=True)
    held_back = f"{last}.jsonl"
    for path in (staging / "app_export").glob("*.jsonl"):
        if path.name != held_back:
            shutil.copy(path, app_export / path.name)

    server = CatalogServer.from_settings(settings)
    server.start()
    try:
        spark = build_spark(settings)
        names = TableNames.from_settings(settings.catalog)
        bootstrap_namespace(spark, names)

        def run(step: str, day: date, run_id: str, **params) -> float:
            started = time.perf_counter()
            steps.run_step(steps.BY_NAME[step], StepContext(settings, spark, names, day, run_id=run_id), params)
            return time.perf_counter() - started

        catch_up = {step: run(step, last - timedelta(days=1), "catch-up") for step in CATCH_UP_STEPS}
        print(f"catch-up to {last - timedelta(days=1)}: {sum(catch_up.values()):.1f} s", flush=True)
        shutil.copy(staging / "app_export" / held_back, app_export / held_back)
        silver_tables = [
            names(t) for t in (tables.ATHLETES, tables.SESSIONS, tables.RACES, tables.RACE_SPLITS, tables.QUARANTINE)
        ]
        before = {table: current_version(spark, table) for table in silver_tables}
        day = {step: run(step, last, "the-day") for step in DAY_STEPS}
        # The reference: silver's day as a full rebuild, from the same start (its tables restored).
        for table, version in before.items():
            spark.sql(f"RESTORE TABLE {table} TO VERSION AS OF {version}")
        silver_full = run("silver", last, "the-day-full", full_refresh=True)
        print(f"the day {last}: {sum(day.values()):.1f} s", flush=True)
        bronze_rows = spark.table(names(tables.SESSIONS_RAW)).count()
        spark.stop()
    finally:
        server.stop()
    return {
        "years": args.history_years,
        "athletes": args.athletes,
        "session_records": summary.session_records,
        "bronze_rows": bronze_rows,
        "last_day_lines": sum(1 for _ in (staging / "app_export" / held_back).open()),
        "catch_up_s": catch_up,
        "day_s": day,
        "silver_full_refresh_s": silver_full,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--athletes", type=int, default=40)
    parser.add_argument("--years", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--role", default="main", help=argparse.SUPPRESS)
    parser.add_argument("--history-years", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.role != "main":
        write_result(args.work_dir, args.role, child(args))
        return 0

    root = args.work_dir or Path(tempfile.mkdtemp(prefix="daily-run-scaling-"))
    print(machine_line())
    print(f"{args.athletes} athletes; histories of {', '.join(f'{y} y' for y in args.years)}; work dir {root}")
    results = {}
    for years in args.years:
        work = root / f"{years}y"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        role = f"history-{years}y"
        extra = ["--athletes", str(args.athletes), "--seed", str(args.seed), "--history-years", str(years)]
        results[years] = result = run_measured(__file__, role, work, dict(os.environ), extra)
        print(f"{years} y done in {result['wall_seconds']:.0f} s", flush=True)

    width = 14
    header = f"{'':<30}" + "".join(f"{f'{y} y':>{width}}" for y in results)
    lines = [header]

    def row(label: str, cell) -> None:
        lines.append(f"{label:<30}" + "".join(f"{cell(r):>{width}}" for r in results.values()))

    row("bronze rows", lambda r: f"{r['bronze_rows']:,}")
    row("the day's landed lines", lambda r: f"{r['last_day_lines']:,}")
    row("catch-up (s)", lambda r: f"{sum(r['catch_up_s'].values()):.1f}")
    for step in DAY_STEPS:
        row(f"the day: {step} (s)", lambda r, s=step: f"{r['day_s'][s]:.1f}")
    row("the day: total (s)", lambda r: f"{sum(r['day_s'].values()):.1f}")
    row("silver --full-refresh (s)", lambda r: f"{r['silver_full_refresh_s']:.1f}")
    row("peak RSS (GiB)", lambda r: f"{r['peak']['total'] / 1024**3:.2f}" if "peak" in r else "-")
    print("\n".join(lines))
    first, longest = results[min(results)], results[max(results)]
    if first is not longest:
        ratio = sum(longest["day_s"].values()) / sum(first["day_s"].values())
        silver = longest["day_s"]["silver"] / first["day_s"]["silver"]
        full = longest["silver_full_refresh_s"] / first["silver_full_refresh_s"]
        print(
            f"the day at {max(results)} y / at {min(results)} y: {ratio:.2f}x (goal <= 1.3x); "
            f"silver alone {silver:.2f}x (a full rebuild: {full:.2f}x)"
        )
    (root / "summary.json").write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
