"""Compile an XGBoost model's trees to a shared library (Treelite + TL2cgen) and prove it equal.

XGBoost's own single-row `inplace_predict` costs ~80-170 us (a DMatrix-like set-up per call);
the same trees as generated C, called through `ctypes`, cost a few microseconds. Compiling
needs the machine's C compiler (`$CC`, else `cc`), so it happens once, at export time.

A compiled library is used only if it gives XGBoost's answer on every validation row: the
model's input example plus synthetic rows that put each feature on both sides of each of its
split thresholds and on NaN (XGBoost's default direction), alone and mixed at random. The
tolerance is float32 rounding of the sum of the trees (the two add the same leaves in a
different order): `(trees + 1) * 2**-24 * (sum of each tree's largest |leaf| + |base|)`.
Anything else (no compiler, a failed compile, a difference) is a `CompileFailed` whose message
the export records, and the export falls back to XGBoost.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from athlete_platform.errors import PlatformError
from athlete_platform.inference.embedded import CompiledTrees, XGBoostTrees

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: -O2: the generated code is one long chain of comparisons; -O3 compiles slower for no gain here.
COMPILE_FLAGS = ("-O2", "-fPIC", "-std=c99")
#: Random rows mixing every feature's thresholds (interactions between trees' paths).
RANDOM_ROWS = 2000
#: At most this many threshold rows per feature (a deep model can have thousands of thresholds).
MAX_THRESHOLDS_PER_FEATURE = 2000
NAN_SHARE = 0.15


class CompileFailed(Exception):
    """The trees could not be compiled or the library disagreed with XGBoost (message: why)."""


@dataclass(frozen=True)
class Verification:
    rows: int
    max_abs_diff: float
    tolerance: float


@dataclass(frozen=True)
class CompiledLibrary:
    path: Path
    compiler: str
    compile_s: float
    verification: Verification


def c_compiler() -> list[str]:
    """The C compiler command (`$CC`, which may carry flags, else `cc`); CompileFailed if absent."""
    command = shlex.split(os.environ.get("CC") or "cc")
    if not command or shutil.which(command[0]) is None:
        raise CompileFailed(
            f"no C compiler: {' '.join(command) or '(empty CC)'} is not an executable "
            "(install one, e.g. `apt-get install gcc`, or point CC at it, then export again)"
        )
    return command


def compile_trees(model_file: Path, out_file: Path, work: Path, jobs: int | None = None) -> tuple[str, float]:
    """Generate C for the model's trees and compile it to `out_file`; returns (compiler, seconds)."""
    compiler = c_compiler()
    started = time.perf_counter()
    try:
        import tl2cgen
        import treelite

        model = treelite.frontend.load_xgboost_model(str(model_file))
        units = max(1, min(jobs or os.cpu_count() or 1, model.num_tree))
        source = work / "src"
        tl2cgen.generate_c_code(model, dirpath=str(source), params={"parallel_comp": units}, verbose=False)
    except Exception as exc:  # any failure of the code generator means: no compiled trees
        raise CompileFailed(f"Treelite/TL2cgen could not translate the model: {exc}") from None
    sources = [source / f"{item['name']}.c" for item in json.loads((source / "recipe.json").read_text())["sources"]]

    def run(args: list[str]) -> None:
        done = subprocess.run(args, capture_output=True, text=True, cwd=source)
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise CompileFailed(f"`{' '.join(args[:2])} ...` failed (exit {done.returncode}): {tail}")

    with ThreadPoolExecutor(max_workers=units) as pool:
        list(pool.map(lambda src: run([*compiler, *COMPILE_FLAGS, "-c", str(src), "-o", f"{src}.o"]), sources))
    run([*compiler, "-shared", "-o", str(out_file), *(f"{src}.o" for src in sources), "-lm"])
    return " ".join(compiler), time.perf_counter() - started


def split_thresholds(booster, input_names: tuple[str, ...]) -> dict[int, np.ndarray]:
    """Feature index -> its split thresholds (float32, sorted)."""
    trees: pd.DataFrame = booster.trees_to_dataframe()
    splits = trees[trees["Feature"] != "Leaf"]
    index = {name: i for i, name in enumerate(booster.feature_names or input_names)}
    out: dict[int, np.ndarray] = {}
    for feature, group in splits.groupby("Feature"):
        i = index.get(feature)
        if i is None and feature.startswith("f") and feature[1:].isdigit():
            i = int(feature[1:])
        out[i] = np.unique(group["Split"].to_numpy(np.float32))
    return out


def validation_rows(booster, input_names: tuple[str, ...], examples: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """Rows that reach every split from both sides and NaN, alone and mixed (see the module doc)."""
    rng = np.random.default_rng(seed)
    n = len(input_names)
    thresholds = split_thresholds(booster, input_names)
    base = np.full(n, np.nan, np.float32)
    for i, values in thresholds.items():
        base[i] = values[len(values) // 2]
    bases = examples.astype(np.float32) if examples is not None and len(examples) else base[None, :]
    rows = [bases, base[None, :]]
    for i, values in thresholds.items():
        if len(values) > MAX_THRESHOLDS_PER_FEATURE:
            values = rng.choice(values, MAX_THRESHOLDS_PER_FEATURE, replace=False)
        below = np.nextafter(values, np.float32(-np.inf))
        for picks in (values, below, np.array([np.nan], np.float32)):
            block = bases[np.arange(len(picks)) % len(bases)].copy()
            block[:, i] = picks
            rows.append(block)
    mixed = np.repeat(base[None, :], RANDOM_ROWS, axis=0)
    for i, values in thresholds.items():
        candidates = np.concatenate([values, np.nextafter(values, np.float32(-np.inf))])
        mixed[:, i] = rng.choice(candidates, RANDOM_ROWS)
    mixed[rng.random(mixed.shape) < NAN_SHARE] = np.nan
    rows.append(mixed)
    return np.concatenate(rows).astype(np.float32)


def rounding_tolerance(booster) -> float:
    """Float32 rounding bound of summing the trees in another order (see the module docstring)."""
    trees: pd.DataFrame = booster.trees_to_dataframe()
    leaves = trees[trees["Feature"] == "Leaf"]
    largest = leaves.groupby("Tree")["Gain"].agg(lambda v: np.abs(v).max()).sum()
    base_score = json.loads(booster.save_config())["learner"]["learner_model_param"]["base_score"]
    base = max(abs(float(v)) for v in str(base_score).strip("[]").split(","))
    count = int(leaves["Tree"].nunique())
    return float((count + 1) * 2.0**-24 * (largest + base))


def verify(library: CompiledTrees, reference: XGBoostTrees, booster, rows: np.ndarray) -> Verification:
    """Compiled vs XGBoost on every row; CompileFailed when any differs beyond float32 rounding."""
    got = library.predict_rows(rows).astype(np.float64)
    want = reference.predict_rows(rows).astype(np.float64)
    diff = np.abs(got - want)
    tolerance = rounding_tolerance(booster)
    worst = int(np.argmax(diff)) if len(diff) else 0
    max_diff = float(diff[worst]) if len(diff) else 0.0
    if not np.all(np.isfinite(got) == np.isfinite(want)) or max_diff > tolerance:
        raise CompileFailed(
            f"the compiled trees differ from XGBoost on validation row {worst} of {len(rows)}: {got[worst]!r} vs "
            f"{want[worst]!r} (difference {max_diff:.3g}, float32 rounding allows {tolerance:.3g})"
        )
    return Verification(len(rows), max_diff, tolerance)


def build_library(
    model_file: Path, out_file: Path, input_names: tuple[str, ...], examples: np.ndarray | None, work: Path
) -> CompiledLibrary:
    """Compile, load and verify; returns the library or raises CompileFailed (the reason)."""
    compiler, seconds = compile_trees(model_file, out_file, work)
    reference = XGBoostTrees(model_file)
    booster = reference.booster
    try:
        library = CompiledTrees(out_file, len(input_names))
    except (OSError, PlatformError) as exc:
        raise CompileFailed(f"the compiled library does not load: {exc}") from None
    rows = validation_rows(booster, input_names, examples)
    return CompiledLibrary(out_file, compiler, seconds, verify(library, reference, booster, rows))
