"""Embedded predictor single-row latency: XGBoost `inplace_predict` vs compiled trees vs dict -> prediction.

    .venv/bin/python bench/embedded_predictor.py                          # 400 trees, depth 6, 20,000 calls each
    .venv/bin/python bench/embedded_predictor.py --trees 100 --calls 5000 # quick check
    .venv/bin/python bench/embedded_predictor.py --data-dir data          # also the lakehouse's champion

One process, one run. A 400-tree depth-6 XGBoost model is trained on synthetic rows shaped like
the time estimator's inputs (`batch_inference.make_rows`, the project's training target), then
exported with `inference.export.write_folder` (compiled with the machine's C compiler and
verified, as `export-model` does) and loaded with `EmbeddedPredictor.load`. The contenders take
turns in blocks of `--block` calls over the same request sequence (distinct rows, so no cache
helps), each call timed on its own with `perf_counter_ns`:

- `xgboost`: `booster.inplace_predict` on one float32 row (nthread 1), the reference;
- `compiled`: `EmbeddedPredictor.predict_vector(vector)`, the compiled trees through ctypes;
- `odt arrays`: `on_demand.compute(MODEL_INPUTS, values)` alone, the array code on 0-d values
  (what the dict path ran before the one-row twins);
- `odt one-row`: `on_demand.compute_one(MODEL_INPUTS, values)` alone, the ODTs' one-row twins;
- `live odt arrays` / `live odt one-row`: the same for the live model's `LIVE_INPUTS` (the
  requests plus generated live values);
- `dict, array ODTs (before)`: the dict path as it was: `compute` + compiled trees + the array
  output transform (`model_inputs.predicted_time_s`);
- `dict`: `EmbeddedPredictor.predict(values)`: one-row ODTs + compiled trees + finish time in s.

Before timing, the dict path's finish times are checked bit for bit against the array path's
on every distinct request (and the one-row vectors against `compute`'s).

With `--data-dir`, the registered champion of that lakehouse is exported too (`export_model`)
and its `compiled` and `dict` paths are timed on the same requests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from batch_inference import make_rows
from measure import machine_line

from athlete_platform.features import model_inputs as mi
from athlete_platform.features import on_demand
from athlete_platform.inference.embedded import EmbeddedPredictor
from athlete_platform.inference.export import write_folder

GOAL_P50_US = 50.0


def train(trees: int, depth: int, rows: int, seed: int, work: Path) -> tuple[Path, Any]:
    """XGBoost on synthetic time-estimator rows (the training pipeline's params, deeper and longer)."""
    import xgboost as xgb

    from athlete_platform.training.pipeline import XGB_PARAMS

    table, finish = make_rows(rows, seed)
    frame = table.to_pandas()
    x = mi.model_inputs(frame)
    y = mi.training_target(finish, frame["distance_m"], x)
    params = {**XGB_PARAMS, "n_estimators": trees, "max_depth": depth}
    model = xgb.XGBRegressor(**params).fit(x, y)
    path = work / "model.ubj"
    model.get_booster().save_model(path)
    return path, x


def requests(count: int, seed: int) -> list[dict[str, Any]]:
    """Stored row + request parameters per call, as a serving caller would pass them."""
    frame = make_rows(count, seed).__getitem__(0).to_pandas()
    out = []
    for record in frame.to_dict("records"):
        values = {name: record[name] for name in mi.STORED_INPUTS}
        values.update(race_distance_m=float(record["distance_m"]), race_date=record["event_date"])
        out.append(values)
    return out


def live_requests(pool: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The requests plus live values (a race in progress), some heart rates missing."""
    rng = np.random.default_rng(seed)
    out = []
    for values in pool:
        done_m = float(rng.uniform(0.0, 1.02)) * values["race_distance_m"]
        pace_s_per_km = float(rng.uniform(180.0, 480.0))
        live = {
            "distance_done_m": done_m,
            "elapsed_s": done_m / 1000.0 * pace_s_per_km * float(rng.uniform(0.9, 1.1)),
            "current_hr": None if rng.random() < 0.1 else float(rng.uniform(110.0, 195.0)),
            "current_pace_s_per_km": pace_s_per_km * float(rng.uniform(0.85, 1.2)),
        }
        out.append({**values, **live})
    return out


def predict_with_array_odts(predictor: EmbeddedPredictor, inputs: dict[str, Any]) -> float:
    """`EmbeddedPredictor.predict` as it was before the one-row twins (requests carry race_date)."""
    computed = on_demand.compute(predictor.input_names, dict(inputs))
    raw = predictor.predict_vector([computed[name] for name in predictor.input_names])
    return float(mi.predicted_time_s(raw, computed))


def same_bits(a: list, b: list) -> bool:
    """Equal float64 bits, NaN in the same places."""
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    nan = np.isnan(x)
    return bool(np.array_equal(nan, np.isnan(y)) and np.array_equal(x[~nan].view(np.int64), y[~nan].view(np.int64)))


def time_calls(
    contenders: dict[str, Callable[[int], Any]], calls: int, block: int, first: int = 0
) -> dict[str, np.ndarray]:
    """Per-call microseconds of each contender, taking turns in blocks over the same call indices."""
    timings: dict[str, list[int]] = {name: [] for name in contenders}
    clock = time.perf_counter_ns
    for start in range(first, first + calls, block):
        for name, call in contenders.items():
            spent = timings[name]
            for i in range(start, min(start + block, first + calls)):
                before = clock()
                call(i)
                spent.append(clock() - before)
    return {name: np.asarray(ns, float) / 1000.0 for name, ns in timings.items()}


def report(timings: dict[str, np.ndarray], reference: str) -> list[str]:
    ref50, ref99 = np.percentile(timings[reference], [50, 99])
    lines = [
        f"{'contender':<27}{'p50 us':>10}{'p99 us':>10}{'mean us':>10}{'max us':>10}{'p50/xgb':>10}{'p99/xgb':>10}"
    ]
    for name, us in timings.items():
        p50, p99 = np.percentile(us, [50, 99])
        cells = f"{p50:>10.2f}{p99:>10.2f}{us.mean():>10.2f}{us.max():>10.1f}"
        lines.append(f"{name:<27}{cells}{p50 / ref50:>10.3f}{p99 / ref99:>10.3f}")
    return lines


def export_champion(data_dir: Path, work: Path) -> EmbeddedPredictor | None:
    from athlete_platform.config import load_settings
    from athlete_platform.errors import PlatformError
    from athlete_platform.inference.export import export_model

    os.environ["ATHLETE_DATA_DIR"] = str(data_dir.resolve())
    try:
        exported = export_model(load_settings(), "time_estimator", "champion", work / "champion")
    except PlatformError as exc:
        print(f"champion of {data_dir}: not exported ({exc})")
        return None
    print(exported.summary())
    return EmbeddedPredictor.load(exported.folder)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=400)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--train-rows", type=int, default=20000)
    parser.add_argument("--calls", type=int, default=20000, help="timed calls per contender")
    parser.add_argument("--block", type=int, default=500, help="calls per turn")
    parser.add_argument("--warmup", type=int, default=1000, help="untimed calls per contender first")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, help="a lakehouse whose registered champion is timed too")
    parser.add_argument("--work-dir", type=Path, help="default: a new temp dir")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import xgboost as xgb

    args = parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-embedded-"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    started = time.perf_counter()
    model_file, _ = train(args.trees, args.depth, args.train_rows, args.seed, work)
    spent_s = time.perf_counter() - started
    print(f"trained {args.trees} trees, depth {args.depth}, on {args.train_rows} rows in {spent_s:.1f} s")
    signature = {"inputs": [{"type": "double", "name": n, "required": True} for n in mi.MODEL_INPUTS], "outputs": []}
    identity = {"model": "time_estimator", "registered_model": "bench", "version": "0", "alias": "-", "run_id": "-"}
    stamp = write_folder(work / "export", model_file, signature, None, identity, work)
    if stamp["predictor"] != "compiled":
        print(f"NOT compiled: {stamp['fallback_reason']}")
    else:
        v = stamp["verification"]
        print(
            f"compiled with {stamp['compiler']} in {stamp['compile_s']:.1f} s; equal to XGBoost on {v['rows']} "
            f"validation rows (largest difference {v['max_abs_diff']:.2g}, tolerance {v['tolerance']:.2g})"
        )
    predictor = EmbeddedPredictor.load(work / "export")
    booster = xgb.Booster()
    booster.load_model(str(model_file))
    booster.set_param({"nthread": 1})

    calls = args.calls
    pool = requests(min(calls, 5000), args.seed + 100)
    values = [pool[i % len(pool)] for i in range(calls + args.warmup)]
    vectors = [[float(v) for v in on_demand.compute(mi.MODEL_INPUTS, r).values()] for r in pool]
    vecs = [vectors[i % len(vectors)] for i in range(calls + args.warmup)]
    rows32 = [np.asarray([v], np.float32) for v in vecs]
    live_pool = live_requests(pool, args.seed + 200)
    live = [live_pool[i % len(live_pool)] for i in range(calls + args.warmup)]
    from athlete_platform.features.live_inputs import LIVE_INPUTS

    one_row = [list(on_demand.compute_one(mi.MODEL_INPUTS, r).values()) for r in pool]
    live_arrays = [list(on_demand.compute(LIVE_INPUTS, r).values()) for r in live_pool]
    live_one_row = [list(on_demand.compute_one(LIVE_INPUTS, r).values()) for r in live_pool]
    before = [predict_with_array_odts(predictor, r) for r in pool]
    after = [predictor.predict(r) for r in pool]
    checks = {
        "vectors": same_bits(one_row, vectors),
        "live vectors": same_bits(live_one_row, live_arrays),
        "finish times": same_bits(after, before),
    }
    print(f"one-row = array path, bit for bit, on {len(pool)} requests: {checks}")

    contenders: dict[str, Callable[[int], Any]] = {
        "xgboost inplace_predict": lambda i: booster.inplace_predict(rows32[i], missing=np.nan),
        "compiled (vector)": lambda i: predictor.predict_vector(vecs[i]),
        "odt arrays (before)": lambda i: on_demand.compute(mi.MODEL_INPUTS, values[i]),
        "odt one-row": lambda i: on_demand.compute_one(mi.MODEL_INPUTS, values[i]),
        "live odt arrays": lambda i: on_demand.compute(LIVE_INPUTS, live[i]),
        "live odt one-row": lambda i: on_demand.compute_one(LIVE_INPUTS, live[i]),
        "dict, array ODTs (before)": lambda i: predict_with_array_odts(predictor, values[i]),
        "dict -> finish time": lambda i: predictor.predict(values[i]),
    }
    champion = export_champion(args.data_dir, work) if args.data_dir else None
    if champion is not None:
        contenders["champion compiled"] = lambda i: champion.predict_vector(vecs[i])
        contenders["champion dict"] = lambda i: champion.predict(values[i])
    time_calls(contenders, args.warmup, args.block)
    timings = time_calls(contenders, calls, args.block, first=args.warmup)

    want = booster.inplace_predict(np.asarray(vectors, np.float32), missing=np.nan).astype(float)
    got = np.array([predictor.predict_vector(v) for v in vectors])
    print(
        f"{calls} calls per contender over {len(pool)} distinct requests, blocks of {args.block}, {args.warmup} warm-up"
    )
    print(f"compiled vs XGBoost on those requests: largest difference {np.max(np.abs(got - want)):.2g}")
    print("\n".join(report(timings, "xgboost inplace_predict")))
    for name in ("compiled (vector)", "dict, array ODTs (before)", "dict -> finish time"):
        p50 = float(np.percentile(timings[name], 50))
        print(f"goal p50 <= {GOAL_P50_US:.0f} us, {name}: {p50:.1f} us -> {'MET' if p50 <= GOAL_P50_US else 'NOT MET'}")
    print(f"load average at end {os.getloadavg()[0]:.2f}; work dir {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
