"""A real Delta table under the catalog: MERGE, three-level reads, history, foreign reader."""

from __future__ import annotations

from collections import namedtuple

import deltalake
import pytest

from athlete_platform.lakehouse.bootstrap import bootstrap_namespace, list_namespace
from athlete_platform.lakehouse.tables import SCHEMAS

pytestmark = pytest.mark.integration

ROWS = [("s1", "ath_0001", 3600.0), ("s2", "ath_0001", 1800.0), ("s3", "ath_0002", 2700.0)]

Probe = namedtuple("Probe", "schema name")  # a table the tests create by hand


def test_namespace_has_every_schema_and_bootstrap_is_idempotent(spark, names):
    bootstrap_namespace(spark, names)  # second time: no error, nothing changes
    shown = {row[0] for row in spark.sql(f"SHOW SCHEMAS IN {names.catalog}").collect()}
    assert set(SCHEMAS) <= shown
    assert set(list_namespace(spark, names)) == set(SCHEMAS)


def test_merge_twice_is_idempotent_and_table_is_standard_delta(spark, names):
    table = names(Probe("bronze", "merge_probe"))
    spark.sql(f"DROP TABLE IF EXISTS {table}")
    spark.sql(f"CREATE TABLE {table} (session_id STRING, athlete_id STRING, duration_s DOUBLE) USING DELTA")
    source = spark.createDataFrame(ROWS, "session_id string, athlete_id string, duration_s double")
    source.createOrReplaceTempView("merge_probe_source")
    for _ in range(2):
        spark.sql(
            f"MERGE INTO {table} t USING merge_probe_source s ON t.session_id = s.session_id "
            "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
        )

    rows = sorted(tuple(r) for r in spark.table(table).collect())
    assert rows == sorted(ROWS)

    history = spark.sql(f"DESCRIBE HISTORY {table}").orderBy("version").collect()
    assert [h.operation for h in history] == ["CREATE TABLE", "MERGE", "MERGE"]
    second_merge = history[2].operationMetrics
    assert second_merge["numTargetRowsInserted"] == "0"

    # An independent reader (delta-rs) sees the same rows at the table's storage location.
    location = spark.sql(f"DESCRIBE DETAIL {table}").collect()[0].location
    foreign = deltalake.DeltaTable(location)
    assert foreign.version() == 2
    frame = foreign.to_pandas().sort_values("session_id")
    assert list(frame.itertuples(index=False, name=None)) == sorted(ROWS)
    warehouse = spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:")
    assert location.removeprefix("file:").startswith(warehouse + "/bronze.db/")


def test_time_travel_by_version(spark, names):
    table = names(Probe("bronze", "merge_probe_tt"))
    spark.sql(f"CREATE OR REPLACE TABLE {table} (k INT) USING DELTA")
    spark.sql(f"INSERT INTO {table} VALUES (1)")
    spark.sql(f"INSERT INTO {table} VALUES (2)")
    assert spark.sql(f"SELECT count(*) FROM {table} VERSION AS OF 1").first()[0] == 1
    assert spark.table(table).count() == 2


def test_change_data_feed_reads_through_catalog_name(spark, names):
    table = names(Probe("silver", "cdf_probe"))
    spark.sql(
        f"CREATE OR REPLACE TABLE {table} (k INT, v STRING) USING DELTA "
        "TBLPROPERTIES (delta.enableChangeDataFeed = true)"
    )
    spark.sql(f"INSERT INTO {table} VALUES (1, 'a')")
    spark.sql(f"UPDATE {table} SET v = 'b' WHERE k = 1")
    changes = spark.read.option("readChangeFeed", "true").option("startingVersion", 1).table(table)
    kinds = sorted(r._change_type for r in changes.collect())
    assert kinds == ["insert", "update_postimage", "update_preimage"]


def test_a_create_killed_before_its_first_commit_does_not_block_the_table_for_good(spark, names):
    """kill -9 during a step's first CREATE TABLE leaves the table folder without a Delta commit;
    Delta then refused to create the table there on every later run (found by the kill sweep)."""
    from pathlib import Path

    from athlete_platform.lakehouse.ddl import ensure_table
    from athlete_platform.lakehouse.tables import Column, Table

    probe = Table("bronze", "interrupted_probe", ("k",), "probe", (Column("k", "INT", "key"),))
    spark.sql(f"DROP TABLE IF EXISTS {names(probe)}")
    warehouse = Path(spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    folder = warehouse / "bronze.db" / "interrupted_probe"
    (folder / "_delta_log").mkdir(parents=True)
    (folder / "part-00000-uncommitted.snappy.parquet").write_bytes(b"PAR1 half written")

    ensure_table(spark, names, probe)

    spark.sql(f"INSERT INTO {names(probe)} VALUES (1)")
    assert spark.table(names(probe)).count() == 1
    (aside,) = folder.parent.glob("interrupted_probe.interrupted-*")
    assert (aside / "part-00000-uncommitted.snappy.parquet").read_bytes() == b"PAR1 half written"
    spark.sql(f"DROP TABLE {names(probe)}")


def test_a_create_killed_between_its_commit_and_the_catalog_entry_does_not_block_the_table(spark, names):
    """The other half of the same kill (found by the silver kill sweep): version 0 (the empty
    CREATE) committed, the process killed before the catalog registered the table."""
    from pathlib import Path

    from athlete_platform.lakehouse.ddl import ensure_table
    from athlete_platform.lakehouse.tables import Column, Table

    probe = Table("bronze", "half_created_probe", ("k",), "probe", (Column("k", "INT", "key"),))
    spark.sql(f"DROP TABLE IF EXISTS {names(probe)}")
    warehouse = Path(spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    folder = warehouse / "bronze.db" / "half_created_probe"
    # What the killed CREATE left: the table's empty version 0 at its managed place, no catalog entry.
    spark.sql(f"CREATE TABLE delta.`{folder}` (k INT) USING DELTA")
    assert (folder / "_delta_log" / "00000000000000000000.json").exists()
    assert not spark.catalog.tableExists(names(probe))

    ensure_table(spark, names, probe)

    spark.sql(f"INSERT INTO {names(probe)} VALUES (1)")
    assert spark.table(names(probe)).count() == 1
    spark.sql(f"DROP TABLE {names(probe)}")


def test_a_new_table_is_created_with_its_check_constraints_in_one_commit(spark, names):
    """The constraints are part of the CREATE (version 0, enforced from the first write); a table
    from before a constraint gets it added; ensure_table again commits nothing."""
    from athlete_platform.lakehouse.ddl import ensure_table
    from athlete_platform.lakehouse.delta import current_version
    from athlete_platform.lakehouse.tables import Column, Table

    probe = Table(
        "bronze",
        "constraint_probe",
        ("k",),
        "probe",
        (Column("k", "INT", "key"), Column("v", "STRING", "value")),
        constraints={"k_positive": "k > 0", "v_known": "v IN ('a', 'b')"},
    )
    name = names(probe)
    spark.sql(f"DROP TABLE IF EXISTS {name}")
    ensure_table(spark, names, probe)
    assert current_version(spark, name) == 0
    spark.sql(f"INSERT INTO {name} VALUES (1, 'a')")
    for bad in ("(0, 'a')", "(2, 'c')"):
        with pytest.raises(Exception, match="DELTA_VIOLATE_CONSTRAINT"):
            spark.sql(f"INSERT INTO {name} VALUES {bad}")
    ensure_table(spark, names, probe)
    assert current_version(spark, name) == 1  # the one INSERT

    spark.sql(f"ALTER TABLE {name} DROP CONSTRAINT v_known")
    ensure_table(spark, names, probe)  # an older table: the missing constraint is added
    with pytest.raises(Exception, match="DELTA_VIOLATE_CONSTRAINT"):
        spark.sql(f"INSERT INTO {name} VALUES (3, 'c')")
    spark.sql(f"DROP TABLE {name}")


def test_merge_upsert_inserts_into_an_empty_table_then_writes_only_what_changed(spark, names):
    """The first merge into an empty table is one insert-only commit; a re-run commits nothing;
    then only a changed row and a vanished key are written (delete_missing)."""
    from athlete_platform.lakehouse.delta import current_version
    from athlete_platform.lakehouse.writes import MergeChanges, is_empty, merge_upsert

    name = names.schema("gold") + ".merge_probe"
    spark.sql(f"DROP TABLE IF EXISTS {name}")
    spark.sql(f"CREATE TABLE {name} (k INT, v STRING, _run_id STRING) USING DELTA")
    rows = spark.createDataFrame([(1, "a", "r1"), (2, "b", "r1"), (3, "c", "r1")], "k INT, v STRING, _run_id STRING")
    assert is_empty(spark, name)

    assert merge_upsert(spark, name, rows, ["k"], delete_missing=True) == MergeChanges(3, 0)
    assert current_version(spark, name) == 1 and not is_empty(spark, name)
    assert merge_upsert(spark, name, rows.withColumn("_run_id", rows.v), ["k"], delete_missing=True) == MergeChanges(
        0, 0
    )
    assert current_version(spark, name) == 1  # lineage alone is no change: nothing committed

    changed = spark.createDataFrame([(1, "a", "r2"), (2, "B", "r2")], "k INT, v STRING, _run_id STRING")
    assert merge_upsert(spark, name, changed, ["k"], delete_missing=True) == MergeChanges(1, 1)
    assert sorted(tuple(r) for r in spark.table(name).collect()) == [(1, "a", "r1"), (2, "B", "r2")]
    spark.sql(f"DROP TABLE {name}")
