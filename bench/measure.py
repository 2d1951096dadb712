"""Shared by the benchmarks: run a contender in a subprocess, measure it, format the numbers.

A benchmark script runs itself once per contender (``--role <role> --work-dir <dir>``); the child
writes its result to :func:`result_path` and the parent (:func:`run_measured`) adds wall seconds
and the peak RSS of the child's process tree.

Peak RSS is summed over the whole process tree (driver Python, JVM, Python workers) every
SAMPLE_INTERVAL_S; shared pages of forked workers count twice (an overestimate) and a peak
shorter than the interval can be missed. CPU time (:func:`tree_cpu`) is user+system seconds of
this process and its descendants; processes that ended between two snapshots are lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

HOME = Path(__file__).resolve().parents[1]
GIB = 1024**3
SAMPLE_INTERVAL_S = 0.15

#: A benchmark result as a child writes it (plus ``wall_seconds`` and ``peak`` from the parent).
Result = dict[str, Any]


# --- process tree: memory and CPU ------------------------------------------------------------


def tree_rss(root) -> tuple[int, int, int, int]:
    """(total, jvm, python, processes) resident bytes of `root` and its descendants."""
    import psutil

    procs = [root, *root.children(recursive=True)]
    total = jvm = python = 0
    for proc in procs:
        try:
            rss = proc.memory_info().rss
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += rss
        if name == "java":
            jvm += rss
        elif name.startswith("python"):
            python += rss
    return total, jvm, python, len(procs)


def tree_cpu() -> dict[int, tuple[str, float]]:
    """pid -> (kind, user+system CPU seconds) for this process and all its descendants."""
    import psutil

    me = psutil.Process()
    out = {}
    for proc in [me, *me.children(recursive=True)]:
        try:
            times, name = proc.cpu_times(), proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        kind = "jvm" if name == "java" else "python" if name.startswith("python") else "other"
        out[proc.pid] = (kind, times.user + times.system)
    return out


def cpu_delta(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds spent between two `tree_cpu` snapshots, by kind (processes that ended are lost)."""
    spent = {"jvm": 0.0, "python": 0.0, "other": 0.0}
    for pid, (kind, seconds) in after.items():
        spent[kind] += seconds - before.get(pid, (kind, 0.0))[1]
    return spent


# --- running a contender -----------------------------------------------------------------------


def result_path(work: Path, role: str) -> Path:
    """Where the `role` child writes its result JSON."""
    return work / f"{role}-result.json"


def write_result(work: Path, role: str, result: Result) -> None:
    """Child side: hand `result` to the parent's :func:`run_measured`."""
    result_path(work, role).write_text(json.dumps(result))


def run_sampled(cmd: list[str], env: dict, cwd: Path, log_path: Path, result_path: Path, role: str) -> Result:
    """Run `cmd`; return the JSON it wrote to `result_path` plus wall seconds and peak RSS."""
    import psutil

    peak = {"total": 0, "jvm": 0, "python": 0, "processes": 0}
    started = time.perf_counter()
    with open(log_path, "w") as log:
        child = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        root = psutil.Process(child.pid)
        while child.poll() is None:
            try:
                total, jvm, python, processes = tree_rss(root)
            except psutil.NoSuchProcess:
                break
            if total > peak["total"]:
                peak = {"total": total, "jvm": jvm, "python": python, "processes": processes}
            time.sleep(SAMPLE_INTERVAL_S)
        child.wait()
    wall = time.perf_counter() - started
    if child.returncode != 0 or not result_path.exists():
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-40:])
        raise SystemExit(f"{role} subprocess failed (exit {child.returncode}); log {log_path}:\n{tail}")
    result = json.loads(result_path.read_text())
    result.update(wall_seconds=wall, peak=peak)
    return result


def run_measured(script: str | Path, role: str, work: Path, env: dict[str, str], extra: Sequence[str] = ()) -> Result:
    """Run `script --role <role> --work-dir <work> <extra>` in a subprocess; sample its tree's RSS.

    The child's output goes to ``<work>/<role>.log``; a stale result file is removed first.
    """
    path = result_path(work, role)
    path.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(script).resolve()), "--role", role, "--work-dir", str(work), *extra]
    return run_sampled(cmd, env, HOME, work / f"{role}.log", path, role)


def spark_env(work: Path, driver_memory: str) -> dict[str, str]:
    """The environment of a Spark child: no catalog server, a throw-away data dir, driver memory."""
    env = dict(os.environ)
    env.update(
        ATHLETE_CATALOG__BACKEND="session",
        ATHLETE_DATA_DIR=str(work / "spark-lakehouse"),
        ATHLETE_SPARK__DRIVER_MEMORY=driver_memory,
    )
    return env


def jvm_max_heap_gib(spark) -> float:
    """The driver JVM's maximum heap in GiB (what ``spark.driver.memory`` really gave)."""
    jvm = spark.sparkContext._jvm
    return round(jvm.java.lang.Runtime.getRuntime().maxMemory() / GIB, 2)


def file_fingerprint(files: Mapping[str, Path]) -> dict[str, str]:
    """name -> short sha1 of each file (to notice code edited during a run)."""
    return {name: hashlib.sha1(path.read_bytes()).hexdigest()[:10] for name, path in files.items()}


# --- printing ------------------------------------------------------------------------------------


def machine_line() -> str:
    """Cores, RAM and the load average now (the machine may be shared)."""
    import psutil

    return (
        f"machine: {os.cpu_count()} logical cores ({psutil.cpu_count(logical=False)} physical), "
        f"{psutil.virtual_memory().total / GIB:.1f} GiB RAM, load average {os.getloadavg()[0]:.2f} at start"
    )


def sci(value: float | None) -> str:
    """A difference in scientific notation (``1.23e-07``), "-" when there is none."""
    return "-" if value is None else f"{value:.2e}"


def hms(seconds: float) -> str:
    """Seconds as h:mm:ss, rounded to the second."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def table_lines(
    columns: Sequence[tuple[str, Result]], rows: Sequence[tuple[str, Callable[[Result], str]]], width: int
) -> list[str]:
    """A text table: one column per (title, result), one line per (label, cell function)."""
    lines = [f"{'':<24}" + "".join(f"{title:>{width}}" for title, _ in columns)]
    for label, cell in rows:
        lines.append(f"{label:<24}" + "".join(f"{cell(result):>{width}}" for _, result in columns))
    return lines
