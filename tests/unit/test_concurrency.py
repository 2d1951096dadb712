"""The concurrency rule (issue 10 item 2): the step lock against real holder processes, and
Delta commit conflicts retried a bounded number of times, then reported in one paragraph."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from delta.exceptions.base import ConcurrentAppendException

from athlete_platform.errors import ConcurrencyError
from athlete_platform.lakehouse.concurrency import commit_conflict, lock_path, retry_conflicts, step_lock

DAY = date(2024, 6, 30)
SRC = str(Path(__file__).resolve().parents[2] / "src")


def hold_lock(data: Path, seconds: float, step: str = "silver") -> subprocess.Popen:
    """Another process that takes the step lock, says so on stdout, sleeps, then says
    'releasing' (still holding the lock) and lets it go."""
    code = (
        "import sys, time; from datetime import date; from pathlib import Path\n"
        "from athlete_platform.lakehouse.concurrency import step_lock\n"
        f"with step_lock(Path({str(data)!r}), {step!r}, date(2024, 6, 30), 'holder-run'):\n"
        "    print('held', flush=True); time.sleep(float(sys.argv[1])); print('releasing', flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    holder = subprocess.Popen([sys.executable, "-c", code, str(seconds)], stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_an_overlapping_run_stops_with_one_line_naming_the_holder(tmp_path):
    holder = hold_lock(tmp_path, 60)
    try:
        with pytest.raises(ConcurrencyError) as stopped, step_lock(tmp_path, "silver", DAY, "second"):
            pytest.fail("the lock was taken twice")
        message = str(stopped.value)
        assert "\n" not in message
        assert "Another run holds step silver for 2024-06-30" in message
        assert f"pid {holder.pid}" in message and "run id holder-run" in message and "since 20" in message
        # Another run date or another step is not this lock's business.
        with step_lock(tmp_path, "silver", date(2024, 7, 1), "other-day"), step_lock(tmp_path, "features", DAY, "x"):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_waiting_run_goes_on_when_the_holder_finishes(tmp_path):
    holder = hold_lock(tmp_path, 2)
    with step_lock(tmp_path, "silver", DAY, "waiter", wait_s=60):
        # The holder said 'releasing' before letting go, so the line is there already: the waiter
        # got the lock after the holder, not beside it (an order, not a time: a loaded machine
        # may delay either side).
        said_before, _, _ = select.select([holder.stdout], [], [], 0)
        assert said_before and holder.stdout.readline().strip() == "releasing"
    assert holder.wait(timeout=60) == 0


def test_a_bounded_wait_then_stops(tmp_path):
    holder = hold_lock(tmp_path, 60)
    try:
        started = time.monotonic()
        with pytest.raises(ConcurrencyError, match="after waiting 1 s"), step_lock(tmp_path, "silver", DAY, "w", 1.0):
            pass
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = hold_lock(tmp_path, 60)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert lock_path(tmp_path, "silver", DAY).exists()  # the file stays; the lock does not
    with step_lock(tmp_path, "silver", DAY, "after-crash"):
        pass


class _Conflict(ConcurrentAppendException):
    def __init__(self) -> None:
        Exception.__init__(
            self, "[DELTA_CONCURRENT_APPEND] Files were added to the root of the table.\n" + "at x\n" * 300
        )

    def __str__(self) -> str:
        return self.args[0]


def test_delta_conflicts_are_recognised_by_class_or_by_the_java_class_name():
    assert commit_conflict(_Conflict()) == "_Conflict"
    wrapped = RuntimeError(
        "An error occurred while calling o123.execute.\n: io.delta.exceptions.ConcurrentAppendException"
    )
    assert commit_conflict(wrapped) == "ConcurrentAppendException"
    try:
        try:
            raise RuntimeError("py4j: io.delta.exceptions.MetadataChangedException: The metadata changed")
        except RuntimeError as inner:
            raise ValueError("step failed") from inner
    except ValueError as outer:
        assert commit_conflict(outer) == "MetadataChangedException"
    assert commit_conflict(ValueError("table not found")) is None


def test_conflicts_are_retried_then_succeed():
    calls, pauses = [], []

    def action():
        calls.append(1)
        if len(calls) < 3:
            raise _Conflict()
        return "done"

    assert retry_conflicts(action, "step silver for 2024-06-30", retries=3, sleep=pauses.append) == "done"
    assert len(calls) == 3 and len(pauses) == 2 and all(p > 0 for p in pauses)


def test_conflicts_beyond_the_retries_are_one_paragraph():
    calls = []

    def action():
        calls.append(1)
        raise _Conflict()

    with pytest.raises(ConcurrencyError) as stopped:
        retry_conflicts(action, "step silver for 2024-06-30", retries=2, sleep=lambda s: None)
    message = str(stopped.value)
    assert len(calls) == 3 and "\n" not in message and len(message) < 800
    assert message.startswith("step silver for 2024-06-30 lost 3 tries") and "_Conflict" in message
    assert stopped.value.__cause__ is None and stopped.value.__suppress_context__


def test_other_errors_pass_through_untouched():
    with pytest.raises(KeyError):
        retry_conflicts(lambda: {}["x"], "step", retries=3, sleep=lambda s: pytest.fail("no retry"))
