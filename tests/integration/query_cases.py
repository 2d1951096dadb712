"""Query access (issue 15) on a real lakehouse, as cases for tests/integration/test_serving.py's
module lake (no lakehouse of their own: `make test` is over its time budget). Each function
takes that module's fixtures; test_serving.py calls them from thin test functions.

What is checked over the wire: Spark's Thrift server through beeline (the JDBC client pyspark
ships), the Spark Connect server through the thin client in a process of its own (as a
notebook would), both by three-level names. Without Spark: `read_table` and the DuckDB engine
against Spark's own answers over the same tables, and `athlete-platform status`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyspark

from athlete_platform import read_table
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.duckdb_sql import query as duckdb_query
from athlete_platform.lakehouse.sql_servers import QueryServer
from tests.conftest import HOME, free_port

BEELINE_PROMPT = re.compile(r"^\d+: jdbc:hive2://\S+> ")
README_QUERY = re.compile(r'^athlete-platform sql --engine duckdb "(.+)"$')
BEELINE = [
    "java",
    "-cp",
    str(Path(pyspark.__file__).parent / "jars" / "*"),
    "org.apache.hive.beeline.BeeLine",
]


def readme_queries() -> list[str]:
    return [m.group(1) for line in (HOME / "README.md").read_text().splitlines() if (m := README_QUERY.match(line))]


def _for_module(sql: str, names) -> str:
    """A README query with this module's schema names (its tables carry a schema prefix)."""
    for schema in tables.SCHEMAS:
        sql = sql.replace(f"uc_athlete_data.{schema}.", f"{names.schema(schema)}.")
    return sql


def _plain(value):
    """A cell as a comparable Python value (Spark rows and Arrow give dates/decimals alike)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return value


def _same_rows(left: list[tuple], right: list[tuple], what: str) -> None:
    assert len(left) == len(right) > 0, f"{what}: {len(left)} vs {len(right)} rows"
    for a, b in zip(left, right, strict=True):
        assert len(a) == len(b), what
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                assert x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), (what, a, b)
            else:
                assert _plain(x) == _plain(y), (what, a, b)


def duckdb_equals_spark_for_the_readme_queries(spark, names, lake) -> None:
    settings, _run_date, _trained = lake
    queries = readme_queries()
    assert len(queries) >= 5
    for sql in queries:
        module_sql = _for_module(sql, names)
        want = [tuple(row) for row in spark.sql(module_sql).collect()]
        result = duckdb_query(settings, module_sql)
        got = list(zip(*(column.to_pylist() for column in result.columns), strict=True))
        _same_rows(got, want, sql[:80])


def read_table_equals_spark_and_time_travels(spark, names, lake) -> None:
    settings, run_date, _trained = lake
    predictions = names(tables.ATHLETE_PREDICTIONS)
    key = ["athlete_id", "as_of_date", "race_distance_m"]
    columns = [*key, "predicted_finish_time_s", "model_version"]
    arrow = read_table("gold.athlete_predictions", columns=columns, settings=settings)
    got = sorted(zip(*(arrow.column(c).to_pylist() for c in columns), strict=True))
    want = sorted(tuple(r) for r in spark.table(predictions).select(*columns).collect())
    _same_rows(got, want, "read_table vs Spark")
    # filters are pushed into the scan; the three-level name works too
    one = read_table(predictions, filters=[("athlete_id", "=", want[0][0])], settings=settings)
    assert set(one.column("athlete_id").to_pylist()) == {want[0][0]} and one.num_rows == sum(
        1 for row in want if row[0] == want[0][0]
    )
    # time travel: version 0 is the empty table Spark created first, as Spark sees it too
    first = spark.read.option("versionAsOf", 0).table(predictions).count()
    assert read_table("gold.athlete_predictions", version=0, settings=settings).num_rows == first


def server_on_a_free_port(settings, kind: str) -> QueryServer:
    """The module's query server of `kind` on a port of its own (not the machine's default)."""
    port_key = {"sql": "sql_port", "connect": "connect_port"}[kind]
    ports = settings.query_servers.model_copy(update={port_key: free_port()})
    return QueryServer.from_settings(settings.model_copy(update={"query_servers": ports}), kind)


def thrift_server_answers_beeline(spark, names, lake) -> None:
    settings, run_date, _trained = lake
    server = server_on_a_free_port(settings, "sql")
    predictions = names(tables.ATHLETE_PREDICTIONS)
    sql = (
        f"SELECT athlete_id, race_distance_m, predicted_finish_time_s FROM {predictions} "
        f"WHERE as_of_date = DATE'{run_date}' ORDER BY athlete_id, race_distance_m"
    )
    try:
        assert server.up().startswith("started")
        assert server.is_up() and server.status().startswith("up: jdbc:hive2://127.0.0.1:")
        done = subprocess.run(
            [*BEELINE, "-u", server.url, "--silent=true", "--outputformat=csv2", "-e", sql],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    finally:
        stopped = server.down()
    assert stopped.startswith("stopped") and not server.is_up() and server.status() == "down"
    # beeline echoes its prompt ("0: jdbc:hive2://...> ") in front of the header line
    lines = [BEELINE_PROMPT.sub("", line) for line in done.stdout.splitlines() if line.strip()]
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    assert rows[0] == ["athlete_id", "race_distance_m", "predicted_finish_time_s"]
    got = [(a, float(d), float(p)) for a, d, p in rows[1:]]
    want = [tuple(r) for r in spark.sql(sql).collect()]
    _same_rows(got, want, "beeline over JDBC vs Spark")


CONNECT_CLIENT = """
import json, sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
rows = spark.table(sys.argv[2]).where(f"as_of_date = DATE'{sys.argv[3]}'").select(
    "athlete_id", "race_distance_m", "predicted_finish_time_s").orderBy("athlete_id", "race_distance_m").collect()
print(json.dumps({"connect": spark.conf.get("spark.sql.catalogImplementation", "?"), "rows": [list(r) for r in rows]}))
"""


def connect_server_answers_the_thin_client(spark, names, lake) -> None:
    settings, run_date, _trained = lake
    server = server_on_a_free_port(settings, "connect")
    predictions = names(tables.ATHLETE_PREDICTIONS)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYSPARK_GATEWAY")}
    try:
        assert server.up().startswith("started")
        done = subprocess.run(
            [sys.executable, "-c", CONNECT_CLIENT, server.url, predictions, str(run_date)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    finally:
        server.down()
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    want = [
        tuple(r)
        for r in spark.table(predictions)
        .where(f"as_of_date = DATE'{run_date}'")
        .select("athlete_id", "race_distance_m", "predicted_finish_time_s")
        .orderBy("athlete_id", "race_distance_m")
        .collect()
    ]
    _same_rows([tuple(r) for r in answer["rows"]], want, "Spark Connect vs Spark")
    assert answer["connect"] == "hive"  # the server's session: the catalog server's metastore


def status_reports_tables_and_models(spark, names, lake) -> None:
    settings, run_date, trained = lake
    done = subprocess.run(
        [sys.executable, "-m", "athlete_platform.cli", "status"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(HOME / "src")},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    predictions = names(tables.ATHLETE_PREDICTIONS)
    (line,) = [line for line in done.stdout.splitlines() if line.split()[:1] == [predictions]]
    version = spark.sql(f"DESCRIBE HISTORY {predictions} LIMIT 1").first()["version"]
    rows = spark.table(predictions).count()
    latest = spark.table(predictions).agg({"as_of_date": "max"}).first()[0]
    fields = line.split()
    assert fields[1:3] == [str(version), str(rows)], line
    assert f"{latest} (as_of_date)" in line and line.endswith(f"{(datetime.now(UTC).date() - latest).days} d")
    assert f"{names(tables.TIME_ESTIMATOR)}: " in done.stdout and "@champion -> v" in done.stdout
    assert re.search(r"\[\s*up\] catalog server", done.stdout), done.stdout
