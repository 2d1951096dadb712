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
    if args.action == "serve":
        server.serve()  # replaces this process
    action = {"up": server.start, "down": server.stop, "status": server.status}[args.action]
    print(f"catalog server: {action()}")
    return 0 if args.action != "status" or server.is_answering() else 1


def _cluster(args: argparse.Namespace, settings: Settings) -> int:
    from athlete_platform.lakehouse.standalone import StandaloneCluster

    cluster = StandaloneCluster(settings.data_path / "spark-cluster")
    if args.action == "status":
        status = cluster.status()
        print(f"{cluster.master_url}: {cluster.alive_workers()} alive workers" if status else "not running")
        return 0 if status else 1
    print({"up": cluster.up, "down": cluster.down}[args.action]())
    return 0


def _mlflow_ui(args: argparse.Namespace, settings: Settings) -> int:
    """A real MLflow tracking server + UI over the platform's store (foreground)."""
    import os
    import shutil

    settings.mlflow_path.mkdir(parents=True, exist_ok=True)
    mlflow = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
    command = [
        mlflow,
        "server",
        "--backend-store-uri",
        settings.tracking_uri,
        "--default-artifact-root",
        (settings.mlflow_path / "artifacts").as_uri(),
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    print(f"MLflow UI on http://{args.host}:{args.port} over {settings.tracking_uri}", flush=True)
    os.execv(command[0], command)
    return 0


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
    from pyspark.errors import PySparkException

    from athlete_platform.lakehouse.spark import build_spark

    spark = build_spark(settings, master=args.master)
    # pyspark logs every failed query as a JSON record; the one-line message below suffices.
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    try:
        frame = spark.sql(args.query)
        frame.show(args.limit, truncate=False)
    except PySparkException as exc:  # analysis, parse and runtime (e.g. ANSI) errors
        first_line = str(exc).strip().splitlines()[0]
        raise PlatformError(f"The query failed: {first_line}") from None
    return 0


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from athlete_platform.pipelines import generate_sample_data

    summary = generate_sample_data(settings)
    print(
        f"sample data: {summary.files_written} files, {summary.lines_written} lines "
        f"({summary.malformed_lines} malformed) in {settings.landing_path}; last day {settings.sample_data.last_date}"
    )
    return 0


def _step(step_name: str):
    """A CLI handler running one batch step (or all of them) for --run-date."""

    def handler(args: argparse.Namespace, settings: Settings) -> int:
        from athlete_platform import pipelines
        from athlete_platform.jobs import make_context, parse_run_date

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        run_date = parse_run_date(args.run_date) if args.run_date else settings.sample_data.last_date
        context = make_context(step_name, settings, run_date, args.master, args)
        if step_name == "run":
            print(f"batch run for {run_date} (catalog {context.names.catalog or 'session'})")
            if not args.no_generate:
                print("[0] sample data ...")
                _generate(args, settings)
            results = pipelines.run_batch(context)
            print("\n".join(pipelines.summary_lines(context, results)))
        elif step_name == "features":
            print(pipelines.feature_pipeline(context, full_refresh=args.full_refresh))
        elif step_name == "predict":
            day = parse_run_date
            print(
                pipelines.batch_inference(
                    context,
                    start=day(args.start) if args.start else None,
                    end=day(args.end) if args.end else None,
                    as_of=day(args.as_of) if args.as_of else (None if args.start else run_date),
                )
            )
        else:
            print(getattr(pipelines, step_name)(context))
        return 0

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="athlete-platform", description="Athlete Platform lakehouse.")
    parser.add_argument("--conf-file", help="YAML settings (default conf/local.yaml or $ATHLETE_CONF_FILE)")
    parser.add_argument("--master", help="Spark master, overrides spark.master (e.g. spark://host:7077)")
    sub = parser.add_subparsers(dest="command", required=True)

    catalog = sub.add_parser("catalog", help="start, stop or check the embedded catalog server")
    catalog.add_argument("action", choices=["up", "down", "status", "serve"], help="serve = foreground")
    catalog.set_defaults(handler=_catalog)

    cluster = sub.add_parser("cluster", help="start, stop or check a Spark standalone cluster on 127.0.0.1")
    cluster.add_argument("action", choices=["up", "down", "status"])
    cluster.set_defaults(handler=_cluster)

    ui = sub.add_parser("mlflow-ui", help="serve the MLflow UI over the platform's tracking store")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(handler=_mlflow_ui)

    init = sub.add_parser("init", help="create the catalog's schemas (idempotent) and list what exists")
    init.set_defaults(handler=_init)

    generate = sub.add_parser("generate", help="write the configured sample data into the landing folder")
    generate.set_defaults(handler=_generate)

    date_help = "run date YYYY-MM-DD (default: the last day of the configured sample data)"
    for command, step, text in (
        ("ingest", "bronze_ingestion", "landing folder -> bronze (new files only)"),
        ("silver", "silver_pipeline", "bronze -> silver athletes, sessions, races"),
        ("features", "features", "silver -> feature_store.athlete_rolling_features (incremental)"),
        ("train", "training_pipeline", "train + register the time estimator, promotion gate"),
        ("predict", "predict", "batch inference into gold.athlete_predictions (--as-of or --start/--end)"),
        ("report", "weekly_report", "gold.athlete_weekly_report + HTML report per athlete"),
        ("run", "run", "the batch system end to end: sample data -> ... -> inference -> report"),
    ):
        step_parser = sub.add_parser(command, help=text)
        step_parser.add_argument("--run-date", help=date_help)
        step_parser.set_defaults(handler=_step(step))
    sub.choices["features"].add_argument("--full-refresh", action="store_true", help="recompute every athlete")
    sub.choices["predict"].add_argument("--as-of", help="latest feature row per athlete on or before this day")
    sub.choices["predict"].add_argument("--start", help="first day of a range (with --end)")
    sub.choices["predict"].add_argument("--end", help="last day of a range (inclusive)")
    sub.choices["run"].add_argument("--no-generate", action="store_true", help="use the landing folder as it is")

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
