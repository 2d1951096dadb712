"""The concurrency rule every step runs under (README "Concurrency"); `steps.run_step` applies it.

1. **One run per step and run date at a time.** A run holds an exclusive lock, `fcntl.flock` on
   `<data_dir>/locks/<step>/<run_date>.lock`, for the whole step. The kernel drops the lock when
   the holder exits however it exits (kill -9 included), so a crashed run never leaves a stale
   lock behind. An overlapping run of the same step and run date waits up to
   `runs.lock_wait_s` (default 0), then stops with one line naming the holder: pid, run id,
   since when. Locks are local to the data folder's file system: runs on other machines are
   covered by rule 2 only.
2. **Different steps or run dates may run at once.** Where they write one Delta table, Delta's
   optimistic commit detects the overlap (`ConcurrentAppendException` and its kin). Every step
   is idempotent (keyed on its run date), so the step is simply run again, up to
   `runs.conflict_retries` times after a growing pause with jitter; if it still loses, it stops
   with one paragraph naming the conflict instead of a JVM trace.

And one translation: a step that fails while the embedded catalog server no longer answers
(killed mid-job) stops with "catalog server down" and what to run, not "table … cannot be found".
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from athlete_platform.errors import CatalogServerError, ConcurrencyError, PlatformError

if TYPE_CHECKING:
    from athlete_platform.lakehouse.step import StepContext

log = logging.getLogger("athlete_platform")
T = TypeVar("T")

# Delta's commit-conflict exceptions (io.delta.exceptions.* / delta.exceptions.*).
CONFLICTS = (
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "ConcurrentWriteException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DeltaConcurrentModificationException",
)
POLL_S = 0.25


@dataclass(frozen=True)
class Holder:
    """Who holds a step lock (as the holder wrote it into the lock file)."""

    pid: int | None
    run_id: str | None
    since: str | None
    host: str | None

    def describe(self) -> str:
        if self.pid is None:
            return "a run that has not written its name yet"
        where = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        return f"pid {self.pid}{where}, run id {self.run_id}, since {self.since}"


def lock_path(data_path: Path, step: str, run_date: date) -> Path:
    return data_path / "locks" / step / f"{run_date.isoformat()}.lock"


def read_holder(path: Path) -> Holder:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    return Holder(info.get("pid"), info.get("run_id"), info.get("since"), info.get("host"))


@contextmanager
def step_lock(data_path: Path, step: str, run_date: date, run_id: str, wait_s: float = 0.0) -> Iterator[Path]:
    """Hold the exclusive lock of (`step`, `run_date`) for the block; see rule 1 above."""
    path = lock_path(data_path, step, run_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = read_holder(path)
                if time.monotonic() >= deadline:
                    waited = f" after waiting {wait_s:.0f} s" if wait_s else ""
                    raise ConcurrencyError(
                        f"Another run holds step {step} for {run_date} ({holder.describe()}; lock {path}){waited}. "
                        "Let it finish and run again, or set runs.lock_wait_s (ATHLETE_RUNS__LOCK_WAIT_S) to wait "
                        "for it."
                    ) from None
                if not announced:
                    log.info("step %s %s: waiting up to %.0f s for %s", step, run_date, wait_s, holder.describe())
                    announced = True
                time.sleep(POLL_S)
        since = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        record = {"pid": os.getpid(), "run_id": run_id, "since": since, "host": socket.gethostname()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock (the kernel does the same if the process dies)


def commit_conflict(exc: BaseException) -> str | None:
    """The name of the Delta commit conflict behind `exc` (or its causes), else None."""
    from delta.exceptions import base

    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        if isinstance(seen, tuple(getattr(base, name) for name in CONFLICTS)):
            return type(seen).__name__
        text = str(seen)[:4000]
        for name in CONFLICTS:
            if name in text:
                return name
        seen = seen.__cause__ or seen.__context__
    return None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def retry_conflicts(action: Callable[[], T], what: str, retries: int, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `action`; re-run it after a Delta commit conflict up to `retries` times (rule 2)."""
    for attempt in range(retries + 1):
        try:
            return action()
        except PlatformError:
            raise
        except Exception as exc:
            conflict = commit_conflict(exc)
            if conflict is None:
                raise
            if attempt == retries:
                raise ConcurrencyError(
                    f"{what} lost {attempt + 1} tries to concurrent writers of the same Delta table ({conflict}: "
                    f"{_first_line(exc)}). Another step or run date was committing to a table this step writes; "
                    "its committed rows are intact and a re-run converges. Run it again when the other run has "
                    "finished, or raise runs.conflict_retries."
                ) from None
            pause = min(30.0, 2.0**attempt) * (0.5 + random.random())  # jitter: no lock-step retries
            log.warning("%s: %s, retry %d of %d in %.1f s", what, conflict, attempt + 1, retries, pause)
            sleep(pause)
    raise AssertionError("unreachable")


def run_guarded(ctx: StepContext, step: str, action: Callable[[], Any]) -> Any:
    """Run one step's `action` under the concurrency rule, translating a dead catalog server."""
    runs = ctx.settings.runs
    what = f"step {step} for {ctx.run_date}"
    with step_lock(ctx.settings.data_path, step, ctx.run_date, ctx.run_id, runs.lock_wait_s):
        try:
            return retry_conflicts(action, what, runs.conflict_retries)
        except PlatformError:
            raise
        except Exception:
            _raise_if_catalog_down(ctx, what)
            raise


def _raise_if_catalog_down(ctx: StepContext, what: str) -> None:
    if ctx.settings.catalog.backend != "embedded":
        return
    from athlete_platform.lakehouse.catalog_server import CatalogServer

    server = CatalogServer.from_settings(ctx.settings)
    if not server.is_answering():
        raise CatalogServerError(
            f"catalog server down: {what} failed because the catalog server on {server.address} stopped "
            "answering. Commits made before it stopped are kept and a re-run converges: run "
            "`athlete-platform catalog up`, then run the step again."
        ) from None
