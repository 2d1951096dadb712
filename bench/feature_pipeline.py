"""Benchmark: the project's Spark feature pipeline vs the same features in DuckDB, end to end.

A script, not a test. It

1. generates deterministic silver-like sessions and races (default 1000 athletes x 1095 days,
   about 0.9 sessions per athlete-day, a race about every 6 weeks) and writes them once as
   parquet under ``--work-dir``;
2. runs the project's feature computation (``plan_athletes`` -> ``tagged_inputs`` ->
   ``compute_features``: a ``mapInArrow`` of ``features/athlete_batches.py`` over the numpy code of
   ``features/rolling.py``) on Spark ``--spark-master`` in a subprocess and MERGEs the rows into
   an empty Delta feature table with the project's ``merge_upsert`` (what a first or full run of
   the step writes; one pass, as in the step, so features and MERGE are not timed apart);
3. computes the same features (DESIGN.md section 4) with one DuckDB SQL statement in another
   subprocess and MERGEs them (by athlete_id, feature_date) into an empty Delta table of the
   same registry schema with delta-rs;
4. checks that both tables are equal (every row, every feature column), and prints sessions,
   rows, seconds (features, MERGE, both), sessions/s, the ratio against issue 16's goal (Spark
   within 3x DuckDB's time) and the peak RSS of each subprocess tree, sampled with psutil.

Usage (from the project folder)::

    .venv/bin/python bench/feature_pipeline.py                      # ~1M sessions
    .venv/bin/python bench/feature_pipeline.py --athletes 50 --days 365

Exit code 0 unless a subprocess fails or the two results differ. Nothing asserts on timing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from measure import GIB, jvm_max_heap_gib, machine_line, run_measured, sci, spark_env, table_lines, write_result

BUDGET_GIB = 8.0
START_DATE = date(2022, 1, 1)
SESSIONS_PER_DAY = 0.9
RACE_EVERY_DAYS = 42
ROWS_PER_FILE = 250_000
#: Equality tolerance: |spark - duckdb| <= REL_TOL * max(|spark|, |duckdb|), or <= ABS_TOL.
REL_TOL = 1e-6
ABS_TOL = 1e-9
#: DuckDB EWMA blocks are sized so that (1 - gain) ** block_days == 10 ** -EWMA_BLOCK_DECADES.
EWMA_BLOCK_DECADES = 150


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def generate(athletes: int, days: int, seed: int, data_dir: Path) -> dict[str, Any]:
    """Write sessions/ and races/ parquet under data_dir (reused when the parameters match)."""
    meta_path = data_dir / "meta.json"
    params = {"athletes": athletes, "days": days, "seed": seed, "start_date": START_DATE.isoformat()}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("params") == params:
            return meta

    import pyarrow as pa
    import pyarrow.parquet as pq

    from athlete_platform.domain import physiology

    rng = np.random.default_rng(seed)
    sex = np.where(rng.random(athletes) < 0.5, "M", "F")
    hr_rest = rng.uniform(45, 65, athletes).round()
    hr_max = rng.uniform(175, 200, athletes).round()
    base_vdot = rng.uniform(35, 65, athletes)
    offset = rng.integers(0, max(1, days // 10), athletes)  # athletes start on different days

    # Training sessions: Poisson(0.9) per athlete-day from the athlete's first active day.
    counts = rng.poisson(SESSIONS_PER_DAY, size=(athletes, days))
    counts[np.arange(days)[None, :] < offset[:, None]] = 0
    counts[np.arange(athletes), np.minimum(offset, days - 1)] = np.maximum(
        counts[np.arange(athletes), np.minimum(offset, days - 1)], 1
    )
    cell = np.repeat(np.arange(athletes * days), counts.ravel())
    ath, day = cell // days, cell % days
    n = len(cell)
    sport = np.array(["run", "ride", "swim", "other"])[rng.choice(4, n, p=[0.5, 0.25, 0.15, 0.1])]
    duration = np.clip(rng.lognormal(np.log(3000), 0.5, n), 600, 14400).round()
    speed = np.select([sport == "run", sport == "ride", sport == "swim"], [2.9, 7.5, 0.8], 0.0)
    distance = (duration * speed * rng.uniform(0.8, 1.2, n)).round(1)
    distance[rng.random(n) < 0.01] = np.nan  # a few sessions without distance
    intensity = rng.uniform(0.45, 0.85, n)
    is_race = np.zeros(n, dtype=bool)

    # Races: about every 6 weeks per athlete, also a (run) session of that day.
    race_ath, race_day = [], []
    for a in range(athletes):
        d = int(offset[a]) + int(rng.integers(14, RACE_EVERY_DAYS))
        while d < days:
            race_ath.append(a)
            race_day.append(d)
            d += RACE_EVERY_DAYS + int(rng.integers(-7, 8))
    race_ath, race_day = np.array(race_ath, dtype=np.int64), np.array(race_day, dtype=np.int64)
    r = len(race_ath)
    race_distance = np.array([5000.0, 10000.0, 21097.5, 42195.0])[rng.choice(4, r, p=[0.4, 0.3, 0.2, 0.1])]
    target = base_vdot[race_ath] + race_day / 365.0 + rng.normal(0, 1.5, r)
    finish = np.round(np.asarray(physiology.daniels_time_s(target, race_distance)), 1)
    race_vdot = np.asarray(physiology.vdot(race_distance, finish))

    ath = np.concatenate([ath, race_ath])
    day = np.concatenate([day, race_day])
    sport = np.concatenate([sport, np.full(r, "run")])
    duration = np.concatenate([duration, finish])
    distance = np.concatenate([distance, race_distance])
    intensity = np.concatenate([intensity, rng.uniform(0.85, 0.95, r)])
    is_race = np.concatenate([is_race, np.ones(r, dtype=bool)])
    order = np.lexsort((is_race, day, ath))
    ath, day, sport, duration, distance, intensity, is_race = (
        x[order] for x in (ath, day, sport, duration, distance, intensity, is_race)
    )
    n = len(ath)
    avg_hr = (hr_rest[ath] + intensity * (hr_max[ath] - hr_rest[ath])).round(1)
    avg_hr[(rng.random(n) < 0.1) & ~is_race] = np.nan  # ~10% without heart rate

    # session_load as silver computes it: TRIMP, imputed from the 28-day median rate without HR.
    trimp = np.asarray(physiology.trimp(duration, avg_hr, hr_rest[ath], hr_max[ath], sex[ath]))
    spaced_day = ath * (days + 64) + day  # one call for all athletes: windows never cross athletes
    load, imputed = physiology.impute_missing_loads(spaced_day.astype("datetime64[D]"), duration, trimp)

    def athlete_ids(index: np.ndarray) -> pa.Array:
        return pa.array(np.char.add("A", np.char.zfill(index.astype(str), 5)))

    def nullable(values: np.ndarray) -> pa.Array:
        return pa.array(values, mask=np.isnan(values))

    start = np.datetime64(START_DATE, "D")
    sessions = pa.table(
        {
            "session_id": pa.array(np.char.add("S", np.char.zfill(np.arange(n).astype(str), 9))),
            "athlete_id": athlete_ids(ath),
            "sport": pa.array(sport),
            "session_date": pa.array(start + day),
            "duration_s": pa.array(duration),
            "distance_m": nullable(distance),
            "avg_hr": nullable(avg_hr),
            "is_race": pa.array(is_race),
            "session_load": pa.array(load),
            "load_imputed": pa.array(imputed),
        }
    )
    races = pa.table(
        {
            "session_id": pa.array(np.char.add("R", np.char.zfill(np.arange(r).astype(str), 9))),
            "athlete_id": athlete_ids(race_ath),
            "race_date": pa.array(start + race_day),
            "distance_m": pa.array(race_distance),
            "finish_time_s": pa.array(finish),
            "vdot": pa.array(race_vdot),
        }
    )
    for name, table in (("sessions", sessions), ("races", races)):
        folder = data_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.parquet"):
            old.unlink()
        for part, first in enumerate(range(0, max(table.num_rows, 1), ROWS_PER_FILE)):
            pq.write_table(table.slice(first, ROWS_PER_FILE), folder / f"part-{part:05d}.parquet")
    meta = {
        "params": params,
        "sessions": n,
        "races": r,
        "run_date": (START_DATE + timedelta(days=days - 1)).isoformat(),
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta


# --------------------------------------------------------------------------
# Spark (subprocess)
# --------------------------------------------------------------------------


def spark_child(args: argparse.Namespace) -> dict[str, Any]:
    """The project's feature step minus its version bookkeeping: plan, compute, then the same
    MERGE into a Delta feature table (created empty first, as a first run finds it)."""
    started = time.perf_counter()
    from athlete_platform.config import load_settings
    from athlete_platform.features import pipeline
    from athlete_platform.lakehouse import tables
    from athlete_platform.lakehouse.bootstrap import bootstrap_namespace
    from athlete_platform.lakehouse.ddl import ensure_table
    from athlete_platform.lakehouse.delta_rs import table_location
    from athlete_platform.lakehouse.spark import build_spark
    from athlete_platform.lakehouse.writes import merge_upsert, utc_timestamp

    settings = load_settings()  # catalog.backend=session, data_dir and driver memory from env
    spark = build_spark(settings, master=args.spark_master)
    from pyspark.sql import functions as F

    names = tables.TableNames.from_settings(settings.catalog)
    bootstrap_namespace(spark, names)
    features_table = names(tables.ATHLETE_ROLLING_FEATURES)
    spark.sql(f"DROP TABLE IF EXISTS {features_table}")
    shutil.rmtree(table_location(settings, tables.ATHLETE_ROLLING_FEATURES), ignore_errors=True)  # an earlier run's
    ensure_table(spark, names, tables.ATHLETE_ROLLING_FEATURES)
    ready = time.perf_counter()
    run_date = date.fromisoformat(args.run_date)
    data = Path(args.work_dir) / "data"
    sessions = spark.read.parquet(str(data / "sessions")).where(F.col("session_date") <= F.lit(run_date))
    races = spark.read.parquet(str(data / "races")).where(F.col("race_date") <= F.lit(run_date))
    plan = pipeline.plan_athletes(sessions, None, None, run_date).cache()
    athletes = plan.count()
    computed = pipeline.compute_features(pipeline.tagged_inputs(plan, sessions, races, None))
    stamp = utc_timestamp(datetime.now(UTC))
    stamped = computed.select("*", stamp.alias("computed_at"), F.lit("bench").alias("_run_id"))
    # As the step does: no cache, the MERGE computes the features as it writes them (one pass),
    # so the two cannot be timed apart.
    merge_upsert(spark, features_table, stamped, tables.ATHLETE_ROLLING_FEATURES.keys)
    done = time.perf_counter()
    rows = spark.table(features_table).count()
    location = spark.sql(f"DESCRIBE DETAIL {features_table}").first()["location"]
    plan.unpersist()
    result = {
        "athletes": athletes,
        "rows": rows,
        "seconds": done - ready,
        "compute_seconds": None,
        "merge_seconds": None,
        "startup_seconds": ready - started,
        "table": location.removeprefix("file:"),
        "config": {
            "spark.master": spark.sparkContext.master,
            "spark.driver.memory": spark.conf.get("spark.driver.memory"),
            "spark.sql.shuffle.partitions": spark.conf.get("spark.sql.shuffle.partitions"),
            "jvm_max_heap_gib": jvm_max_heap_gib(spark),
            "java_options": settings.spark.java_options or "(none)",
        },
    }
    spark.stop()
    return result


# --------------------------------------------------------------------------
# DuckDB (subprocess)
# --------------------------------------------------------------------------


def _double(value: float) -> str:
    """A SQL literal that parses to exactly this double."""
    return f"'{value!r}'::DOUBLE"


def ewma_specs(decades: int = EWMA_BLOCK_DECADES) -> list[tuple[str, float, int]]:
    """(column, gain, block_days) of the four exponentially weighted states."""
    from athlete_platform.features import metrics

    specs = []
    for name, gain in (
        ("atl", metrics.K_ATL),
        ("ctl", metrics.K_CTL),
        ("ewma_acute_load", metrics.LAMBDA_ACUTE),
        ("ewma_chronic_load", metrics.LAMBDA_CHRONIC),
    ):
        block = int(decades * math.log(10) / -math.log1p(-gain))
        specs.append((name, gain, block))
    return specs


def duckdb_features_sql(sessions: str, races: str, run_date: date, decades: int = EWMA_BLOCK_DECADES) -> str:
    """One SELECT computing the feature rows (DESIGN.md section 4) of every athlete.

    Per athlete a dense calendar h = -27 .. run_date - first session day (h = history_days);
    the 27 padding days have load 0, so every 7/28-row window holds exactly 7/28 days and the
    states start at 0 the day before the first session, as in rolling.py. Only h >= 0 is output.

    EWMAs ``X(h) = q*X(h-1) + g*L(h)`` (q = 1 - g) without recursion: with blocks of B days
    (i = h + 27, blk = i // B, off = i % B) and ``P(h) = sum_{j in blk, j <= h} g*L(j)*q^-off(j)``,
    ``X(h) = q^off * (P(h) + q^B * P_prev_block_total) + q^(B+off+1) * X(start of blk - B - 1)``.
    The last term is dropped: q^B = 1e-150, so it is below 1e-150 x the largest daily load.
    q^-off <= 1e150 keeps every partial sum far inside the double range whatever the span.
    """
    from athlete_platform.features import metrics

    pad = metrics.ACWR_CHRONIC_DAYS - 1
    ewmas = ewma_specs(decades)
    term_cols = ",\n".join(
        f"  i // {b} AS blk_{c}, i % {b} AS off_{c},"
        f" {_double(g)} * load * pow({_double(1 - g)}, -(i % {b})) AS term_{c}"
        for c, g, b in ewmas
    )
    state_cols = ",\n".join(
        f"  pow({_double(1 - g)}, off_{c}) * ("
        f"sum(term_{c}) OVER (PARTITION BY athlete_id, blk_{c} ORDER BY h ROWS UNBOUNDED PRECEDING)"
        f" + pow({_double(1 - g)}, {b}) * coalesce(sum(term_{c}) OVER (PARTITION BY athlete_id ORDER BY h"
        f" ROWS BETWEEN (off_{c} + {b}) PRECEDING AND (off_{c} + 1) PRECEDING), 0)) AS {c}"
        for c, g, b in ewmas
    )
    run = f"DATE '{run_date.isoformat()}'"
    return f"""
WITH sessions AS (
  SELECT * FROM read_parquet('{sessions}') WHERE session_date <= {run}
), races AS (
  SELECT * FROM read_parquet('{races}') WHERE race_date <= {run}
), firsts AS (
  SELECT athlete_id, min(session_date) AS first_day FROM sessions GROUP BY athlete_id
), calendar AS (
  SELECT athlete_id, first_day, CAST(unnest(range(-{pad}, ({run} - first_day) + 1)) AS INTEGER) AS h FROM firsts
), daily AS (
  SELECT athlete_id, CAST(session_date - first_day AS INTEGER) AS h,
    sum(session_load) AS load,
    count(*) AS n,
    sum(coalesce(distance_m, 0)) AS distance_m,
    sum(coalesce(duration_s, 0)) AS duration_s,
    max(coalesce(distance_m, 0)) AS longest_m,
    sum(CASE WHEN sport = 'run' AND distance_m > 0 THEN coalesce(duration_s, 0) ELSE 0 END) AS run_s,
    sum(CASE WHEN sport = 'run' AND distance_m > 0 THEN distance_m ELSE 0 END) AS run_m,
    sum(CASE WHEN isfinite(avg_hr) THEN coalesce(duration_s, 0) ELSE 0 END) AS hr_s,
    sum(CASE WHEN isfinite(avg_hr) THEN avg_hr * coalesce(duration_s, 0) ELSE 0 END) AS hr_bpm_s,
    count(*) FILTER (WHERE line) AS line_n,
    sum(avg_hr) FILTER (WHERE line) AS line_hr,
    sum(ln(distance_m / duration_s)) FILTER (WHERE line) AS line_v,
    sum(avg_hr * avg_hr) FILTER (WHERE line) AS line_hr2,
    sum(avg_hr * ln(distance_m / duration_s)) FILTER (WHERE line) AS line_hr_v
  FROM (
    SELECT *, sport = 'run' AND distance_m > 0 AND duration_s > 0 AND isfinite(avg_hr)
      AND NOT coalesce(is_race, false) AS line
    FROM sessions
  ) JOIN firsts USING (athlete_id)
  GROUP BY ALL
), race_days AS (
  SELECT athlete_id, CAST(race_date - first_day AS INTEGER) AS h, max(vdot) AS vdot
  FROM races JOIN firsts USING (athlete_id)
  WHERE isfinite(vdot)
  GROUP BY ALL
), grid AS (
  SELECT c.athlete_id, c.first_day, c.h, c.h + {pad} AS i,
    coalesce(d.load, 0) AS load, coalesce(d.n, 0) AS n,
    coalesce(d.distance_m, 0) AS distance_m, coalesce(d.duration_s, 0) AS duration_s, d.longest_m,
    coalesce(d.run_s, 0) AS run_s, coalesce(d.run_m, 0) AS run_m,
    coalesce(d.hr_s, 0) AS hr_s, coalesce(d.hr_bpm_s, 0) AS hr_bpm_s, r.vdot,
    coalesce(d.line_n, 0) AS line_n, coalesce(d.line_hr, 0) AS line_hr, coalesce(d.line_v, 0) AS line_v,
    coalesce(d.line_hr2, 0) AS line_hr2, coalesce(d.line_hr_v, 0) AS line_hr_v
  FROM calendar c
  LEFT JOIN daily d USING (athlete_id, h)
  LEFT JOIN race_days r USING (athlete_id, h)
), terms AS (
  SELECT *,
{term_cols}
  FROM grid
), windows AS (
  SELECT athlete_id, first_day, h, load,
{state_cols},
    sum(load) OVER w7 AS load_7d, sum(load) OVER w28 AS load_28d,
    stddev_pop(load) OVER w7 AS load_std_7d,
    max(load) OVER w7 = min(load) OVER w7 AS constant_7d,
    sum(distance_m) OVER w7 AS distance_7d_m, sum(distance_m) OVER w28 AS distance_28d_m,
    sum(duration_s) OVER w7 AS duration_7d_s, sum(duration_s) OVER w28 AS duration_28d_s,
    sum(n) OVER w7 AS sessions_7d, sum(n) OVER w28 AS sessions_28d,
    max(longest_m) OVER w28 AS longest_28d_m,
    sum(run_s) OVER w28 AS run_28d_s, sum(run_m) OVER w28 / 1000.0 AS run_28d_km,
    sum(hr_s) OVER w28 AS hr_28d_s, sum(hr_bpm_s) OVER w28 AS hr_28d_bpm_s,
    max(vdot) OVER w90 AS vdot_best_90d,
    sum(line_n) OVER w42 AS line_42d_n, sum(line_hr) OVER w42 AS line_42d_hr,
    sum(line_v) OVER w42 AS line_42d_v, sum(line_hr2) OVER w42 AS line_42d_hr2,
    sum(line_hr_v) OVER w42 AS line_42d_hr_v,
    h - max(CASE WHEN n > 0 THEN h END) OVER (PARTITION BY athlete_id ORDER BY h ROWS UNBOUNDED PRECEDING)
      AS days_since_last_session
  FROM terms
  WINDOW w7 AS (PARTITION BY athlete_id ORDER BY h ROWS BETWEEN 6 PRECEDING AND CURRENT ROW),
         w28 AS (PARTITION BY athlete_id ORDER BY h ROWS BETWEEN 27 PRECEDING AND CURRENT ROW),
         w42 AS (PARTITION BY athlete_id ORDER BY h ROWS BETWEEN 41 PRECEDING AND CURRENT ROW),
         w90 AS (PARTITION BY athlete_id ORDER BY h ROWS BETWEEN 89 PRECEDING AND CURRENT ROW)
), features AS (
  SELECT *,
    lag(ctl) OVER (PARTITION BY athlete_id ORDER BY h) - lag(atl) OVER (PARTITION BY athlete_id ORDER BY h) AS tsb
  FROM windows
)
SELECT
  athlete_id,
  first_day + h AS feature_date,
  load AS daily_load,
  atl, ctl, tsb,
  CASE WHEN h >= 27 AND load_28d / 28 > 0 THEN (load_7d / 7) / (load_28d / 28) END AS acwr_rolling,
  CASE WHEN h >= 27 AND ewma_chronic_load > 0 THEN ewma_acute_load / ewma_chronic_load END AS acwr_ewma,
  ewma_acute_load, ewma_chronic_load,
  CASE WHEN NOT constant_7d THEN (load_7d / 7) / load_std_7d END AS monotony_7d,
  CASE WHEN NOT constant_7d THEN load_7d * ((load_7d / 7) / load_std_7d) END AS strain_7d,
  distance_7d_m, distance_28d_m, duration_7d_s, duration_28d_s,
  CAST(sessions_7d AS INTEGER) AS sessions_7d, CAST(sessions_28d AS INTEGER) AS sessions_28d,
  CASE WHEN sessions_28d > 0 THEN longest_28d_m END AS longest_session_28d_m,
  CASE WHEN run_28d_km > 0 THEN run_28d_s / run_28d_km END AS avg_pace_28d_s_per_km,
  CASE WHEN hr_28d_s > 0 THEN hr_28d_bpm_s / hr_28d_s END AS avg_hr_28d,
  CAST(days_since_last_session AS INTEGER) AS days_since_last_session,
  vdot_best_90d,
  h AS history_days,
  CAST(line_42d_n AS INTEGER) AS runs_with_hr_42d,
  CASE WHEN line_42d_n > 0 THEN line_42d_hr / line_42d_n END AS run_hr_mean_42d,
  CASE WHEN line_42d_n > 0 THEN line_42d_v / line_42d_n END AS run_log_speed_mean_42d,
  CASE WHEN line_42d_n >= 5
    AND line_42d_hr2 - line_42d_hr * (line_42d_hr / line_42d_n) >= line_42d_n * 4.0
    THEN (line_42d_hr_v - line_42d_hr * (line_42d_v / line_42d_n))
      / (line_42d_hr2 - line_42d_hr * (line_42d_hr / line_42d_n)) END AS run_log_speed_per_bpm_42d
FROM features
WHERE h >= 0
"""


def duckdb_child(args: argparse.Namespace) -> dict[str, Any]:
    """The same features in one DuckDB statement, then the same MERGE (by athlete_id,
    feature_date) into a Delta table of the registry's schema, by delta-rs."""
    started = time.perf_counter()
    import duckdb
    import pyarrow as pa
    from deltalake import DeltaTable

    from athlete_platform.lakehouse import tables
    from athlete_platform.lakehouse.delta_rs import arrow_schema, create_if_missing

    work = Path(args.work_dir)
    out = work / "out" / "duckdb"
    shutil.rmtree(out, ignore_errors=True)
    spec = tables.ATHLETE_ROLLING_FEATURES
    create_if_missing(out, spec)
    schema = arrow_schema(spec)
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    con.execute(f"SET temp_directory = '{work / 'duckdb-tmp'}'")
    ready = time.perf_counter()
    sql = duckdb_features_sql(
        str(work / "data" / "sessions" / "*.parquet"),
        str(work / "data" / "races" / "*.parquet"),
        date.fromisoformat(args.run_date),
    )
    stamped = f"SELECT *, now() AS computed_at, 'bench' AS _run_id FROM ({sql})"
    computed = con.execute(stamped).to_arrow_table()
    computed = pa.table([computed[f.name].cast(f.type) for f in schema], schema=schema)
    computed_s = time.perf_counter() - ready
    on = " AND ".join(f"t.{key} = s.{key}" for key in spec.keys)
    (
        DeltaTable(str(out))
        .merge(computed, on, source_alias="s", target_alias="t")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    done = time.perf_counter()
    rows = DeltaTable(str(out)).to_pyarrow_dataset().count_rows()
    return {
        "rows": rows,
        "seconds": done - ready,
        "compute_seconds": computed_s,
        "merge_seconds": done - ready - computed_s,
        "startup_seconds": ready - started,
        "table": str(out),
        "config": {
            "duckdb": duckdb.__version__,
            "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
            "memory_limit": con.execute("SELECT current_setting('memory_limit')").fetchone()[0],
            "ewma_block_days": {c: b for c, _, b in ewma_specs()},
        },
    }


# --------------------------------------------------------------------------
# Parent: subprocesses with peak-RSS sampling, comparison, report
# --------------------------------------------------------------------------


def compare(spark_out: Path, duckdb_out: Path) -> tuple[bool, list[str]]:
    """Every row and feature column of the two Delta tables (their current versions, read by
    delta-rs); NaN and NULL both mean null."""
    import duckdb
    from deltalake import DeltaTable

    from athlete_platform.features import rolling

    columns = [c for c in rolling.FEATURE_COLUMNS if c != "feature_date"]

    def value(side: str, column: str) -> str:
        return f"CASE WHEN isnan({side}.{column}::DOUBLE) THEN NULL ELSE {side}.{column}::DOUBLE END"

    parts = []
    for c in columns:
        a, b = value("s", c), value("d", c)
        diff, scale = f"abs(({a}) - ({b}))", f"greatest(abs({a}), abs({b}))"
        parts += [
            f"max({diff}) AS {c}__abs",
            f"max({diff} / {scale}) FILTER (WHERE {scale} > 0) AS {c}__rel",
            f"count(*) FILTER (WHERE (({a}) IS NULL) <> (({b}) IS NULL)) AS {c}__nulls",
            f"count(*) FILTER (WHERE {diff} > greatest({ABS_TOL!r}, {REL_TOL!r} * {scale})) AS {c}__bad",
            f"count(*) FILTER (WHERE ({a}) IS NOT NULL) AS {c}__values",
        ]
    sql = f"""
    SELECT count(*) FILTER (WHERE d.athlete_id IS NULL) AS only_spark,
           count(*) FILTER (WHERE s.athlete_id IS NULL) AS only_duckdb,
           count(*) FILTER (WHERE s.athlete_id IS NOT NULL AND d.athlete_id IS NOT NULL) AS matched,
           count(DISTINCT coalesce(s.athlete_id, d.athlete_id)) AS athletes,
           {", ".join(parts)}
    FROM spark_rows s
    FULL OUTER JOIN duckdb_rows d
      ON s.athlete_id = d.athlete_id AND s.feature_date = d.feature_date
    """
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.register("spark_rows", DeltaTable(str(spark_out)).to_pyarrow_dataset())
    con.register("duckdb_rows", DeltaTable(str(duckdb_out)).to_pyarrow_dataset())
    cursor = con.execute(sql)
    row = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
    ok = row["only_spark"] == 0 and row["only_duckdb"] == 0
    lines = [
        f"equality check over ALL rows: {row['matched']:,} rows matched on (athlete_id, feature_date) "
        f"for {row['athletes']:,} athletes; only in Spark {row['only_spark']:,}, only in DuckDB {row['only_duckdb']:,}",
        f"tolerance per value: |spark - duckdb| <= max({ABS_TOL:g}, {REL_TOL:g} * max(|spark|, |duckdb|))",
        f"  {'column':<24} {'non-null':>9} {'max abs diff':>13} {'max rel diff':>13} {'null mismatch':>13} "
        f"{'outside tol':>11}",
    ]
    for c in columns:
        bad, nulls = row[f"{c}__bad"], row[f"{c}__nulls"]
        ok = ok and bad == 0 and nulls == 0
        lines.append(
            f"  {c:<24} {row[f'{c}__values']:>9,} {sci(row[f'{c}__abs']):>13} {sci(row[f'{c}__rel']):>13} "
            f"{nulls:>13,} {bad:>11,}"
        )
    lines.append(f"equality: {'OK' if ok else 'FAILED'}")
    return ok, lines


def _threads(master: str) -> int:
    match = re.fullmatch(r"local\[(\d+)(?:,\d+)?\]", master)
    if match:
        return int(match.group(1))
    return 1 if master == "local" else os.cpu_count() or 1


def _duckdb_memory(driver_memory: str) -> str:
    match = re.fullmatch(r"(\d+)([kmgt]?)", driver_memory.lower())
    if not match:
        return "6GiB"
    unit = {"": "B", "k": "KiB", "m": "MiB", "g": "GiB", "t": "TiB"}[match.group(2)]
    return f"{match.group(1)}{unit}"


def _seconds(value: float | None) -> str:
    return "(one pass)" if value is None else f"{value:.1f}"


def report(meta: dict[str, Any], spark: dict[str, Any], duck: dict[str, Any] | None) -> list[str]:
    def rate(result: dict[str, Any]) -> float:
        return meta["sessions"] / result["seconds"]

    def budget(result: dict[str, Any]) -> str:
        gib = result["peak"]["total"] / GIB
        return f"{'PASS' if gib <= BUDGET_GIB else 'FAIL'} ({gib:.2f} <= {BUDGET_GIB:g})"

    results = [("Spark " + spark["config"]["spark.master"], spark)]
    if duck is not None:
        results.append((f"DuckDB ({duck['config']['threads']} threads)", duck))
    rows = [
        ("sessions", lambda r: f"{meta['sessions']:,}"),
        ("rows produced", lambda r: f"{r['rows']:,}"),
        ("seconds (read..MERGE)", lambda r: f"{r['seconds']:.1f}"),
        ("  of which features s", lambda r: _seconds(r["compute_seconds"])),
        ("  of which Delta MERGE s", lambda r: _seconds(r["merge_seconds"])),
        ("sessions/s", lambda r: f"{rate(r):,.0f}"),
        ("peak RSS, tree (GiB)", lambda r: f"{r['peak']['total'] / GIB:.2f}"),
        ("  of which JVM (GiB)", lambda r: f"{r['peak']['jvm'] / GIB:.2f}"),
        ("  of which python (GiB)", lambda r: f"{r['peak']['python'] / GIB:.2f}"),
        ("  processes at peak", lambda r: f"{r['peak']['processes']}"),
        ("8 GiB budget", budget),
        ("startup s (not timed)", lambda r: f"{r['startup_seconds']:.1f}"),
        ("subprocess wall s", lambda r: f"{r['wall_seconds']:.1f}"),
    ]
    width = max(len(name) for name, _ in results) + 2
    lines = table_lines(results, rows, width=max(width, 20))
    if duck is not None:
        ratio = rate(spark) / rate(duck)
        lines.append(f"Spark/DuckDB throughput ratio (sessions/s): {ratio:.3f} (DuckDB/Spark {1 / ratio:.1f}x)")
        times = spark["seconds"] / duck["seconds"]
        lines.append(
            f"goal: Spark's time (features + MERGE) <= 3x DuckDB's: {times:.2f}x"
            f" -> {'MET' if times <= 3 else 'NOT MET'}"
        )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--athletes", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1095, help="days of history (default 3 years)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work-dir", help="data and outputs (default: a new temp dir, kept)")
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--driver-memory", default="6g", help="spark.driver.memory (also DuckDB's memory_limit)")
    parser.add_argument(
        "--java-options", help="spark.java_options for the Spark child (default: conf/local.yaml's); '' for none"
    )
    parser.add_argument("--skip-duckdb", action="store_true")
    parser.add_argument("--role", choices=["main", "spark", "duckdb"], default="main", help=argparse.SUPPRESS)
    parser.add_argument("--run-date", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--memory-limit", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role != "main":
        result = spark_child(args) if args.role == "spark" else duckdb_child(args)
        write_result(Path(args.work_dir), args.role, result)
        return 0

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="feature-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    args.work_dir = str(work)
    cores = os.cpu_count()
    print(machine_line())
    print(f"work dir: {work}")
    t0 = time.perf_counter()
    meta = generate(args.athletes, args.days, args.seed, work / "data")
    print(
        f"data: {meta['sessions']:,} sessions, {meta['races']:,} races, {args.athletes} athletes x {args.days} days, "
        f"run date {meta['run_date']} ({time.perf_counter() - t0:.1f}s to generate or reuse)"
    )

    env = spark_env(work, args.driver_memory)
    if args.java_options is not None:
        env["ATHLETE_SPARK__JAVA_OPTIONS"] = args.java_options
    print(f"running Spark ({args.spark_master}, spark.driver.memory={args.driver_memory}) ...", flush=True)
    spark = run_measured(
        __file__, "spark", work, env, ["--spark-master", args.spark_master, "--run-date", meta["run_date"]]
    )
    print(f"  spark config: {spark['config']}")
    duck = None
    if not args.skip_duckdb:
        threads, memory = _threads(args.spark_master), _duckdb_memory(args.driver_memory)
        print(f"running DuckDB (threads={threads}, memory_limit={memory}) ...", flush=True)
        duck = run_measured(
            __file__,
            "duckdb",
            work,
            dict(os.environ),
            ["--run-date", meta["run_date"], "--threads", str(threads), "--memory-limit", memory],
        )
        print(f"  duckdb config: {duck['config']}")
    print()
    print("\n".join(report(meta, spark, duck)))
    print(f"cores: {cores}; load average now {os.getloadavg()[0]:.2f}")
    if duck is None:
        return 0
    print()
    ok, lines = compare(Path(spark["table"]), Path(duck["table"]))
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
