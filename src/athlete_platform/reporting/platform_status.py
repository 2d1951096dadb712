"""`athlete-platform status`: the whole platform on one screen, without starting Spark.

Per table: Delta version, last write, rows and freshness (from the Delta log: `lakehouse.table_status`).
Per registered model: its versions and where each alias points (MLflow). Per service: whether
it answers (catalog server, online store, deployment API, SQL and Spark Connect servers). Per
DAG, when `AIRFLOW_HOME` names an Airflow home with a SQLite metadata database: its last run.
Every part reports its own failure as a line and the rest still prints.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import sqlite3
import urllib.request
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from athlete_platform.lakehouse import tables as t
from athlete_platform.lakehouse.table_status import TableStatus, all_table_status

if TYPE_CHECKING:
    from athlete_platform.config import Settings


@dataclass(frozen=True)
class ModelStatus:
    name: str
    versions: int
    latest_version: str | None
    aliases: dict[str, str]  # alias -> version
    problem: str | None = None


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    up: bool
    detail: str


@dataclass(frozen=True)
class DagRunStatus:
    dag_id: str
    run_id: str
    state: str
    logical_date: str | None
    end_date: str | None


def model_status(settings: Settings) -> list[ModelStatus]:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from athlete_platform.lakehouse.models import configure_mlflow

    names = t.TableNames.from_settings(settings.catalog)
    out = []
    try:
        configure_mlflow(settings)
    except Exception as exc:  # the tracking store is a service like the others: report, go on
        return [ModelStatus(names(m), 0, None, {}, f"MLflow: {exc}") for m in t.registered_models().values()]
    client = MlflowClient()
    for model in t.registered_models().values():
        name = names(model)
        try:
            registered = client.get_registered_model(name)
            versions = client.search_model_versions(f"name = '{name}'")
        except MlflowException:
            out.append(ModelStatus(name, 0, None, {}))
            continue
        latest = max((int(v.version) for v in versions), default=None)
        aliases = {alias: str(version) for alias, version in sorted(registered.aliases.items())}
        out.append(ModelStatus(name, len(versions), None if latest is None else str(latest), aliases))
    return out


def _http_ok(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except (OSError, http.client.HTTPException):
        return False


def service_status(settings: Settings) -> list[ServiceStatus]:
    from athlete_platform.lakehouse.catalog_server import CatalogServer
    from athlete_platform.lakehouse.sql_servers import QueryServer

    out = []
    if settings.catalog.backend == "embedded":
        server = CatalogServer.from_settings(settings)
        out.append(ServiceStatus("catalog server", server.serves_this_folder(), server.status()))
    else:
        out.append(ServiceStatus("catalog", True, f"backend {settings.catalog.backend} (not managed here)"))
    if settings.online_store.backend == "redis":
        from athlete_platform.online.redis_server import RedisServer

        line, ours = RedisServer.from_settings(settings).status()
        out.append(ServiceStatus("online store (redis)", ours, line))
    else:
        path = settings.online_store_path
        detail = str(path) if path.exists() else f"no file at {path}"
        out.append(ServiceStatus("online store (sqlite)", path.exists(), detail))
    api = f"http://{settings.serving.host}:{settings.serving.port}"
    live = _http_ok(f"{api}/v2/health/live")
    ready = live and _http_ok(f"{api}/v2/health/ready")
    detail = f"{api} ({'ready' if ready else 'live, not ready'})" if live else f"not answering at {api}"
    out.append(ServiceStatus("deployment API", live, detail))
    for kind in ("sql", "connect"):
        server = QueryServer.from_settings(settings, kind)
        out.append(ServiceStatus(server.kind.title, server.is_up(), server.status()))
    return out


def airflow_status(airflow_home: str | None = None) -> tuple[str, list[DagRunStatus]]:
    """The last run of each DAG in the Airflow home's SQLite metadata DB (read only)."""
    home = airflow_home or os.environ.get("AIRFLOW_HOME")
    if not home:
        return "no Airflow home configured (set AIRFLOW_HOME)", []
    database = Path(home) / "airflow.db"
    if not database.is_file():
        return f"no SQLite metadata database at {database} (another database: see `airflow dags list-runs`)", []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
            rows = db.execute(
                "SELECT dag_id, run_id, state, logical_date, end_date FROM dag_run d "
                "WHERE id = (SELECT id FROM dag_run e WHERE e.dag_id = d.dag_id ORDER BY e.id DESC LIMIT 1) "
                "ORDER BY dag_id"
            ).fetchall()
    except sqlite3.Error as exc:
        return f"{database}: {exc}", []
    return str(database), [DagRunStatus(*row) for row in rows]


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = (now - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def table_lines(statuses: list[TableStatus], today: date, now: datetime) -> list[str]:
    header = f"{'table':<62} {'version':>7} {'rows':>9}  {'last write':<14} {'latest date':<24} behind"
    lines = [header]
    for s in statuses:
        if s.version is None:
            lines.append(f"{s.name:<62} {'-':>7} {'-':>9}  {s.problem or 'not written yet'}")
            continue
        latest = f"{s.latest_date} ({s.date_column})" if s.latest_date else f"- ({s.date_column})"
        behind = s.days_behind(today)
        lines.append(
            f"{s.name:<62} {s.version:>7} {s.rows:>9}  {_age(s.last_write, now):<14} {latest:<24} "
            f"{'-' if behind is None else f'{behind} d'}"
        )
    return lines


def status_lines(settings: Settings, now: datetime | None = None) -> list[str]:
    now = now or datetime.now(UTC)
    lines = ["Tables (from each Delta log; 'behind' = today minus the latest date):"]
    lines += [f"  {line}" for line in table_lines(all_table_status(settings), now.date(), now)]
    lines += ["", "Models (MLflow registry):"]
    for m in model_status(settings):
        if m.problem:
            lines.append(f"  {m.name}: {m.problem}")
        elif not m.versions:
            lines.append(f"  {m.name}: not registered yet")
        else:
            aliases = ", ".join(f"@{a} -> v{v}" for a, v in m.aliases.items()) or "no aliases"
            lines.append(f"  {m.name}: {m.versions} versions, latest v{m.latest_version}; {aliases}")
    lines += ["", "Services:"]
    for s in service_status(settings):
        lines.append(f"  [{'up' if s.up else 'down':>4}] {s.name}: {s.detail}")
    where, runs = airflow_status()
    lines += ["", f"Airflow ({where}):"]
    lines += [
        f"  {r.dag_id}: {r.state} ({r.run_id}, logical date {r.logical_date or '-'}, ended {r.end_date or '-'})"
        for r in runs
    ] or ["  (no DAG runs)"]
    return lines
