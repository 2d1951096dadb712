"""What every job entry script shares: arguments, settings, the session, error handling.

A job script under jobs/ is `run_job(name, main)`; `main(context)` gets the parsed run date,
the settings, the SparkSession and the table-name renderer, and never reads "now".
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from athlete_platform.config import Settings, load_settings
from athlete_platform.errors import ConfigError, PlatformError
from athlete_platform.lakehouse.tables import TableNames

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("athlete_platform")


@dataclass(frozen=True)
class JobContext:
    name: str
    run_date: date | None
    settings: Settings
    spark: SparkSession
    names: TableNames
    args: argparse.Namespace
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def parse_run_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--run-date must be a date like 2024-06-30, not {text!r}.") from None


def job_parser(name: str, needs_run_date: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=name)
    parser.add_argument("--run-date", required=needs_run_date, help="the run date, YYYY-MM-DD")
    parser.add_argument("--conf-file", help="YAML settings (default conf/local.yaml or $ATHLETE_CONF_FILE)")
    parser.add_argument("--master", help="Spark master, overrides spark.master")
    return parser


def make_context(
    name: str, settings: Settings, run_date: date | None, master: str | None = None, args=None
) -> JobContext:
    """Build the session for `settings` and wrap it with what a job needs."""
    from athlete_platform.lakehouse.spark import build_spark

    spark = build_spark(settings, master=master)
    names = TableNames.from_settings(settings.catalog)
    return JobContext(name, run_date, settings, spark, names, args or argparse.Namespace())


def run_job(
    name: str,
    main: Callable[[JobContext], object],
    needs_run_date: bool = True,
    parser: argparse.ArgumentParser | None = None,
    argv: Sequence[str] | None = None,
) -> None:
    """Parse arguments, build the session, run `main`; exit 2 with a message on PlatformError."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = (parser or job_parser(name, needs_run_date)).parse_args(argv)
    try:
        run_date = parse_run_date(args.run_date) if args.run_date else None
        context = make_context(name, load_settings(args.conf_file), run_date, args.master, args)
        log.info("%s: run date %s, run id %s", name, run_date, context.run_id)
        main(context)
    except PlatformError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
