"""`athlete-platform serve`: the deployment API on uvicorn.

Before uvicorn starts, everything a person can fix is checked and reported in one paragraph:
the port is free (naming `serving.port`), a model is in the registry (else "run
`athlete-platform train`"), the online store answers and has rows (else "run
`athlete-platform materialize`"). With one worker the models loaded by that check are served
as they are; with `serving.workers` > 1 uvicorn starts each worker from `app.app_factory` and
each loads its own copy (the check's copy is dropped).
"""

from __future__ import annotations

import errno
import logging
import os
import socket

from athlete_platform.config import CONF_FILE_ENV, Settings
from athlete_platform.errors import SetupError

log = logging.getLogger("athlete_platform.serving")


def check_port_free(host: str, port: int) -> None:
    """Bind the address once (as uvicorn will); a `SetupError` naming the port and its config key."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise SetupError(
                    f"Port {port} on {host} is in use, so the API cannot listen there. Stop what listens on it "
                    f"(e.g. an earlier `athlete-platform serve`), or pick another port with serving.port in the "
                    f"config or ATHLETE_SERVING__PORT."
                ) from None
            raise SetupError(
                f"Cannot listen on {host}:{port} ({exc.strerror}): check serving.host and serving.port "
                "(ATHLETE_SERVING__HOST, ATHLETE_SERVING__PORT)."
            ) from None


def serve(settings: Settings, conf_file: str | None = None) -> None:
    """Check, then run uvicorn in the foreground until interrupted."""
    import uvicorn

    from athlete_platform.serving.app import ServiceState, create_app

    cfg = settings.serving
    check_port_free(cfg.host, cfg.port)
    state = ServiceState.load(settings)  # start-up errors name what to run
    snapshot = state.watcher.snapshot
    served = "; ".join(
        f"{kind}: " + ", ".join(f"{alias} v{m.version}" for alias, m in by_alias.items())
        for kind, by_alias in snapshot.models.items()
    )
    print(
        f"serving on http://{cfg.host}:{cfg.port} ({cfg.workers} worker{'s' if cfg.workers > 1 else ''}); "
        f"models {served}; online store {settings.online_store.backend}; inference log {settings.inference_log_path}"
        + ("; API key required on /v1" if cfg.api_key else ""),
        flush=True,
    )
    common = {"host": cfg.host, "port": cfg.port, "log_level": "info", "access_log": False}
    if cfg.workers == 1:
        uvicorn.run(create_app(settings, state), **common)
        return
    state.store.close()
    if conf_file:  # the workers read their settings from the environment
        os.environ[CONF_FILE_ENV] = str(conf_file)
    uvicorn.run("athlete_platform.serving.app:app_factory", factory=True, workers=cfg.workers, **common)
