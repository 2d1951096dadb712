"""The lakehouse's query servers: Spark's Thrift JDBC/ODBC server and the Spark Connect server.

Each is one long-lived Spark driver started by `spark-submit` with exactly the session
settings the jobs use (`lakehouse.spark.spark_conf`: Delta, the catalog server, the
`uc_athlete_data` alias), so a SQL client or a notebook sees the same three-level names:

- `sql`:     HiveServer2 protocol (JDBC `jdbc:hive2://127.0.0.1:<port>/`, ODBC, beeline, PyHive);
- `connect`: Spark Connect (gRPC), for `SparkSession.builder.remote("sc://127.0.0.1:<port>")`.

Both listen on 127.0.0.1 only and have no authentication (the HiveServer2 `NONE` mode): they
are for the machine they run on. A site that exposes them puts them behind its own gateway.
State (pid file, log) lives under `<data_dir>/query-servers/`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from athlete_platform.errors import SetupError
from athlete_platform.lakehouse.catalog_server import CatalogServer
from athlete_platform.lakehouse.runtime import java_executable
from athlete_platform.lakehouse.spark import spark_conf

if TYPE_CHECKING:
    from athlete_platform.config import Settings

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
# The primary resource Spark's own start scripts give a server class that lives in Spark's jars.
SPARK_INTERNAL = "spark-internal"


@dataclass(frozen=True)
class ServerKind:
    name: str  # `sql` or `connect`
    title: str
    main_class: str
    port_conf: dict[str, str]  # Spark conf keys of the port and the bind address

    def url(self, host: str, port: int) -> str:
        return f"jdbc:hive2://{host}:{port}/" if self.name == "sql" else f"sc://{host}:{port}"


SQL = ServerKind(
    "sql",
    "Thrift JDBC/ODBC server",
    THRIFT_SERVER_CLASS,
    {"port": "spark.hive.server2.thrift.port", "host": "spark.hive.server2.thrift.bind.host"},
)
CONNECT = ServerKind(
    "connect",
    "Spark Connect server",
    CONNECT_SERVER_CLASS,
    {"port": "spark.connect.grpc.binding.port", "host": "spark.connect.grpc.binding.address"},
)
KINDS = {kind.name: kind for kind in (SQL, CONNECT)}


def listening(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class QueryServer:
    """One query server of one lakehouse: `up`, `down`, `status`."""

    kind: ServerKind
    settings: Settings
    host: str
    port: int
    start_timeout_s: float = 240.0

    @classmethod
    def from_settings(cls, settings: Settings, kind: str) -> QueryServer:
        section = settings.query_servers
        port = section.sql_port if kind == "sql" else section.connect_port
        return cls(KINDS[kind], settings, section.host, port, section.start_timeout_s)

    @property
    def folder(self) -> Path:
        return self.settings.data_path / "query-servers"

    @property
    def pid_file(self) -> Path:
        return self.folder / f"{self.kind.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / f"{self.kind.name}.log"

    @property
    def url(self) -> str:
        return self.kind.url(self.host, self.port)

    @property
    def secrets_file(self) -> Path:
        return self.folder / f"{self.kind.name}-secrets.conf"

    def command(self) -> list[str]:
        """argv of `spark-submit` for this server (pure: no process started). Secret settings
        (a Unity token) are not in it, where `ps` would show them: see `secret_conf`."""
        import pyspark

        conf = spark_conf(self.settings)
        for key in secret_conf(conf):
            conf.pop(key)
        conf["spark.app.name"] = f"athlete-platform {self.kind.name}-server"
        conf[self.kind.port_conf["port"]] = str(self.port)
        conf[self.kind.port_conf["host"]] = self.host
        # The driver JVM is started by spark-submit: its classpath and heap go on the command line.
        # Delta and the catalog alias go on the JVM's own classpath too: the Thrift server opens
        # its sessions in threads whose class loader does not see `spark.jars`.
        class_path = [conf.pop("spark.driver.extraClassPath", None), *conf["spark.jars"].split(",")]
        memory = conf.pop("spark.driver.memory")
        java_options = conf.pop("spark.driver.extraJavaOptions")
        command = [str(Path(pyspark.__file__).parent / "bin" / "spark-submit"), "--class", self.kind.main_class]
        command += ["--driver-memory", memory, "--driver-java-options", java_options]
        command += ["--driver-class-path", ":".join(filter(None, class_path))]
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        if secret_conf(spark_conf(self.settings)):
            command += ["--properties-file", str(self.secrets_file)]
        return [*command, SPARK_INTERNAL]

    def _write_secrets(self) -> None:
        """The secret settings in a file only this user reads (spark-submit's --properties-file)."""
        secrets = secret_conf(spark_conf(self.settings))
        if not secrets:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.writelines(f"{key} {value}\n" for key, value in secrets.items())

    def running_pid(self) -> int | None:
        """The pid in the pid file when that process is alive and is this server, else None.

        A pid file outlives a crash, and its pid may since belong to another process: on Linux
        its command line must name this server's class (else the file is stale and removed)."""
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.parent.is_dir():
            try:
                ours = self.kind.main_class.encode() in cmdline.read_bytes()
            except OSError:
                ours = False
            if not ours:
                self.pid_file.unlink(missing_ok=True)
                return None
        return pid

    def status(self) -> str:
        pid = self.running_pid()
        if pid and listening(self.host, self.port):
            return f"up: {self.url} (pid {pid})"
        if pid:
            return f"starting (pid {pid}, not yet listening on {self.host}:{self.port}; log {self.log_file})"
        if listening(self.host, self.port):
            return f"down, but another process listens on {self.host}:{self.port}"
        return "down"

    def is_up(self) -> bool:
        return self.running_pid() is not None and listening(self.host, self.port)

    def _env(self) -> dict[str, str]:
        java = Path(java_executable()).resolve()
        return {**os.environ, "JAVA_HOME": str(java.parent.parent), "PYSPARK_PYTHON": sys.executable}

    def serve(self) -> None:
        """Run the server in the foreground, replacing this process (a container's command)."""
        if self.settings.catalog.backend == "embedded":
            CatalogServer.from_settings(self.settings).require_running()
        self._write_secrets()
        command = self.command()
        os.execve(command[0], command, self._env())

    def up(self) -> str:
        """Start the server unless it runs; wait until it accepts connections."""
        if self.is_up():
            return f"already up: {self.url} (pid {self.running_pid()})"
        if listening(self.host, self.port):
            raise SetupError(
                f"{self.host}:{self.port} is taken by another process: set query_servers."
                f"{'sql_port' if self.kind is SQL else 'connect_port'} (or stop that process)."
            )
        if self.settings.catalog.backend == "embedded":
            CatalogServer.from_settings(self.settings).require_running()
        env = self._env()
        self._write_secrets()
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise SetupError(
                    f"The {self.kind.title} exited at start-up (code {process.returncode}); the end of its log:\n"
                    f"{_tail(self.log_file)}"
                )
            if listening(self.host, self.port):
                return f"started: {self.url} (pid {process.pid}, log {self.log_file})"
            time.sleep(0.5)
        self.down()
        raise SetupError(
            f"The {self.kind.title} did not listen on {self.host}:{self.port} within {self.start_timeout_s:.0f} s "
            f"(query_servers.start_timeout_s); stopped it. The end of its log:\n{_tail(self.log_file)}"
        )

    def down(self, timeout_s: float = 30.0) -> str:
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return "not running"
        with _suppress_gone():
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            with _suppress_gone():
                os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return f"stopped (pid {pid})"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # a child of this process that exited stays a zombie until reaped
    with _suppress_gone():
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _suppress_gone() -> contextlib.suppress:
    """A process that is gone already (or not ours to wait for) is what stopping wanted."""
    return contextlib.suppress(ProcessLookupError, ChildProcessError, PermissionError)


def secret_conf(conf: dict[str, str]) -> dict[str, str]:
    """The settings that must not appear on a command line (tokens)."""
    return {key: value for key, value in conf.items() if key.endswith(".token")}


def _tail(path: Path, size_bytes: int = 3000) -> str:
    """The end of a log that may have grown long over many starts."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(handle.seek(0, os.SEEK_END) - size_bytes, 0))
            return handle.read().decode(errors="replace")
    except OSError:
        return "(no log)"
