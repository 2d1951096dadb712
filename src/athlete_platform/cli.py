"""The `athlete-platform` console command.

Every subcommand takes `--conf-file` (default conf/local.yaml or $ATHLETE_CONF_FILE) and
prints a one-paragraph error, not a stack trace, for bad input or missing set-up.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from athlete_platform.config import Settings, load_settings
from athlete_platform.errors import PlatformError


def _catalog(args: argparse.Namespace, settings: Settings) -> int:
    from athlete_platform.lakehouse.catalog_server import CatalogServer

    if settings.catalog.backend != "embedded":
        print(f"catalog.backend is '{settings.catalog.backend}': the catalog server is not managed by this project.")
        return 0
    server = CatalogServer.from_settings(settings)
    action = {"up": server.start, "down": server.stop, "status": server.status}[args.action]
    print(f"catalog server: {action()}")
    return 0 if args.action != "status" or server.is_answering() else 1


def _init(args: argparse.Namespace, settings: Settings) -> int:
    from athlete_platform.lakehouse.bootstrap import bootstrap_namespace, list_namespace
    from athlete_platform.lakehouse.spark import build_spark
    from athlete_platform.lakehouse.tables import TableNames

    spark = build_spark(settings, master=args.master)
    names = TableNames.from_settings(settings.catalog)
    bootstrap_namespace(spark, names)
    print(f"catalog {names.catalog or '(session)'}:")
    for schema, tables in list_namespace(spark, names).items():
        print(f"  {names.schema(schema)}: {', '.join(tables) if tables else '(no tables yet)'}")
    return 0


def _sql(args: argparse.Namespace, settings: Settings) -> int:
    from pyspark.errors import AnalysisException, ParseException

    from athlete_platform.lakehouse.spark import build_spark

    spark = build_spark(settings, master=args.master)
    # pyspark logs every failed query as a JSON record; the one-line message below suffices.
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    try:
        frame = spark.sql(args.query)
        frame.show(args.limit, truncate=False)
    except (AnalysisException, ParseException) as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise PlatformError(f"The query failed: {first_line}") from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="athlete-platform", description="Athlete Platform lakehouse.")
    parser.add_argument("--conf-file", help="YAML settings (default conf/local.yaml or $ATHLETE_CONF_FILE)")
    parser.add_argument("--master", help="Spark master, overrides spark.master (e.g. spark://host:7077)")
    sub = parser.add_subparsers(dest="command", required=True)

    catalog = sub.add_parser("catalog", help="start, stop or check the embedded catalog server")
    catalog.add_argument("action", choices=["up", "down", "status"])
    catalog.set_defaults(handler=_catalog)

    init = sub.add_parser("init", help="create the catalog's schemas (idempotent) and list what exists")
    init.set_defaults(handler=_init)

    sql = sub.add_parser("sql", help="run Spark SQL against the lakehouse and print the result")
    sql.add_argument("query")
    sql.add_argument("--limit", type=int, default=1000, help="rows to print (default 1000)")
    sql.set_defaults(handler=_sql)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    try:
        return handler(args, load_settings(args.conf_file))
    except PlatformError as exc:
        print(f"athlete-platform: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
