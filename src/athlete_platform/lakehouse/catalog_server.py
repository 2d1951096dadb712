"""The embedded catalog server: a metastore database server on 127.0.0.1.

Spark's session catalog (Hive metastore client + Delta) keeps table and schema entries in
this server's database, which lives on local disk under `<data_dir>/catalog`, so tables
survive restarts and several processes (jobs, the `sql` command, Airflow tasks) share one
catalog. It is Apache Derby's network server, the metastore database pyspark bundles.

Why not the Unity Catalog OSS server: see README ("Catalog"). The Unity backend is a
config switch (`catalog.backend: unity`) for sites that have it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from athlete_platform.config import CatalogSettings, Settings
from athlete_platform.errors import CatalogServerError
from athlete_platform.lakehouse.runtime import Jars, java_executable

SERVER_MAIN = "org.apache.derby.drda.NetworkServerControl"
DATABASE = "metastore"


def jdbc_url(catalog: CatalogSettings) -> str:
    """Where Spark's metastore client finds the catalog database."""
    return f"jdbc:derby://{catalog.host}:{catalog.port}/{DATABASE};create=true"


@dataclass(frozen=True)
class CatalogServer:
    host: str
    port: int
    state_dir: Path
    jars: Jars
    start_timeout_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> CatalogServer:
        return cls(
            host=settings.catalog.host,
            port=settings.catalog.port,
            state_dir=settings.catalog_state_path,
            jars=Jars(settings.jars_path),
            start_timeout_s=settings.catalog.start_timeout_s,
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "server.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "server.log"

    def is_answering(self) -> bool:
        """True when something accepts TCP connections on the address."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def pid(self) -> int | None:
        """The pid of this project's server for this state folder, if it is running."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return None
        return pid if SERVER_MAIN in cmdline and str(self.state_dir) in cmdline else None

    def status(self) -> str:
        pid = self.pid()
        if pid and self.is_answering():
            return f"running on {self.address} (pid {pid}, state in {self.state_dir})"
        if pid:
            return f"starting or stuck: pid {pid} is alive but {self.address} does not answer (log: {self.log_file})"
        if self.is_answering():
            return f"not running; {self.address} is taken by another process"
        return f"not running (state in {self.state_dir})"

    def command(self) -> list[str]:
        """The server's command line (checks Java and jars first)."""
        classpath = os.pathsep.join(str(p) for p in self.jars.derby_server_classpath())
        return [
            java_executable(),
            f"-Dderby.system.home={self.state_dir}",
            "-Dderby.stream.error.file=" + str(self.state_dir / "derby.log"),
            "-cp",
            classpath,
            SERVER_MAIN,
            "start",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-noSecurityManager",
        ]

    def serve(self) -> None:
        """Run the server in the foreground (containers, supervisors); never returns."""
        if self.is_answering():
            raise CatalogServerError(self._port_taken())
        command = self.command()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(str(os.getpid()))  # exec keeps the pid: jobs can tell it is ours
        os.execv(command[0], command)

    def start(self) -> str:
        """Start the server in the background unless it runs already; wait until it answers."""
        if self.pid() and self.is_answering():
            return f"already running on {self.address}"
        if self.is_answering():
            raise CatalogServerError(self._port_taken())
        command = self.command()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise CatalogServerError(self._died(process.returncode))
            if self.is_answering():
                return f"started on {self.address} (pid {process.pid}, state in {self.state_dir})"
            time.sleep(0.2)
        process.terminate()
        self.pid_file.unlink(missing_ok=True)
        raise CatalogServerError(
            f"The catalog server did not answer on {self.address} within {self.start_timeout_s:.0f} s. "
            f"See {self.log_file}; raise catalog.start_timeout_s if the machine is slow."
        )

    def stop(self, timeout_s: float = 30.0) -> str:
        """Stop the server (Derby's database is crash-safe; SIGTERM is a clean stop)."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return "not running"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and not _is_zombie(pid):
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists() and not _is_zombie(pid):
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return f"stopped (pid {pid})"

    def require_running(self) -> None:
        """Fail with what to run when the server is not up, or serves another data folder."""
        if not self.is_answering():
            raise CatalogServerError(
                f"The catalog server is not running on {self.address}. Start it with "
                "`athlete-platform catalog up` (or `make catalog-up`), then run the command again."
            )
        # A local server started for another data folder would register tables whose files
        # live elsewhere; refuse rather than mix two lakehouses.
        if self.host in LOOPBACK and self.pid() is None and _server_pids_on_this_machine():
            raise CatalogServerError(
                f"The catalog server on {self.address} was not started for this data folder "
                f"({self.state_dir.parent}). Stop it (`athlete-platform catalog down` with the config that "
                "started it) or use another catalog.port, then run `athlete-platform catalog up`."
            )

    def _port_taken(self) -> str:
        return (
            f"Cannot start the catalog server: {self.address} is already in use by another process "
            "(not this project's catalog server for this data folder). Stop that process, or choose "
            "a free port with catalog.port in the config file or ATHLETE_CATALOG__PORT."
        )

    def _died(self, returncode: int) -> str:
        tail = _tail(self.log_file)
        if "Address already in use" in tail or "BindException" in tail:
            return self._port_taken()
        return f"The catalog server exited at start-up (code {returncode}). Last lines of {self.log_file}:\n{tail}"


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _server_pids_on_this_machine() -> list[int]:
    """Pids of catalog servers (any data folder) running on this machine."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if SERVER_MAIN.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (OSError, IndexError):
        return True


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
