"""The project's own redis-server for the online store (`athlete-platform online-store up|down|status`).

One server per data folder: bound to 127.0.0.1 on `online_store.port`, working folder
`<data_dir>/online/redis` (append-only file `appendonlydir/`, `redis.pid`, `redis.log`), with
`appendonly yes`, so every acknowledged write is in the AOF before the reply and survives a
restart (fsync once a second: a power cut can lose the last second, a killed process nothing).
RDB snapshots are off: the AOF is the only persistence.

Ownership, as for the catalog server: a server is ours when it answers on the port and reports,
through `INFO server` / `CONFIG GET dir`, this data folder's redis directory as its working
folder. `up` on a port held by anything else (another lakehouse's redis, a system redis,
something that is not redis) refuses and names that process; `status` names the pid that
really answers.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from athlete_platform.config import Settings
from athlete_platform.errors import PlatformError, SetupError
from athlete_platform.lakehouse.catalog_server import LOOPBACK, listening_pid

KILL_WAIT_S = 10.0  # how long a SIGKILLed server may take to go before `stop` says it could not

INSTALL_HINT = (
    "redis-server is not installed. Run `make redis` (installs Debian's redis-server package when run as "
    "root) or `sudo apt-get install -y redis-server`, then run the command again; or keep the embedded "
    "store (online_store.backend: sqlite), which needs no server."
)


class RedisServerError(PlatformError):
    """The project's redis-server could not be started, stopped or reached."""


@dataclass(frozen=True)
class ServerInfo:
    """What a redis-server says about itself."""

    pid: int
    dir: Path
    version: str
    appendonly: bool


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    state_dir: Path
    start_timeout_s: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisServer:
        cfg = settings.online_store
        return cls(cfg.host, cfg.port, settings.online_redis_path, cfg.start_timeout_s)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "redis.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "redis.log"

    def command(self) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SetupError(INSTALL_HINT)
        return [
            binary,
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.state_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--pidfile",
            str(self.pid_file),
            "--logfile",
            str(self.log_file),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]

    def info(self) -> ServerInfo | None:
        """What answers on the address, when it is a redis-server; None when nothing (redis) answers."""
        client = redis.Redis(
            host=self.host, port=self.port, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        try:
            server = client.info("server")
            persistence = client.info("persistence")
            folder = client.config_get("dir").get("dir", "")
        except (RedisError, OSError):
            return None
        finally:
            client.close()
        return ServerInfo(
            pid=int(server["process_id"]),
            dir=Path(folder),
            version=str(server.get("redis_version", "?")),
            appendonly=bool(int(persistence.get("aof_enabled", 0))),
        )

    def is_answering(self) -> bool:
        """Something (redis or not) accepts TCP connections on the address."""
        import socket

        try:
            with socket.create_connection((self.host, self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def is_ours(self, info: ServerInfo | None) -> bool:
        if info is None or info.dir.resolve() != self.state_dir.resolve():
            return False
        # On this machine the kernel also says who listens: it must be the pid redis reports.
        listener = listening_pid(self.port) if self.host in LOOPBACK else None
        return listener is None or listener == info.pid

    def pid(self) -> int | None:
        """The pid of this data folder's server when it answers on the address."""
        info = self.info()
        return info.pid if self.is_ours(info) else None

    def status(self) -> tuple[str, bool]:
        """(one line, running-and-ours)."""
        info = self.info()
        if self.is_ours(info):
            aof = "appendonly yes" if info.appendonly else "appendonly NO"
            line = f"running on {self.address} (pid {info.pid}, redis {info.version}, {aof}, data in {self.state_dir})"
            return line, True
        if info is not None or self.is_answering():
            return f"not running for this data folder; {self.address} is taken by {self._describe(info)}", False
        return f"not running (data in {self.state_dir})", False

    def start(self) -> str:
        """Start the server in the background unless it runs already; wait until it answers."""
        info = self.info()
        if self.is_ours(info):
            return f"already running on {self.address} (pid {info.pid})"
        if info is not None or self.is_answering():
            raise RedisServerError(self._port_taken(info))
        command = self.command()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:  # start-up errors (bad arguments) go to stderr
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RedisServerError(self._died(process.returncode))
            info = self.info()
            if info is not None:
                if info.pid != process.pid:  # someone else bound the port first
                    process.terminate()
                    raise RedisServerError(self._port_taken(info))
                return f"started on {self.address} (pid {process.pid}, data in {self.state_dir})"
            time.sleep(0.05)
        process.terminate()
        raise RedisServerError(
            f"redis-server did not answer on {self.address} within {self.start_timeout_s:.0f} s. See {self.log_file}; "
            "raise online_store.start_timeout_s if the machine is slow (a large append-only file takes time to load)."
        )

    def stop(self, timeout_s: float = 30.0) -> str:
        """Stop this data folder's server: SIGTERM, on which redis flushes the AOF and exits.
        A server too busy to answer within a second is found by its pid file instead."""
        pid = self.pid() or self._pid_from_file()
        if pid is None:
            return "not running"
        os.kill(pid, signal.SIGTERM)
        if not _gone_within(pid, timeout_s):
            os.kill(pid, signal.SIGKILL)  # the AOF is still whole up to the last acknowledged write
            # SIGKILL is delivered, not done: a loaded machine takes a while to tear the process
            # down, and "stopped" must mean the port and the files are free.
            if not _gone_within(pid, KILL_WAIT_S):
                raise PlatformError(
                    f"redis-server pid {pid} is still alive {KILL_WAIT_S:.0f} s after SIGKILL; "
                    f"see what holds it with: ps -o stat,wchan -p {pid}"
                )
        return f"stopped (pid {pid})"

    def _pid_from_file(self) -> int | None:
        """The pid in this folder's pid file, when that process lives and is a redis-server
        serving this address (redis-server names its process `redis-server <host>:<port>`)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        title = " ".join(_cmdline(pid))
        return pid if _alive(pid) and "redis-server" in title and self.address in title else None

    def _describe(self, info: ServerInfo | None) -> str:
        listener = listening_pid(self.port) if self.host in LOOPBACK else None
        if info is not None:
            return f"pid {info.pid}, a redis-server {info.version} working in {info.dir} (not this data folder's)"
        if listener is None:
            return "a process this user cannot see"
        return f"pid {listener} ({' '.join(_cmdline(listener))[:120]}), which is not a redis-server"

    def _port_taken(self, info: ServerInfo | None) -> str:
        return (
            f"Cannot start the online store's redis-server: {self.address} is already in use by "
            f"{self._describe(info)}. Stop that process, or choose a free port with online_store.port in the "
            "config file or ATHLETE_ONLINE_STORE__PORT."
        )

    def _died(self, returncode: int) -> str:
        tail = _tail(self.log_file)
        if "Address already in use" in tail:
            return self._port_taken(self.info())
        return f"redis-server exited at start-up (code {returncode}). Last lines of {self.log_file}:\n{tail}"


def _gone_within(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
