"""A real Spark standalone cluster on this machine: one master and N workers on 127.0.0.1.

Started from the installed pyspark (`spark-class`), state and logs under
`<data_dir>/spark-cluster/`. Jobs then run with `--master spark://127.0.0.1:7077` unchanged.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from athlete_platform.errors import PlatformError
from athlete_platform.lakehouse.runtime import java_executable

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


@dataclass(frozen=True)
class StandaloneCluster:
    folder: Path
    host: str = "127.0.0.1"
    port: int = 7077
    ui_port: int = 8080
    workers: int = 2
    worker_cores: int = 1
    worker_memory: str = "2g"

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.port}"

    def _spark_class(self) -> str:
        import pyspark

        return str(Path(pyspark.__file__).parent / "bin" / "spark-class")

    def _env(self) -> dict[str, str]:
        java = Path(java_executable()).resolve()
        return {
            **os.environ,
            "JAVA_HOME": str(java.parent.parent),
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_LOG_DIR": str(self.folder / "logs"),
            "SPARK_WORKER_DIR": str(self.folder / "work"),
            "SPARK_NO_DAEMONIZE": "1",
        }

    def status(self) -> dict:
        """The master's JSON status (workers, apps), or {} when it is not up."""
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.ui_port}/json/", timeout=2) as response:
                return json.load(response)
        except OSError:
            return {}

    def workers_used_by(self, app_id: str) -> int:
        """How many workers ran (or run) an executor of the application."""
        used = 0
        for worker in self.status().get("workers", []):
            try:
                with urllib.request.urlopen(f"{worker['webuiaddress']}/json/", timeout=2) as response:
                    info = json.load(response)
            except OSError:
                continue
            executors = info.get("executors", []) + info.get("finishedexecutors", [])
            used += any(e.get("appid") == app_id for e in executors)
        return used

    def alive_workers(self) -> int:
        return sum(1 for w in self.status().get("workers", []) if w.get("state") == "ALIVE")

    def up(self, timeout_s: float = 90.0) -> str:
        """Start the master and workers unless running; wait until all workers registered."""
        if self.alive_workers() >= self.workers:
            return f"already running: {self.master_url} with {self.alive_workers()} workers"
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "logs").mkdir(exist_ok=True)
        if not self.status():
            self._spawn(
                "master",
                [MASTER_CLASS, "--host", self.host, "--port", str(self.port), "--webui-port", str(self.ui_port)],
            )
            self._wait(lambda: bool(self.status()), timeout_s, "the master did not answer")
        for index in range(1, self.workers + 1):
            self._spawn(
                f"worker-{index}",
                [
                    WORKER_CLASS,
                    self.master_url,
                    "--host",
                    self.host,
                    "--cores",
                    str(self.worker_cores),
                    "--memory",
                    self.worker_memory,
                    "--webui-port",
                    str(self.ui_port + index),
                    "--work-dir",
                    str(self.folder / "work"),
                ],
            )
        self._wait(lambda: self.alive_workers() >= self.workers, timeout_s, "workers did not register")
        return f"started {self.master_url} with {self.workers} workers (UI http://{self.host}:{self.ui_port})"

    def down(self) -> str:
        stopped = []
        for pid_file in sorted(self.folder.glob("*.pid")):
            try:
                pid = int(pid_file.read_text())
                os.killpg(pid, signal.SIGTERM)
                stopped.append(pid_file.stem)
            except (ValueError, ProcessLookupError, PermissionError):
                pass
            pid_file.unlink(missing_ok=True)
        return f"stopped {', '.join(stopped)}" if stopped else "not running"

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.folder / "logs" / f"{name}.out", "ab")  # noqa: SIM115 - handed to the child
        process = subprocess.Popen(
            [self._spark_class(), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._env(),
            start_new_session=True,
        )
        (self.folder / f"{name}.pid").write_text(str(process.pid))

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.5)
        raise PlatformError(
            f"Spark standalone cluster: {what} within {timeout_s:.0f} s. See the logs in {self.folder / 'logs'}; "
            f"ports {self.port} and {self.ui_port}+ must be free."
        )
