import re
from collections import Counter

import pytest
from pyspark.sql import types as T

from athlete_platform.config import CatalogSettings
from athlete_platform.lakehouse.ddl import schema_changes
from athlete_platform.lakehouse.tables import (
    ALL_TABLES,
    ATHLETE_PREDICTIONS,
    SCHEMAS,
    TIME_ESTIMATOR,
    Column,
    Table,
    TableNames,
)

# --- names --------------------------------------------------------------------------------


def test_table_names_render_catalog_schema_prefix_and_table():
    assert TableNames("uc_athlete_data")(ATHLETE_PREDICTIONS) == "uc_athlete_data.gold.athlete_predictions"
    assert TableNames(None)(ATHLETE_PREDICTIONS) == "gold.athlete_predictions"
    assert TableNames("uc_athlete_data", schema_prefix="t_")(ATHLETE_PREDICTIONS) == (
        "uc_athlete_data.t_gold.athlete_predictions"
    )
    assert TableNames(None, schema_prefix="t_").schema("gold") == "t_gold"
    assert TableNames("uc_athlete_data")(TIME_ESTIMATOR) == "uc_athlete_data.ml.time_estimator"


def test_three_level_names_on_embedded_and_unity_backends():
    for backend in ("embedded", "unity"):
        names = TableNames.from_settings(CatalogSettings(backend=backend))
        assert names(ATHLETE_PREDICTIONS) == "uc_athlete_data.gold.athlete_predictions"


def test_catalog_name_and_schema_prefix_come_from_config():
    names = TableNames.from_settings(CatalogSettings(name="uc_athlete_dev"))
    assert names(ATHLETE_PREDICTIONS) == "uc_athlete_dev.gold.athlete_predictions"
    assert names.schema("bronze") == "uc_athlete_dev.bronze"
    prefixed = TableNames.from_settings(CatalogSettings(schema_prefix="dev_alice_"))
    assert prefixed(ATHLETE_PREDICTIONS) == "uc_athlete_data.dev_alice_gold.athlete_predictions"


def test_session_backend_uses_two_level_names():
    names = TableNames.from_settings(CatalogSettings(backend="session", schema_prefix="t_"))
    assert names(ATHLETE_PREDICTIONS) == "t_gold.athlete_predictions"


# --- the registry's own rules -----------------------------------------------------------------


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: f"{t.schema}.{t.name}")
def test_registry_entry_is_consistent(table):
    # ensure_table creates the schema with SCHEMAS[table.schema] as its comment.
    assert table.schema in SCHEMAS
    assert set(table.keys) <= set(table.column_names), "every key is a column"
    assert [n for n, k in Counter(table.column_names).items() if k > 1] == []
    assert all(c.comment for c in table.columns), "every column has a comment"
    for name, expression in table.constraints.items():
        words = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", re.sub(r"'[^']*'", "", expression)))
        sql = {"and", "or", "not", "is", "null", "in", "between"}
        assert words - sql <= set(table.column_names), f"constraint {name} names an unknown column"


def test_table_names_are_unique():
    names = Counter(f"{t.schema}.{t.name}" for t in ALL_TABLES)
    assert [n for n, k in names.items() if k > 1] == []


# --- schema evolution (lakehouse.ddl.schema_changes) -----------------------------------------

# schema_changes compares registry types through pyspark's DDL parser, which asks the JVM
# (an active SparkContext). Unit tests start no JVM: this stand-in builds the same pyspark
# DataType objects for the SQL types used below, so `simpleString()` is pyspark's own.
_SQL_TYPES = {
    "STRING": T.StringType(),
    "DOUBLE": T.DoubleType(),
    "DATE": T.DateType(),
    "TIMESTAMP": T.TimestampType(),
    "BIGINT": T.LongType(),
    "INT": T.IntegerType(),
    "BOOLEAN": T.BooleanType(),
}


def _parse_sql_type(text: str) -> T.DataType:
    array = re.fullmatch(r"\s*array\s*<(.+)>\s*", text, flags=re.IGNORECASE)
    if array:
        return T.ArrayType(_parse_sql_type(array.group(1)))
    return _SQL_TYPES[text.strip().upper()]


@pytest.fixture
def no_jvm_ddl_parser(monkeypatch):
    monkeypatch.setattr(T, "_parse_datatype_string", _parse_sql_type)


def test_stand_in_parser_gives_sparks_simple_strings():
    assert _parse_sql_type("ARRAY<STRING>").simpleString() == "array<string>"
    assert _parse_sql_type("BIGINT").simpleString() == "bigint"
    assert _parse_sql_type("INT").simpleString() == "int"


REPORT = Table(
    "gold",
    "report",
    keys=("athlete_id", "week_start"),
    comment="A registry entry for the schema-evolution rules.",
    columns=(
        Column("athlete_id", "STRING", "Athlete key"),
        Column("week_start", "DATE", "Monday"),
        Column("sessions", "INT", "Sessions"),
        Column("distance_m", "DOUBLE", "Distance, m"),
        Column("table_version", "BIGINT", "Delta version"),
        Column("flags", "ARRAY<STRING>", "Warnings"),
        Column("computed_at", "TIMESTAMP", "When"),
        Column("load_imputed", "BOOLEAN", "Imputed"),
    ),
)
# The same table as Spark reports it (StructField.dataType.simpleString()).
AS_STORED = {
    "athlete_id": "string",
    "week_start": "date",
    "sessions": "int",
    "distance_m": "double",
    "table_version": "bigint",
    "flags": "array<string>",
    "computed_at": "timestamp",
    "load_imputed": "boolean",
}


def test_identical_table_needs_nothing(no_jvm_ddl_parser):
    assert schema_changes(dict(AS_STORED), REPORT) == ([], [])


def test_column_added_to_the_registry_is_missing_from_the_table(no_jvm_ddl_parser):
    older = {k: v for k, v in AS_STORED.items() if k not in ("flags", "load_imputed")}
    assert schema_changes(older, REPORT) == (["flags", "load_imputed"], [])


def test_type_change_and_extra_column_are_problems(no_jvm_ddl_parser):
    stored = {**AS_STORED, "distance_m": "string", "flags": "array<int>", "legacy_score": "double"}
    del stored["sessions"]
    missing, problems = schema_changes(stored, REPORT)
    assert missing == ["sessions"]
    assert problems == [
        "column distance_m is string in the table but DOUBLE in the registry",
        "column flags is array<int> in the table but ARRAY<STRING> in the registry",
        "column legacy_score is in the table but not in the registry",
    ]
