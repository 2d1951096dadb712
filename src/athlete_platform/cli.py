"""The `athlete-platform` console command.

Every subcommand takes `--conf-file` (default conf/local.yaml or $ATHLETE_CONF_FILE) and
prints a one-paragraph error, not a stack trace, for bad input or missing set-up.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Sequence

from athlete_platform import steps
from athlete_platform.config import Settings, load_settings
from athlete_platform.errors import ConfigError, PlatformError


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
    return 0 if args.action != "status" or server.serves_this_folder() else 1


def _online_store(args: argparse.Namespace, settings: Settings) -> int:
    """up/down/status of the project's redis-server; check: online rows vs the offline latest rows."""
    if args.action == "check":
        from athlete_platform.online.check import check_online_store

        logging.getLogger("athlete_platform").setLevel(logging.WARNING)
        ctx = steps.make_context(settings, settings.sample_data.last_date, args.master)
        report = check_online_store(ctx)
        print("\n".join(report.lines(args.limit)))
        return 1 if report.differences else 0
    if settings.online_store.backend != "redis":
        if args.action == "status":
            from athlete_platform.online.backends import open_store

            with open_store(settings) as store:
                meta = store.metadata()
            print(
                f"online store: sqlite file {meta.location}, {meta.rows} rows, feature table "
                f"v{meta.source_version}, materialized {meta.materialized_at} (no server: nothing to start)"
            )
            return 0
        verb = "start" if args.action == "up" else "stop"
        print(
            f"online_store.backend is '{settings.online_store.backend}': there is no server to {verb} "
            f"(the store is the file {settings.online_store_path}). Set online_store.backend: redis to use redis."
        )
        return 0
    from athlete_platform.online.redis_server import RedisServer

    server = RedisServer.from_settings(settings)
    if args.action == "status":
        line, ours = server.status()
        print(f"online store redis-server: {line}")
        return 0 if ours else 1
    print(f"online store redis-server: {server.start() if args.action == 'up' else server.stop()}")
    return 0


def _cluster(args: argparse.Namespace, settings: Settings) -> int:
    from athlete_platform.lakehouse.standalone import StandaloneCluster

    cluster = StandaloneCluster(settings.data_path / "spark-cluster")
    if args.action == "status":
        status = cluster.status()
        print(f"{cluster.master_url}: {cluster.alive_workers()} alive workers" if status else "not running")
        return 0 if status else 1
    print({"up": cluster.up, "down": cluster.down}[args.action]())
    return 0


def _query_server(kind: str):
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        from athlete_platform.lakehouse.sql_servers import QueryServer

        server = QueryServer.from_settings(settings, kind)
        if args.action == "serve":
            server.serve()  # replaces this process
        print(f"{server.kind.title}: {getattr(server, args.action)()}")
        return 0 if args.action != "status" or server.is_up() else 1

    return handler


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from athlete_platform.reporting.platform_status import status_lines

    print("\n".join(status_lines(settings)))
    return 0


def _mlflow_ui(args: argparse.Namespace, settings: Settings) -> int:
    """A real MLflow tracking server + UI over the platform's store (foreground)."""
    import os
    import shutil

    from athlete_platform.lakehouse.relocation import relocate_mlflow_store

    settings.mlflow_path.mkdir(parents=True, exist_ok=True)
    if not settings.mlflow.tracking_uri:  # the store follows a moved data folder (lakehouse.relocation)
        relocate_mlflow_store(settings.mlflow_database_path, settings.mlflow_artifacts_path)
    mlflow = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
    command = [
        mlflow,
        "server",
        "--backend-store-uri",
        settings.tracking_uri,
        "--default-artifact-root",
        settings.mlflow_artifacts_path.as_uri(),
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
    if args.engine == "duckdb":
        from athlete_platform.lakehouse.duckdb_sql import query

        result = query(settings, args.query)
        print(result.slice(0, args.limit).to_pandas().to_string(index=False, max_colwidth=80))
        shown = min(result.num_rows, args.limit)
        rows = f"{result.num_rows} row{'s' if result.num_rows != 1 else ''}"
        print(f"({rows})" if shown == result.num_rows else f"({rows}, {shown} shown)")
        return 0
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
    from athlete_platform.ingestion.sample_data import GeneratorConfig, generate

    cfg = settings.sample_data
    config = GeneratorConfig(seed=cfg.seed, n_athletes=cfg.n_athletes, n_days=cfg.n_days, start_date=cfg.start_date)
    summary = generate(config, settings.landing_path)
    print(
        f"sample data: {summary.files_written} files, {summary.lines_written} lines "
        f"({summary.malformed_lines} malformed) in {settings.landing_path}; last day {settings.sample_data.last_date}"
    )
    return 0


def _ingest_events(args: argparse.Namespace, settings: Settings) -> int:
    """JSON lines (one session event per line) -> bronze.session_events, no Spark."""
    from athlete_platform.ingestion.events import events_location, ingest_event_file

    events, commits, seconds = ingest_event_file(settings, args.file, args.batch_size)
    print(
        f"{events} events appended to bronze.session_events in {commits} commit{'s' if commits != 1 else ''} "
        f"({seconds:.2f} s) at "
        f"{events_location(settings)}"
    )
    return 0


def _stream(args: argparse.Namespace, settings: Settings) -> int:
    """The streaming features job (foreground): bronze.session_events -> online store intraday fields."""
    from athlete_platform.online.streaming import run_stream

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.trigger_s <= 0:
        raise ConfigError(f"--trigger-s must be a positive number of seconds, not {args.trigger_s}.")
    run_stream(settings, master=args.master, trigger_s=args.trigger_s, available_now=args.available_now)
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """The deployment API (foreground): FastAPI on uvicorn, README "Serving"."""
    from athlete_platform.serving.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers)) if v}
    if overrides:
        settings = settings.model_copy(update={"serving": settings.serving.model_copy(update=overrides)})
    serve(settings, args.conf_file)
    return 0


def _ab_report(args: argparse.Namespace, settings: Settings) -> int:
    """Per serving variant: requests, races scored, MAPE with its interval, and which one wins."""
    from athlete_platform.lakehouse.spark import build_spark
    from athlete_platform.lakehouse.tables import TableNames
    from athlete_platform.reporting.ab_report import build_ab_report

    if args.horizon_days < 1:
        raise ConfigError(f"--horizon-days must be a whole number of days >= 1, not {args.horizon_days}.")
    spark = build_spark(settings, master=args.master)
    report = build_ab_report(spark, TableNames.from_settings(settings.catalog), args.horizon_days)
    print("\n".join(report.lines()))
    return 0


def _export_model(args: argparse.Namespace, settings: Settings) -> int:
    """A registered model version -> a folder the embedded predictor loads (no Spark)."""
    from pathlib import Path

    from athlete_platform.inference.export import export_model

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(export_model(settings, args.model, args.alias, Path(args.out)).summary())
    return 0


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    """A question about one athlete's training, answered from the lakehouse with citations (no Spark)."""
    import json
    from datetime import date

    from athlete_platform.assistant.agent import Assistant

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    as_of = None
    if args.as_of:
        try:
            as_of = date.fromisoformat(args.as_of)
        except ValueError:
            raise ConfigError(f"--as-of must be a date YYYY-MM-DD, not {args.as_of!r}.") from None
    answer = Assistant.from_settings(settings).ask(args.athlete, args.question, as_of)
    print(json.dumps(answer.to_dict(), indent=2, default=str) if args.json else "\n".join(answer.lines()))
    return 0


def _index(args: argparse.Namespace, settings: Settings) -> int:
    """The LanceDB document index: rebuild it from feature_store.document_chunks, or say what it holds."""
    if args.action == "status":
        from athlete_platform.features.documents.index import MISSING_HINT, index_exists, read_state

        path = settings.documents_index_path
        state = read_state(path) if index_exists(path) else None
        if state is None:
            print(f"document index: none at {path}; {MISSING_HINT}")
            return 1
        print(
            f"document index {path}: {state.rows} chunks from {state.table} v{state.version}, "
            f"embedded by {state.model_name} {state.model_version}"
        )
        return 0
    from athlete_platform.features.documents.pipeline import rebuild_index
    from athlete_platform.lakehouse.spark import build_spark
    from athlete_platform.lakehouse.tables import TableNames

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    spark = build_spark(settings, master=args.master)
    outcome = rebuild_index(spark, TableNames.from_settings(settings.catalog), settings)
    print(f"document index {settings.documents_index_path}: {outcome}")
    return 0


def _step(spec: steps.StepSpec):
    """A CLI handler running one registered step for --run-date (default: last sample-data day)."""

    def handler(args: argparse.Namespace, settings: Settings) -> int:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        params = steps.params_from_args(spec, args)  # bad arguments fail before the session is built
        ctx = steps.context_from_args(args, settings, settings.sample_data.last_date)
        print(steps.run_step(spec, ctx, params))
        return 0

    return handler


def _run(args: argparse.Namespace, settings: Settings) -> int:
    """The batch system end to end in one session: sample data, then every registered step."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = steps.context_from_args(args, settings, settings.sample_data.last_date)
    print(f"batch run for {ctx.run_date} (catalog {ctx.names.catalog or 'session'})")
    if not args.no_generate:
        print("[0] sample data ...")
        _generate(args, settings)
    with _step_progress() as (say, starting):
        results = steps.run_batch(ctx, say, starting)
    print("\n".join(steps.summary_lines(ctx, results)))
    print("\n".join(_example_answer(settings)))
    return 0


@contextlib.contextmanager
def _step_progress():
    """(say, starting) for `run_batch`: on a terminal a progress bar (rich) over the steps, with
    each step's line printed above it; otherwise (a log file, CI, Airflow) plain lines only."""
    if not sys.stdout.isatty():
        yield print, None
        return
    from rich.logging import RichHandler
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    root = logging.getLogger()
    saved = root.handlers[:]
    with Progress(*columns, transient=True) as progress:
        # The steps' log lines go through the bar's console, above the bar, not across it.
        root.handlers = [RichHandler(console=progress.console, show_path=False, markup=False)]
        task = progress.add_task("batch run", total=len(steps.STEPS))

        def starting(number: int, total: int, job: str) -> None:
            progress.update(task, completed=number - 1, description=f"step {number}/{total}: {job}")

        def say(line: str) -> None:
            progress.console.print(line, markup=False, highlight=False)  # "[1/12]" is text, not markup

        try:
            yield say, starting
            progress.update(task, completed=len(steps.STEPS))
        finally:
            root.handlers = saved


#: The question `run` ends with (README "Assistant"), for the first sample athlete.
EXAMPLE_QUESTION = ("ath_0001", "Why was my training load high this week?")


def _example_answer(settings: Settings) -> list[str]:
    """One assistant answer from the lakehouse just built; a failure is reported, not raised (the batch ran)."""
    from datetime import date, timedelta

    from athlete_platform.assistant.agent import Assistant
    from athlete_platform.assistant.tools import athlete_features

    athlete, question = EXAMPLE_QUESTION
    try:
        assistant = Assistant.from_settings(settings)
        # As of the Sunday of the athlete's highest-load week: the question's own case (the run
        # date's week may hold a single day).
        last = assistant.latest_day(athlete)
        season = athlete_features(assistant.lake, athlete, last - timedelta(days=364), last)["season"]
        as_of = min(date.fromisoformat(season["highest_week_start"]) + timedelta(days=6), last)
        header = ["", f"assistant example (athlete-platform ask --athlete {athlete} --as-of {as_of} {question!r}):"]
        answer = assistant.ask(athlete, question, as_of)
    except PlatformError as exc:
        return ["", f"assistant example: no answer: {exc}"]
    return header + [f"  {line}" if line else "" for text in answer.lines() for line in text.split("\n")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="athlete-platform", description="Athlete Platform lakehouse.")
    parser.add_argument("--conf-file", help="YAML settings (default conf/local.yaml or $ATHLETE_CONF_FILE)")
    parser.add_argument("--master", help="Spark master, overrides spark.master (e.g. spark://host:7077)")
    sub = parser.add_subparsers(dest="command", required=True)

    catalog = sub.add_parser("catalog", help="start, stop or check the embedded catalog server")
    catalog.add_argument("action", choices=["up", "down", "status", "serve"], help="serve = foreground")
    catalog.set_defaults(handler=_catalog)

    online = sub.add_parser(
        "online-store", help="start, stop or check the online store's redis-server; check online vs offline rows"
    )
    online.add_argument(
        "action",
        choices=["up", "down", "status", "check"],
        help="check = compare every online row with the offline latest row (exit 1 on any difference)",
    )
    online.add_argument("--limit", type=int, default=50, help="check: differences to print (default 50)")
    online.set_defaults(handler=_online_store)

    cluster = sub.add_parser("cluster", help="start, stop or check a Spark standalone cluster on 127.0.0.1")
    cluster.add_argument("action", choices=["up", "down", "status"])
    cluster.set_defaults(handler=_cluster)

    for kind, what in (("sql", "Spark's Thrift JDBC/ODBC server"), ("connect", "the Spark Connect server")):
        server = sub.add_parser(f"{kind}-server", help=f"start, stop or check {what} over the catalog (127.0.0.1)")
        server.add_argument("action", choices=["up", "down", "status", "serve"], help="serve = foreground")
        server.set_defaults(handler=_query_server(kind))

    status = sub.add_parser(
        "status", help="tables (version, rows, freshness), models and aliases, services, last DAG runs; no Spark"
    )
    status.set_defaults(handler=_status)

    ui = sub.add_parser("mlflow-ui", help="serve the MLflow UI over the platform's tracking store")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(handler=_mlflow_ui)

    init = sub.add_parser("init", help="create the catalog's schemas (idempotent) and list what exists")
    init.set_defaults(handler=_init)

    generate = sub.add_parser("generate", help="write the configured sample data into the landing folder")
    generate.set_defaults(handler=_generate)

    for spec in steps.STEPS:
        step_parser = sub.add_parser(spec.name, help=f"{spec.summary} (job: jobs/{spec.job}.py)")
        steps.add_step_arguments(step_parser, spec, run_date_required=False)
        step_parser.set_defaults(handler=_step(spec))
    run = sub.add_parser("run", help="the batch system end to end: sample data, then every step above")
    run.add_argument("--run-date", help="run date YYYY-MM-DD (default: the last sample-data day)")
    run.add_argument("--no-generate", action="store_true", help="use the landing folder as it is")
    run.set_defaults(handler=_run)

    index = sub.add_parser(
        "index", help="the document index (LanceDB): rebuild it from feature_store.document_chunks, or show its state"
    )
    index.add_argument("action", choices=["rebuild", "status"])
    index.set_defaults(handler=_index)

    events = sub.add_parser(
        "ingest-events", help="append session events (JSON lines, one per line) to bronze.session_events (no Spark)"
    )
    events.add_argument("file", help="a JSON-lines file, or - for standard input")
    events.add_argument("--batch-size", type=int, default=1000, help="events per Delta commit (default 1000)")
    events.set_defaults(handler=_ingest_events)

    stream = sub.add_parser(
        "stream",
        help="streaming features: bronze.session_events -> validate -> intraday features -> online store "
        "(job: jobs/streaming_features.py)",
    )
    stream.add_argument("--trigger-s", type=float, default=1.0, help="processing-time trigger, seconds (default 1)")
    stream.add_argument(
        "--available-now",
        "--once",
        dest="available_now",
        action="store_true",
        help="process every event posted so far, then stop",
    )
    stream.set_defaults(handler=_stream)

    serve = sub.add_parser(
        "serve",
        help="the deployment API (foreground): race predictions, live coaching, session events, "
        "Open Inference Protocol v2 (config: serving.*)",
    )
    serve.add_argument("--host", help="listen address (default serving.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default serving.port, 15280)")
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (default serving.workers, 1)")
    serve.set_defaults(handler=_serve)
    ab = sub.add_parser(
        "ab-report",
        help="score each serving variant's logged race predictions on the races that followed (MAPE, 95 %% "
        "interval, winner); run flush-inference-log first",
    )
    ab.add_argument(
        "--horizon-days", type=int, default=28, help="a prediction counts for races up to this many days on (28)"
    )
    ab.set_defaults(handler=_ab_report)

    export = sub.add_parser(
        "export-model",
        help="write a registered model version (by alias) to a folder the embedded predictor loads in-process",
    )
    export.add_argument("--model", required=True, help="short model name, e.g. time_estimator")
    export.add_argument("--alias", default="champion", help="registry alias to export (default champion)")
    export.add_argument("--out", required=True, help="the folder to write (replaced atomically)")
    export.set_defaults(handler=_export_model)

    ask = sub.add_parser(
        "ask",
        help="ask about one athlete's training (load, form, injury risk, races, notes): an answer with citations "
        "(config: assistant.*)",
    )
    ask.add_argument("--athlete", required=True, help="the athlete whose data is read, e.g. ath_0001")
    ask.add_argument("question", help='e.g. "Why was my training load high this week?"')
    ask.add_argument("--as-of", help="answer as of this day YYYY-MM-DD (default: the athlete's latest feature day)")
    ask.add_argument("--json", action="store_true", help="print the whole answer (tool calls, trace id) as JSON")
    ask.set_defaults(handler=_ask)

    sql = sub.add_parser("sql", help="run Spark SQL against the lakehouse and print the result")
    sql.add_argument("query")
    sql.add_argument("--limit", type=int, default=1000, help="rows to print (default 1000)")
    sql.add_argument(
        "--engine",
        choices=("spark", "duckdb"),
        default="spark",
        help="spark (default): a Spark session on the catalog; duckdb: in process over the Delta files "
        "(no JVM, embedded catalog only, DuckDB's SQL dialect)",
    )
    sql.set_defaults(handler=_sql)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    logging.getLogger("py4j").setLevel(logging.WARNING)  # no INFO line after an error's paragraph
    try:
        return handler(args, load_settings(args.conf_file))
    except PlatformError as exc:
        print(f"athlete-platform: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
