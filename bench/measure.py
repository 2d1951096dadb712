"""Shared by the benchmarks: run one contender in a subprocess and sample its memory.

Peak RSS is summed over the whole process tree (driver Python, JVM, Python workers) every
SAMPLE_INTERVAL_S; shared pages of forked workers count twice (an overestimate) and a peak
shorter than the interval can be missed.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

SAMPLE_INTERVAL_S = 0.15


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


def run_sampled(cmd: list[str], env: dict, cwd: Path, log_path: Path, result_path: Path, role: str) -> dict:
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
