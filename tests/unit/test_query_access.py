"""Query access without Spark, as logic: name resolution, which tables a query names, the
query servers' command lines, the status view's freshness. (Reads of real Delta tables, the
servers over the wire and DuckDB vs Spark: tests/integration/test_query_access.py.)"""

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from athlete_platform.config import load_settings
from athlete_platform.errors import ConfigError, PlatformError, SetupError
from athlete_platform.lakehouse import tables as t
from athlete_platform.lakehouse.duckdb_sql import query as duckdb_query
from athlete_platform.lakehouse.duckdb_sql import referenced_tables
from athlete_platform.lakehouse.reads import open_table, read_table, resolve, spellings
from athlete_platform.lakehouse.sql_servers import CONNECT_SERVER_CLASS, THRIFT_SERVER_CLASS, QueryServer
from athlete_platform.lakehouse.table_status import DATA_DATE_COLUMN, TableStatus, table_status
from athlete_platform.reporting.platform_status import airflow_status, table_lines

HOME = Path(__file__).resolve().parents[2]
PREFIXED = t.TableNames("uc_athlete_data", schema_prefix="dev_")


def _settings(tmp_path, **env):
    return load_settings(HOME / "conf" / "local.yaml", environ={"ATHLETE_DATA_DIR": str(tmp_path), **env})


def test_a_table_answers_to_its_three_and_two_level_names_with_and_without_prefix():
    assert spellings(t.ATHLETE_PREDICTIONS, PREFIXED) == [
        "uc_athlete_data.dev_gold.athlete_predictions",
        "dev_gold.athlete_predictions",
        "gold.athlete_predictions",
    ]
    for name in spellings(t.ATHLETE_PREDICTIONS, PREFIXED) + ["`GOLD.Athlete_Predictions`"]:
        assert resolve(name, PREFIXED) is t.ATHLETE_PREDICTIONS


def test_an_unknown_name_lists_the_tables_there_are():
    with pytest.raises(ConfigError, match=r"No table 'gold.athlete_prediction' .*gold\.athlete_predictions"):
        resolve("gold.athlete_prediction", PREFIXED)


def test_a_query_reads_only_the_tables_it_names():
    names = t.TableNames("uc_athlete_data")
    sql = (
        "SELECT p.* FROM uc_athlete_data.gold.athlete_predictions p "
        "JOIN silver.athletes a USING (athlete_id) WHERE a.sex = 'F'"
    )
    assert referenced_tables(sql, names) == [t.ATHLETES, t.ATHLETE_PREDICTIONS]
    # quoted and spaced names are the same names to DuckDB
    quoted = 'SELECT * FROM "gold"."athlete_predictions", uc_athlete_data . silver . "sessions"'
    assert referenced_tables(quoted, names) == [t.SESSIONS, t.ATHLETE_PREDICTIONS]
    # a longer name, a string, a comment or a CTE of the same name is not a reference
    assert referenced_tables("SELECT 1 FROM gold.athlete_predictions_old", names) == []
    assert referenced_tables("SELECT 'silver.sessions' -- silver.athletes", names) == []
    assert referenced_tables("WITH athletes AS (SELECT 1) SELECT * FROM athletes", names) == []


def test_a_query_duckdb_cannot_parse_gets_its_syntax_error():
    with pytest.raises(PlatformError, match='The query failed in DuckDB: .*syntax error at or near "SELEC"'):
        referenced_tables("SELEC 1", t.TableNames("uc_athlete_data"))


def test_reads_without_spark_refuse_other_catalog_backends_and_missing_tables(tmp_path):
    with pytest.raises(SetupError, match=r"no Delta files at .*athlete-platform run"):
        read_table("gold.athlete_predictions", settings=_settings(tmp_path))
    unity = _settings(tmp_path, ATHLETE_CATALOG__BACKEND="unity", ATHLETE_CATALOG__UNITY_URI="http://uc:8080")
    with pytest.raises(SetupError, match="embedded catalog's table locations only .*sql-server up"):
        open_table(unity, t.ATHLETE_PREDICTIONS)
    with pytest.raises(ConfigError, match="columns: .* no column nope"):
        read_table("gold.athlete_predictions", columns=["athlete_id", "nope"], settings=_settings(tmp_path))


def test_query_server_commands_carry_the_jobs_session_settings(tmp_path):
    settings = _settings(tmp_path, ATHLETE_QUERY_SERVERS__SQL_PORT="10123")
    sql = QueryServer.from_settings(settings, "sql").command()
    connect = QueryServer.from_settings(settings, "connect").command()
    assert sql[1:3] == ["--class", THRIFT_SERVER_CLASS] and sql[-1] == "spark-internal"
    assert connect[1:3] == ["--class", CONNECT_SERVER_CLASS]
    assert "spark.hive.server2.thrift.port=10123" in sql
    assert "spark.hive.server2.thrift.bind.host=127.0.0.1" in sql
    assert "spark.connect.grpc.binding.port=15002" in connect
    for command in (sql, connect):
        # the catalog alias, Delta and the metastore client, exactly as a job's session has them
        assert "spark.sql.catalog.uc_athlete_data=io.athleteplatform.catalog.SessionCatalogAlias" in command
        assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in command
        assert "derbyclient-10.16.1.1.jar" in command[command.index("--driver-class-path") + 1]


def test_every_table_has_a_data_date_column_it_really_has():
    assert set(DATA_DATE_COLUMN) == set(t.ALL_TABLES)
    for table, column in DATA_DATE_COLUMN.items():
        assert table.column_types()[column] in ("DATE", "TIMESTAMP"), (table.name, column)


def test_status_of_a_table_not_written_yet_and_its_lines(tmp_path):
    status = table_status(_settings(tmp_path), t.ATHLETE_PREDICTIONS)
    assert status.version is None and status.problem is None
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    two_hours_ago = now - timedelta(hours=2)
    written = TableStatus("uc_athlete_data.gold.x", 3, two_hours_ago, "MERGE", 80, "as_of_date", date(2026, 11, 29))
    assert written.days_behind(now.date()) == 3
    lines = table_lines([status, written], now.date(), now)
    assert "not written yet" in lines[1]
    assert lines[2].split()[1:5] == ["3", "80", "2", "h"] and lines[2].endswith("3 d")


def test_airflow_status_without_a_home_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    assert airflow_status() == ("no Airflow home configured (set AIRFLOW_HOME)", [])
    where, runs = airflow_status(str(tmp_path))
    assert "no SQLite metadata database" in where and runs == []


def test_a_unity_token_is_never_on_the_server_command_line(tmp_path):
    unity = _settings(
        tmp_path,
        ATHLETE_CATALOG__BACKEND="unity",
        ATHLETE_CATALOG__UNITY_URI="http://uc:8080",
        ATHLETE_CATALOG__UNITY_TOKEN="s3cret-token",
    )
    server = QueryServer.from_settings(unity, "sql")
    command = server.command()
    assert not any("s3cret-token" in part for part in command)
    assert command[command.index("--properties-file") + 1] == str(server.secrets_file)
    server._write_secrets()
    assert server.secrets_file.read_text() == "spark.sql.catalog.uc_athlete_data.token s3cret-token\n"
    assert server.secrets_file.stat().st_mode & 0o777 == 0o600


def test_a_stale_pid_file_naming_another_process_is_not_the_server(tmp_path):
    server = QueryServer.from_settings(_settings(tmp_path), "connect")
    server.folder.mkdir(parents=True)
    server.pid_file.write_text(str(os.getpid()))  # alive, but this is pytest, not the server
    assert server.running_pid() is None and not server.pid_file.exists()
    assert server.status() == "down"


def test_status_and_read_table_of_a_real_delta_table_written_without_spark(tmp_path):
    """bronze.session_events is written by delta-rs (the API's path): two appends, then its
    status (version, rows, newest day) and `read_table` at each version."""
    import pyarrow as pa

    from athlete_platform.lakehouse import delta_rs

    settings = _settings(tmp_path)
    location = delta_rs.table_location(settings, t.SESSION_EVENTS)
    delta_rs.create_if_missing(location, t.SESSION_EVENTS)

    def events(ids, received):
        rows = [
            {
                "event_id": i,
                "session_id": "s",
                "athlete_id": "ath_0001",
                "payload": "{}",
                "payload_truncated": False,
                "source": "api",
                "_received_at": received,
            }
            for i in ids
        ]
        return pa.Table.from_pylist(rows, schema=delta_rs.arrow_schema(t.SESSION_EVENTS))

    delta_rs.append(location, events(["a", "b"], datetime(2026, 11, 30, 8, tzinfo=UTC)), "test")
    delta_rs.append(location, events(["c"], datetime(2026, 12, 1, 23, 59, tzinfo=UTC)), "test")
    status = table_status(settings, t.SESSION_EVENTS)
    assert (status.version, status.rows, status.latest_date) == (2, 3, date(2026, 12, 1))
    assert status.days_behind(date(2026, 12, 2)) == 1
    assert read_table("bronze.session_events", settings=settings).num_rows == 3
    first = read_table("bronze.session_events", version=1, settings=settings)
    assert first.column("event_id").to_pylist() == ["a", "b"]
    with pytest.raises(ConfigError, match="versions 0 to 2, not 7"):
        read_table("bronze.session_events", version=7, settings=settings)
    # DuckDB over it by its three-level name; a table not written yet is absent, with the list
    counted = duckdb_query(settings, 'SELECT count(*) AS n, max(event_id) AS last FROM "bronze".session_events')
    assert counted.to_pylist() == [{"n": 3, "last": "c"}]
    with pytest.raises(PlatformError, match=r'predictions" does not exist.*tables are .*not written yet is absent'):
        duckdb_query(settings, "SELECT * FROM uc_athlete_data.gold.athlete_predictions")
