"""The online store kept in sync with the offline tables (issue 11, item 2 and its acceptance).

On the module's own lakehouse (conf/test.yaml's small sample): materialize after a pipeline run,
then `online-store check` is clean; a changed silver session, run through the features, changes
exactly that athlete's online row (Change Data Feed), and so do a profile change and a race
change, each on its own; an athlete with no feature row left is deleted; a tampered row is
reported (exit 1) and a full refresh repairs it; a redis-server that is down stops the run with
what to do, and the next run after it is back converges.
"""

from __future__ import annotations

import shutil
from datetime import date

import pytest
from pyspark.sql import functions as F

from athlete_platform import cli
from athlete_platform.lakehouse import tables
from athlete_platform.lakehouse.delta import current_version
from athlete_platform.online.backends import open_store
from athlete_platform.online.check import check_online_store
from athlete_platform.online.redis_server import RedisServer
from athlete_platform.online.store import OnlineStoreUnavailable
from tests.conftest import free_port, generate_sample
from tests.own_lake import own_names, own_settings  # noqa: F401  (the module's own lakehouse)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def batch(spark, module_lake):
    """Sample data through bronze -> silver -> features once, and an empty online store."""
    settings, names = module_lake.settings, module_lake.names
    for table in tables.ALL_TABLES:
        spark.sql(f"DROP TABLE IF EXISTS {names(table)}")
    shutil.rmtree(settings.landing_path, ignore_errors=True)
    settings.online_store_path.unlink(missing_ok=True)
    generate_sample(settings)
    run_date = settings.sample_data.last_date
    module_lake.run("ingest", date(2030, 1, 1), "online-1")
    module_lake.run("silver", run_date, "online-1")
    module_lake.run("features", run_date, "online-1")
    return run_date


def online_rows(settings) -> dict[str, dict]:
    with open_store(settings) as store:
        return store.get(store.keys())


def check_cli(capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(["online-store", "check"])
    return code, capsys.readouterr().out


def changed_keys(before: dict[str, dict], after: dict[str, dict]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def test_first_run_loads_every_athletes_latest_row_and_check_is_clean(spark, module_lake, batch, capsys):
    settings, names = module_lake.settings, module_lake.names
    features = names(tables.ATHLETE_ROLLING_FEATURES)
    result = module_lake.run("materialize", batch)

    assert result.mode == "full (first run)"
    latest = {
        r.athlete_id: r
        for r in spark.table(features).groupBy("athlete_id").agg(F.max("feature_date").alias("feature_date")).collect()
    }
    rows = online_rows(settings)
    assert sorted(rows) == sorted(latest) and result.upserted == result.store_rows == len(latest) >= 5
    for key, row in rows.items():
        assert row["feature_date"] == latest[key].feature_date.isoformat()
        assert row["source_version"] == current_version(spark, features)
        assert row["sex"] in ("F", "M") and row["hr_max"] > row["hr_rest"] > 0
    assert any(row["prev_finish_time_s"] for row in rows.values())  # the sample has races
    code, out = check_cli(capsys)
    assert code == 0 and out.startswith("no differences:"), out

    again = module_lake.run("materialize", batch)  # nothing moved: nothing written
    assert again.mode == "up to date" and online_rows(settings) == rows


def test_a_changed_session_changes_only_its_athletes_row(spark, module_lake, batch, capsys):
    settings, names = module_lake.settings, module_lake.names
    sessions = names(tables.SESSIONS)
    session = spark.table(sessions).orderBy(F.col("start_time").desc(), "session_id").first()
    before = online_rows(settings)
    spark.sql(
        f"UPDATE {sessions} SET duration_s = duration_s * 2, session_load = session_load * 2 "
        f"WHERE session_id = '{session.session_id}'"
    )
    assert module_lake.run("features", batch, "online-2").athletes == 1

    result = module_lake.run("materialize", batch)
    after = online_rows(settings)
    assert (result.mode, result.athletes_checked, result.upserted, result.deleted) == ("incremental", 1, 1, 0)
    assert changed_keys(before, after) == [session.athlete_id]
    assert after[session.athlete_id]["atl"] > before[session.athlete_id]["atl"]
    assert after[session.athlete_id]["source_version"] > before[session.athlete_id]["source_version"]
    code, out = check_cli(capsys)
    assert code == 0, out


def test_profile_and_race_changes_reach_only_their_athletes(spark, module_lake, batch):
    settings, names = module_lake.settings, module_lake.names
    before = online_rows(settings)
    with_race = sorted(k for k, row in before.items() if row["prev_race_date"])[0]
    other = sorted(k for k in before if k != with_race)[0]
    spark.sql(f"UPDATE {names(tables.ATHLETES)} SET weight_kg = 99.5 WHERE athlete_id = '{other}'")
    race_date = before[with_race]["prev_race_date"]
    spark.sql(
        f"UPDATE {names(tables.RACES)} SET finish_time_s = finish_time_s + 60 "
        f"WHERE athlete_id = '{with_race}' AND race_date = DATE'{race_date}'"
    )

    result = module_lake.run("materialize", batch)
    after = online_rows(settings)
    assert result.upserted == 2 and changed_keys(before, after) == sorted([with_race, other])
    assert after[other]["weight_kg"] == 99.5
    assert after[with_race]["prev_finish_time_s"] >= before[with_race]["prev_finish_time_s"] + 60
    lineage = ("materialized_at", "source_version")
    unchanged = {k: v for k, v in before[other].items() if k not in (*lineage, "weight_kg")}
    assert {k: v for k, v in after[other].items() if k in unchanged} == unchanged


def test_an_athlete_without_feature_rows_leaves_the_store(spark, module_lake, batch):
    settings, names = module_lake.settings, module_lake.names
    gone = sorted(online_rows(settings))[-1]
    spark.sql(f"DELETE FROM {names(tables.ATHLETE_ROLLING_FEATURES)} WHERE athlete_id = '{gone}'")
    result = module_lake.run("materialize", batch)
    assert (result.upserted, result.deleted) == (0, 1)
    assert gone not in online_rows(settings)
    assert not check_online_store(module_lake.context(batch)).differences


def test_check_reports_a_tampered_row_and_a_full_refresh_repairs_it(module_lake, batch, capsys):
    settings = module_lake.settings
    victim = sorted(online_rows(settings))[0]
    with open_store(settings) as store:
        store.upsert([{"athlete_id": victim, "ctl": -1.0}, {"athlete_id": "ath_ghost", "ctl": 1.0}])
    code, out = check_cli(capsys)
    assert code == 1
    assert "2 differences in 2 athletes" in out.splitlines()[0], out
    assert victim in out and "ctl" in out and "-1.0" in out and "ath_ghost" in out

    assert module_lake.run("materialize", batch).mode == "up to date"  # offline did not move
    repaired = module_lake.run("materialize", batch, full_refresh=True)
    assert (repaired.upserted, repaired.deleted) == (1, 1)
    assert check_cli(capsys)[0] == 0


def test_redis_down_stops_the_run_and_the_next_run_converges(spark, module_lake, batch, tmp_path):
    """The same step on the redis backend: a server that is down leaves its last state (AOF) and the
    run stops saying what to run; after `up`, the next run catches up through the Change Data Feed
    (of silver.athletes here: a profile change needs no feature run)."""
    server = RedisServer("127.0.0.1", free_port(), tmp_path / "redis")
    online = module_lake.settings.online_store.model_copy(update={"backend": "redis", "port": server.port})
    settings = module_lake.settings.model_copy(update={"online_store": online})
    names = module_lake.names
    server.start()
    try:
        assert module_lake.run("materialize", batch, settings=settings).mode == "full (first run)"
        first = online_rows(settings)
        server.stop()

        athlete = sorted(first)[0]
        spark.sql(f"UPDATE {names(tables.ATHLETES)} SET hr_rest = hr_rest + 1 WHERE athlete_id = '{athlete}'")
        with pytest.raises(OnlineStoreUnavailable, match="online-store up"):
            module_lake.run("materialize", batch, settings=settings)

        server.start()
        assert online_rows(settings) == first  # the append-only file kept the last state
        result = module_lake.run("materialize", batch, settings=settings)
        assert (result.mode, result.upserted) == ("incremental", 1)
        assert changed_keys(first, online_rows(settings)) == [athlete]
        assert not check_online_store(module_lake.context(batch, settings=settings)).differences
    finally:
        server.stop()
    module_lake.run("materialize", batch)  # the module's SQLite store follows too
