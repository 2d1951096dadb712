"""The inference log: every online prediction as one JSON line, written off the request path.

A request puts its record on a bounded queue (`log`: never blocks; when the queue is full the
record is dropped and counted, shown on `/status`); one background thread appends the records
to `<inference_log_path>/inference-<YYYYMMDDHH>-<pid>.jsonl` (UTC hour of `logged_at`, one
file per process and hour, so several workers never share a file). Each line is written with
one `os.write` on an `O_APPEND` descriptor: a line is in the file whole or not at all, and a
reader may take every line that ends in a newline. The thread drains the queue at shutdown.

A later step flushes these files into the Delta table `gold.online_inference_log`; it reads
lines of exactly `RECORD_SCHEMA` (defined with that step, `inference.online_log`).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from athlete_platform.inference.online_log import ROUTES

log = logging.getLogger("athlete_platform.serving")

FILE_GLOB = "inference-*.jsonl"
_STOP = object()


def new_request_id() -> str:
    return uuid.uuid4().hex


def utc_iso(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and a "Z"."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(
    *,
    request_id: str,
    route: str,
    athlete_id: str | None,
    variant: str,
    model_name: str,
    model_version: str,
    feature_date: str | None,
    race_date: str | None,
    inputs: dict[str, Any],
    outputs: list[dict[str, Any]],
    latency_ms: float,
    logged_at: datetime | None = None,
) -> dict[str, Any]:
    """One log record in `RECORD_SCHEMA` order (pure)."""
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, not {route!r}")
    return {
        "request_id": request_id,
        "logged_at": utc_iso(logged_at or datetime.now(UTC)),
        "route": route,
        "athlete_id": athlete_id,
        "variant": variant,
        "model_name": model_name,
        "model_version": model_version,
        "feature_date": feature_date,
        "race_date": race_date,
        "inputs": inputs,
        "outputs": outputs,
        "latency_ms": float(latency_ms),
    }


def file_name(logged_at: str, pid: int) -> str:
    """`inference-<YYYYMMDDHH>-<pid>.jsonl` for a record's `logged_at`."""
    return f"inference-{logged_at[0:4]}{logged_at[5:7]}{logged_at[8:10]}{logged_at[11:13]}-{pid}.jsonl"


def encode(entry: dict[str, Any]) -> bytes:
    """One line; non-finite numbers (not JSON) are written as null."""
    try:
        text = json.dumps(entry, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except ValueError:
        text = json.dumps(_finite(entry), separators=(",", ":"), ensure_ascii=False)
    return (text + "\n").encode("utf-8", "surrogatepass")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class InferenceLog:
    """The background writer (see the module docstring)."""

    def __init__(self, folder: Path, max_queue: int) -> None:
        self.folder = Path(folder)
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._fd_name: str | None = None
        self.written = 0
        self.dropped = 0
        self.failed = 0  # records lost to a write error (disk full, folder removed)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._thread.start()

    def log(self, entry: dict[str, Any]) -> None:
        """Queue one record; never blocks (a full queue drops it and counts the drop)."""
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout_s: float = 30.0) -> None:
        """Write everything queued so far, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP, timeout=timeout_s)
        self._thread.join(timeout=timeout_s)
        self._thread = None

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def stats(self) -> dict[str, int | str]:
        return {
            "folder": str(self.folder),
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed,
            "pending": self.pending,
        }

    def _run(self) -> None:
        pid = os.getpid()
        try:
            while True:
                entry = self._queue.get()
                if entry is _STOP:
                    return
                self._write(entry, pid)
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _write(self, entry: dict[str, Any], pid: int) -> None:
        try:
            name = file_name(entry["logged_at"], pid)
            if name != self._fd_name:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
                self.folder.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self._fd_name = name
            line = encode(entry)
            end = os.lseek(self._fd, 0, os.SEEK_END)  # this thread is the file's only writer
            if os.write(self._fd, line) != len(line):  # disk full: take the partial line back out
                os.ftruncate(self._fd, end)
                raise OSError("short write")
            self.written += 1
        except Exception as exc:  # the log must never take the service down
            self.failed += 1
            self._fd_name = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            log.warning("serving: inference log write failed (%s); %d records lost so far", exc, self.failed)
