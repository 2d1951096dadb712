"""The embedded catalog server: a metastore database server on 127.0.0.1.

Spark's session catalog (Hive metastore client + Delta) keeps table and schema entries in
this server's database, which lives on local disk under `<data_dir>/catalog`, so tables
survive restarts and several processes (jobs, the `sql` command, Airflow tasks) share one
catalog. It is Apache Derby's network server, the metastore database pyspark bundles.

Why not the Unity Catalog OSS server: see README ("Catalog"). The Unity backend is a
config switch (`catalog.backend: unity`) for sites that have it.

Ownership (which lakehouse a server serves): a server's identity is its own command line,
`-Dderby.system.home=<data_dir>/catalog -p <port>`. On this machine (a loopback host) a job
asks the kernel which process listens on the configured port (/proc/net/tcp -> socket inode ->
/proc/<pid>/fd) and proceeds only when that process is the catalog server started for *this*
data folder; otherwise it stops, naming the pid and the data folder the server does serve. So
a wrong `catalog.port` can never send writes into another lakehouse's catalog, and `status`
reports the pid that really answers. A server on another host cannot be inspected this way:
there the configured address is trusted (one catalog per site, e.g. docker-compose).
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
from athlete_platform.lakehouse.relocation import relocate_catalog
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
    warehouse_dir: Path | None = None  # where the tables' files live (for relocate_if_moved)

    @classmethod
    def from_settings(cls, settings: Settings) -> CatalogServer:
        return cls(
            host=settings.catalog.host,
            port=settings.catalog.port,
            state_dir=settings.catalog_state_path,
            jars=Jars(settings.jars_path),
            start_timeout_s=settings.catalog.start_timeout_s,
            warehouse_dir=settings.warehouse_path,
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

    def _file_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def is_ours(self, pid: int, any_port: bool = False) -> bool:
        """True when `pid` is the catalog server of this state folder (on this port)."""
        args = _cmdline(pid)
        if SERVER_MAIN not in args or f"-Dderby.system.home={self.state_dir}" not in args:
            return False
        return any_port or _option(args, "-p") == str(self.port)

    def listener(self) -> int | None:
        """The pid listening on this address (loopback hosts only), if the kernel shows it."""
        if self.host not in LOOPBACK:
            return None
        return listening_pid(self.port)

    def pid(self) -> int | None:
        """The pid of this project's server for this state folder and port, if it is running:
        the process listening on the port when that is ours, else the pid file's (starting)."""
        listener = self.listener()
        if listener is not None and self.is_ours(listener):
            return listener
        pid = self._file_pid()
        return pid if pid is not None and self.is_ours(pid) else None

    def serves_this_folder(self) -> bool:
        """The server answers and (on this machine) is the one started for this data folder."""
        if not self.is_answering():
            return False
        if self.host not in LOOPBACK:
            return True  # cannot be inspected from here: trusted (module docstring)
        listener = self.listener()
        return listener is not None and self.is_ours(listener)

    def status(self) -> str:
        answering = self.is_answering()
        if answering and self.host not in LOOPBACK:
            return f"answering on {self.address} (another host: which data folder it serves is not checked)"
        pid = self.pid()
        if pid and answering and (self.host not in LOOPBACK or pid == self.listener()):
            return f"running on {self.address} (pid {pid}, state in {self.state_dir})"
        if pid and not answering:
            return f"starting or stuck: pid {pid} is alive but {self.address} does not answer (log: {self.log_file})"
        if answering:
            return f"not running for this data folder; {self.address} is taken by {self._describe_listener()}"
        return f"not running (state in {self.state_dir})"

    def _describe_listener(self) -> str:
        listener = self.listener()
        if listener is None:
            return "a process this user cannot see"
        home = _option(_cmdline(listener), "-Dderby.system.home=")
        if SERVER_MAIN in _cmdline(listener) and home:
            return f"pid {listener}, the catalog server of another data folder ({Path(home).parent})"
        return f"pid {listener} ({' '.join(_cmdline(listener))[:120]})"

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
        running = self._file_pid()
        if running is not None and self.is_ours(running, any_port=True):
            # Derby serves one database from one process: a second server would fail on the lock.
            raise CatalogServerError(
                f"This data folder's catalog server already runs as pid {running} on port "
                f"{_option(_cmdline(running), '-p')}, not on {self.port}. Set catalog.port "
                "(or ATHLETE_CATALOG__PORT) to that port, or stop it with that port first."
            )
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
                self.relocate_if_moved()
                return f"started on {self.address} (pid {process.pid}, state in {self.state_dir})"
            time.sleep(0.2)
        process.terminate()
        self.pid_file.unlink(missing_ok=True)
        raise CatalogServerError(
            f"The catalog server did not answer on {self.address} within {self.start_timeout_s:.0f} s. "
            f"See {self.log_file}; raise catalog.start_timeout_s if the machine is slow."
        )

    def relocate_if_moved(self) -> str | None:
        """After a move of the data folder, point the catalog's locations at the new warehouse
        (lakehouse.relocation); returns the old warehouse location when it did."""
        if self.warehouse_dir is None:
            return None
        return relocate_catalog(
            self.jars.derby_server_classpath() + [self.jars.derby_client()],
            f"jdbc:derby://{self.host}:{self.port}/{DATABASE}",
            self.warehouse_dir,
            self.state_dir / DATABASE,
            self.state_dir / "warehouse.txt",
            java_executable(),
        )

    def stop(self, timeout_s: float = 30.0) -> str:
        """Stop the server (Derby's database is crash-safe; SIGTERM is a clean stop)."""
        pid = self.pid()
        if pid is None:
            stale = self._file_pid()
            if stale is None or not self.is_ours(stale, any_port=True):  # ours on another port stays
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
        # live elsewhere; refuse rather than mix two lakehouses (see the module docstring).
        if self.host in LOOPBACK:
            listener = self.listener()
            if listener is None or not self.is_ours(listener):
                raise CatalogServerError(
                    f"The catalog server on {self.address} was not started for this data folder "
                    f"({self.state_dir.parent}): {self.address} is served by {self._describe_listener()}. "
                    "Point catalog.port (or ATHLETE_CATALOG__PORT) at this data folder's server, or start it with "
                    "`athlete-platform catalog up` on a free port."
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


def listening_pid(port: int) -> int | None:
    """The pid of the process with a listening TCP socket on `port` (IPv4 or IPv6), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 9 is the socket inode.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:  # gone, or another user's process
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    return int(proc.name)
            except OSError:  # this fd closed meanwhile (busy processes, e.g. this one): the others still count
                continue
    return None


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _option(args: list[str], name: str) -> str | None:
    """The value of `name value` or `name=value` (when `name` ends with '=') in a command line."""
    for index, arg in enumerate(args):
        if name.endswith("=") and arg.startswith(name):
            return arg[len(name) :]
        if arg == name and index + 1 < len(args):
            return args[index + 1]
    return None


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
