"""Warehouse storage over repeated re-runs of silver + features that change nothing, then maintenance.

    .venv/bin/python bench/storage_reruns.py --athletes 20 --days 365 --reruns 3

Runs in its own temp lakehouse (catalog server on a free port, `conf/test.yaml` settings, data
under --work-dir): sample data -> ingest -> silver -> features once, then `--reruns` times
silver + features for the same run date, then (when the step exists) `maintain` with a 0-hour
minimum retention. After each stage it prints the bytes and files under data/warehouse (data
files and `_delta_log` apart). Issue 10, item 9.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from datetime import date
from pathlib import Path


def folder_size(root: Path) -> tuple[int, int, int]:
    """(data files, data bytes, _delta_log bytes) under `root`."""
    files = data = log = 0
    for folder, _, names in os.walk(root):
        for name in names:
            size = (Path(folder) / name).stat().st_size
            if "_delta_log" in Path(folder).parts:
                log += size
            else:
                files, data = files + 1, data + size
    return files, data, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--athletes", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--reruns", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()

    home = Path(__file__).resolve().parents[1]
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="storage-reruns-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update(
        {
            "ATHLETE_CONF_FILE": str(home / "conf" / "test.yaml"),
            "ATHLETE_DATA_DIR": str(work),
            "ATHLETE_OUTPUT_DIR": str(work / "output"),
            "ATHLETE_CATALOG__PORT": str(port),
            "ATHLETE_SAMPLE_DATA__N_ATHLETES": str(args.athletes),
            "ATHLETE_SAMPLE_DATA__N_DAYS": str(args.days),
        }
    )
    from athlete_platform import steps
    from athlete_platform.config import load_settings
    from athlete_platform.ingestion.sample_data import GeneratorConfig, generate
    from athlete_platform.lakehouse.bootstrap import bootstrap_namespace
    from athlete_platform.lakehouse.catalog_server import CatalogServer
    from athlete_platform.lakehouse.spark import build_spark
    from athlete_platform.lakehouse.step import StepContext
    from athlete_platform.lakehouse.tables import TableNames

    settings = load_settings()
    cfg = settings.sample_data
    generate(
        GeneratorConfig(seed=cfg.seed, n_athletes=cfg.n_athletes, n_days=cfg.n_days, start_date=cfg.start_date),
        settings.landing_path,
    )
    server = CatalogServer.from_settings(settings)
    server.start()
    try:
        spark = build_spark(settings)
        names = TableNames.from_settings(settings.catalog)
        bootstrap_namespace(spark, names)
        run_date = cfg.last_date

        def run(step: str, run_id: str, day: date = run_date, **params):
            ctx = StepContext(settings, spark, names, day, run_id=run_id)
            return steps.run_step(steps.BY_NAME[step], ctx, params)

        def report(stage: str, started: float) -> None:
            files, data, log = folder_size(settings.warehouse_path)
            print(
                f"{stage:<28} {files:>7,} data files {data / 1e6:>9.2f} MB data "
                f"{log / 1e6:>7.2f} MB _delta_log   ({time.monotonic() - started:.0f} s)",
                flush=True,
            )

        print(f"lakehouse {work}: {args.athletes} athletes x {args.days} days, run date {run_date}")
        started = time.monotonic()
        run("ingest", "bench-0", date(2030, 1, 1))
        run("silver", "bench-0")
        run("features", "bench-0")
        report("first run", started)
        for attempt in range(1, args.reruns + 1):
            started = time.monotonic()
            run("silver", f"bench-{attempt}")
            run("features", f"bench-{attempt}")
            report(f"re-run {attempt} (silver+features)", started)
        if "maintain" in steps.BY_NAME:
            started = time.monotonic()
            update = {"min_retention_hours": 0.0, "retention_margin_hours": 0.0}
            settings = settings.model_copy(update={"maintenance": settings.maintenance.model_copy(update=update)})
            print(run("maintain", "bench-maintain"))
            report("after maintain (0 h min)", started)
        spark.stop()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
