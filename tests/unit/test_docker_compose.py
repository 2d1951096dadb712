"""docker-compose.yml, Dockerfile and .dockerignore, checked without Docker.

The stack is not started here (no Docker engine on the machines that run the tests), so these
tests catch what would otherwise fail only at `docker compose up` or at a job's first run:
missing paths, clashing ports, unknown services, settings a container cannot load, and
addresses, credentials and secrets that must agree between services.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from athlete_platform.config import Settings, load_settings
from athlete_platform.errors import ConfigError

HOME = Path(__file__).resolve().parents[2]
COMPOSE_FILE = HOME / "docker-compose.yml"
DOCKERFILE = HOME / "Dockerfile"
DOCKERIGNORE = HOME / ".dockerignore"
IMAGE_HOME = PurePosixPath("/opt/athlete-platform")  # the Dockerfile's WORKDIR: the repo root in the image
PROJECT_IMAGE = "athlete-platform:latest"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# Python packages the image needs for each SQLAlchemy driver named in a URL.
DRIVER_PACKAGES = {"psycopg2": "psycopg2-binary", "asyncpg": "asyncpg"}

# --- reading the compose file -------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: Any, strict: bool = False) -> Any:
    """Compose's variable substitution as on a fresh clone (no .env, nothing exported):
    `${VAR:-default}` gives the default, `$$` a `$`, a variable without default is empty (as
    Compose does, with a warning) or, with `strict`, an error."""
    if isinstance(value, dict):
        return {key: interpolate(item, strict) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, strict) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("op") in (":-", "-"):
            return match.group("arg")
        name = match.group("name") or match.group("bare")
        if strict:
            raise ValueError(f"${{{name}}} has no default: `docker compose up` without a .env leaves it empty")
        return ""

    return _VARIABLE.sub(substitute, value)


RAW_COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
COMPOSE = interpolate(RAW_COMPOSE)
SERVICES: dict[str, dict] = COMPOSE["services"]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def argv(service: dict) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def option(args: list[str], name: str, default: str | None = None) -> str | None:
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else default


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


@dataclass(frozen=True)
class Mount:
    kind: str  # bind | volume | tmpfs
    source: str | None
    target: PurePosixPath


def mounts(service: dict) -> list[Mount]:
    found = []
    for spec in service.get("volumes") or []:
        if isinstance(spec, dict):
            found.append(Mount(spec.get("type", "volume"), spec.get("source"), PurePosixPath(spec["target"])))
            continue
        parts = spec.split(":")
        if len(parts) == 1:  # anonymous volume
            found.append(Mount("volume", None, PurePosixPath(parts[0])))
        else:
            kind = "bind" if parts[0].startswith((".", "/", "~")) else "volume"
            found.append(Mount(kind, parts[0], PurePosixPath(parts[1])))
    return found


_PORT = re.compile(
    r"(?:(?P<ip>\[[^\]]*\]|\d+\.\d+\.\d+\.\d+):)?(?:(?P<host>\d*(?:-\d+)?):)?"
    r"(?P<container>\d+(?:-\d+)?)(?:/(?P<protocol>tcp|udp|sctp))?"
)


def _port_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def published_ports(service: dict) -> list[tuple[str, int, str]]:
    """(host ip, host port, protocol) of each port published on the host."""
    found = []
    for spec in service.get("ports") or []:
        if isinstance(spec, dict):
            if spec.get("published") in (None, ""):
                continue
            ip, host, protocol = spec.get("host_ip", ""), str(spec["published"]), spec.get("protocol", "tcp")
        else:
            match = _PORT.fullmatch(str(spec))
            if not match:
                raise ValueError(f"cannot parse port {spec!r}")
            if not match.group("host"):  # container port only: Docker picks a free host port
                continue
            ip, host, protocol = match.group("ip") or "", match.group("host"), match.group("protocol") or "tcp"
        found += [(ip, port, protocol) for port in _port_range(host)]
    return found


def duplicate_ports(services: dict[str, dict]) -> dict[tuple[int, str], list[str]]:
    """Host ports (and protocol) published by more than one service, or twice by one."""
    owners: dict[tuple[int, str], list[str]] = {}
    for name, service in services.items():
        for _ip, port, protocol in published_ports(service):
            owners.setdefault((port, protocol), []).append(name)
    return {key: names for key, names in owners.items() if len(names) > 1}


def is_one_shot(service: dict) -> bool:
    return str(service.get("restart", "no")) == "no" and "healthcheck" not in service


def has_healthcheck(service: dict) -> bool:
    check = service.get("healthcheck") or {}
    return bool(check.get("test")) and not check.get("disable") and check.get("test") != ["NONE"]


def is_catalog_server(service: dict) -> bool:
    return argv(service)[-2:] == ["catalog", "serve"]


def is_mlflow_server(service: dict) -> bool:
    return argv(service)[:2] == ["mlflow", "server"]


def spark_role(service: dict) -> str | None:
    args = argv(service)
    return "master" if MASTER_CLASS in args else "worker" if WORKER_CLASS in args else None


def worker_master_url(service: dict) -> str:
    args = argv(service)
    return next(arg for arg in args[args.index(WORKER_CLASS) + 1 :] if not arg.startswith("-"))


# --- what the project's code in a container sees -----------------------------------------


def repo_path(image_path: str | PurePosixPath, service: dict | None = None) -> Path:
    """Where a path inside the project's image comes from in this repo: a bind mount over
    it, else the image's copy of the repo (IMAGE_HOME)."""
    path = PurePosixPath(image_path)
    for mount in mounts(service or {}):
        if mount.kind == "bind" and (path == mount.target or mount.target in path.parents):
            return (HOME / mount.source / path.relative_to(mount.target)).resolve()
    if not (path == IMAGE_HOME or IMAGE_HOME in path.parents):
        raise AssertionError(f"{path} is not under {IMAGE_HOME}, so it is not a file of the project's image")
    return HOME / path.relative_to(IMAGE_HOME)


def conf_file(service: dict) -> Path:
    """The settings file a service's code loads: $ATHLETE_CONF_FILE, else conf/local.yaml."""
    return repo_path(environment(service).get("ATHLETE_CONF_FILE") or IMAGE_HOME / "conf" / "local.yaml", service)


def settings_for(service: dict) -> Settings:
    """What `load_settings()` gives inside the container: its conf file + its environment."""
    return load_settings(conf_file(service), environ=environment(service))


@cache
def service_settings(name: str) -> Settings:
    return settings_for(SERVICES[name])


def data_path(settings: Settings) -> PurePosixPath:
    """data_dir as the container sees it (a relative one is under the image's project folder)."""
    data_dir = PurePosixPath(settings.data_dir.as_posix())
    return data_dir if data_dir.is_absolute() else IMAGE_HOME / data_dir


def volume_holding(service: dict, path: PurePosixPath) -> Mount | None:
    """The named volume whose mount holds `path` (the innermost one)."""
    holding = [m for m in mounts(service) if m.kind == "volume" and (path == m.target or m.target in path.parents)]
    return max(holding, key=lambda m: len(m.target.parts), default=None)


def spark_master_url(connection: dict) -> str:
    """The master URL the Spark provider's hook builds from a connection (host, port)."""
    host, port, conn_type = connection.get("host") or "", connection.get("port"), connection["conn_type"]
    master = host if conn_type == "spark" and host and ("://" in host or not port) else f"{conn_type}://{host}"
    return f"{master}:{port}" if port else master


def bytes_of(size: str, default_unit: str = "m") -> int:
    match = re.fullmatch(r"(\d+)([kmgt]?)b?", size.strip().lower())
    assert match, f"cannot parse size {size!r}"
    return int(match.group(1)) * 1024 ** "bkmgt".index(match.group(2) or default_unit)


SETTINGS_SERVICES = sorted(n for n, s in SERVICES.items() if any(k.startswith("ATHLETE_") for k in environment(s)))
CLIENT_SERVICES = [n for n in SETTINGS_SERVICES if not is_catalog_server(SERVICES[n])]
BUILT = sorted(n for n, s in SERVICES.items() if "build" in s)
WORKERS = sorted(n for n, s in SERVICES.items() if spark_role(s) == "worker")
LONG_RUNNING = sorted(n for n, s in SERVICES.items() if not is_one_shot(s) and not s.get("profiles"))
# Where Spark drivers, executors or the catalog run: they must share the lakehouse volume.
LAKEHOUSE_SERVICES = sorted(set(SETTINGS_SERVICES) | set(WORKERS))
AIRFLOW_SERVICES = sorted(n for n, s in SERVICES.items() if any(k.startswith("AIRFLOW__") for k in environment(s)))
CONNECTIONS = [(n, k) for n in sorted(SERVICES) for k in environment(SERVICES[n]) if k.startswith("AIRFLOW_CONN_")]


def _postgres_urls() -> list[tuple[str, str, str]]:
    found = []
    for name, service in sorted(SERVICES.items()):
        values = [(f"env {key}", value) for key, value in environment(service).items()]
        values += [("command", arg) for arg in argv(service)]
        found += [(name, where, value) for where, value in values if value.startswith("postgresql")]
    return found


POSTGRES_URLS = _postgres_urls()


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for parts in (line.strip().split(None, 1) for line in joined.splitlines() if line.strip())
    ]


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines() if DOCKERIGNORE.exists() else []
    return [line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#")]


def ignored_by_docker(relative: str) -> bool:
    parts = PurePosixPath(relative).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern.removeprefix("**/")) or fnmatch.fnmatch(prefix, pattern)
        for pattern in dockerignore_patterns()
        if not pattern.startswith("!")
        for prefix in prefixes
    )


# --- the stack --------------------------------------------------------------------------


def test_compose_declares_the_whole_stack():
    roles = {
        "spark master": [n for n, s in SERVICES.items() if spark_role(s) == "master"],
        "catalog server": [n for n, s in SERVICES.items() if is_catalog_server(s)],
        "mlflow server": [n for n, s in SERVICES.items() if is_mlflow_server(s)],
        "airflow api-server": [n for n, s in SERVICES.items() if argv(s)[:2] == ["airflow", "api-server"]],
        "airflow scheduler": [n for n, s in SERVICES.items() if argv(s)[:2] == ["airflow", "scheduler"]],
        "airflow dag-processor": [n for n, s in SERVICES.items() if argv(s)[:2] == ["airflow", "dag-processor"]],
        "airflow init": [n for n, s in SERVICES.items() if "airflow db migrate" in " ".join(argv(s))],
        "deployment api": [n for n, s in SERVICES.items() if argv(s)[:2] == ["athlete-platform", "serve"]],
    }
    assert {role: len(names) for role, names in roles.items()} == dict.fromkeys(roles, 1)
    assert len(WORKERS) >= 2, f"two Spark workers expected, found {WORKERS}"
    assert is_one_shot(SERVICES[roles["airflow init"][0]]), "airflow-init must run once (restart: 'no')"


def test_the_checks_below_have_services_to_check():
    # A parametrized test over an empty list is skipped, and a loop over one asserts nothing:
    # if the selections below stopped matching the compose file, the checks would pass unseen.
    catalogs = [n for n in SETTINGS_SERVICES if is_catalog_server(SERVICES[n])]
    assert catalogs and CLIENT_SERVICES and LONG_RUNNING and BUILT
    assert {"airflow-scheduler", "platform"} <= set(CLIENT_SERVICES)
    assert {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor"} <= set(AIRFLOW_SERVICES)
    assert {name for name, _variable in CONNECTIONS} == set(AIRFLOW_SERVICES)
    # Airflow's metadata database and MLflow's backend store are both PostgreSQL URLs.
    assert {"airflow-scheduler", "mlflow"} <= {name for name, _where, _url in POSTGRES_URLS}
    assert [n for n, s in SERVICES.items() if s.get("ports")], "no published ports to check"


def test_every_compose_variable_has_a_default():
    with pytest.raises(ValueError, match="no default"):
        interpolate({"key": "x${UNSET_VARIABLE}"}, strict=True)
    interpolate(RAW_COMPOSE, strict=True)  # raises for a variable that a fresh clone would not have


@pytest.mark.parametrize("name", BUILT)
def test_build_context_and_dockerfile_exist(name):
    build = SERVICES[name]["build"]
    build = {"context": build} if isinstance(build, str) else build
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    assert context.is_dir(), f"{name}: build context {context} does not exist"
    assert context == HOME or HOME in context.parents, f"{name}: build context {context} is outside the repo"
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if s.get("image") == PROJECT_IMAGE))
def test_project_image_is_built_not_pulled(name):
    # A service naming the project's image without `build` would try to pull it from a registry.
    assert "build" in SERVICES[name], f"{name} runs {PROJECT_IMAGE} but has no build section"
    assert SERVICES[name]["build"] == SERVICES[BUILT[0]]["build"], f"{name} builds {PROJECT_IMAGE} differently"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_mounts_exist(name):
    declared = set(COMPOSE.get("volumes") or {})
    for mount in mounts(SERVICES[name]):
        if mount.kind == "bind":
            source = (COMPOSE_FILE.parent / mount.source).resolve()
            assert source == HOME or HOME in source.parents, f"{name}: bind mount {mount.source} is outside the repo"
            assert source.exists(), f"{name}: bind-mounted {mount.source} does not exist in the repo"
        elif mount.kind == "volume":
            assert mount.source, f"{name}: anonymous volume at {mount.target}: name it so data survives"
            assert mount.source in declared, f"{name}: volume {mount.source} is not declared under `volumes:`"


def test_published_host_ports_are_unique():
    assert duplicate_ports(SERVICES) == {}


def test_port_check_finds_a_clash():
    services = {"a": {"ports": ["127.0.0.1:8080:8080"]}, "b": {"ports": [{"target": 80, "published": 8080}]}}
    assert duplicate_ports(services) == {(8080, "tcp"): ["a", "b"]}
    assert published_ports({"ports": ["7077", "127.0.0.1::80", "9000-9001:9000-9001/udp"]}) == [
        ("", 9000, "udp"),
        ("", 9001, "udp"),
    ]


def test_published_ports_leave_the_local_set_up_free():
    # The stack must run beside `make run` and `make test`, whose servers use the host's ports.
    local = set()
    for env_file in ("local.yaml", "test.yaml", "cluster.yaml"):
        settings = load_settings(HOME / "conf" / env_file, environ={})
        local.add(settings.catalog.port)
        local.add(settings.serving.port)  # `make serve`
        local |= {settings.query_servers.sql_port, settings.query_servers.connect_port}  # `make sql-server` ...
        if settings.spark.master.startswith("spark://"):
            local.add(urlsplit(settings.spark.master).port or 7077)
    published = {port for service in SERVICES.values() for _ip, port, _protocol in published_ports(service)}
    assert published & local == set()


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if s.get("ports")))
def test_published_ports_are_on_loopback_only(name):
    # MLflow, the Spark UIs and Airflow's SimpleAuthManager are not for the network.
    assert {ip for ip, _port, _protocol in published_ports(SERVICES[name])} <= {"127.0.0.1"}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_depends_on_names_defined_services(name):
    for dependency, condition in depends_on(SERVICES[name]).items():
        assert dependency in SERVICES, f"{name} depends on {dependency}, which is not a service"
        assert condition in DEPENDS_ON_CONDITIONS, f"{name}: unknown condition {condition!r}"
        target = SERVICES[dependency]
        if condition == "service_healthy":
            assert has_healthcheck(target), f"{name} waits for {dependency} to be healthy; it has no healthcheck"
        if condition == "service_completed_successfully":
            assert is_one_shot(target), f"{name} waits for {dependency} to finish; it restarts (restart: 'no')"
        assert not target.get("profiles") or SERVICES[name].get("profiles"), f"{dependency} is not started by `up`"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_have_healthchecks(name):
    assert has_healthcheck(SERVICES[name])


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_environment_values_are_strings(name):
    # Compose rejects booleans (an unquoted true) in `environment`.
    env = SERVICES[name].get("environment") or {}
    values = env.values() if isinstance(env, dict) else []
    assert not [value for value in values if isinstance(value, bool)]


# --- the project's settings in each container ---------------------------------------------


@pytest.mark.parametrize("name", SETTINGS_SERVICES)
def test_athlete_variables_are_accepted_by_load_settings(name):
    try:
        service_settings(name)
    except ConfigError as exc:
        pytest.fail(f"{name}: {exc}")


def test_unknown_athlete_variable_is_rejected():
    # A typo'd ATHLETE_ variable in a service would stop every job it submits (Airflow's Spark
    # hook passes its whole environment to spark-submit); the check must name it.
    service = {"environment": {"ATHLETE_CONF_FILE": str(IMAGE_HOME / "conf" / "docker.yaml")}}
    settings_for(service)
    service["environment"]["ATHLETE_SPARK_CONNID"] = "athlete_spark"
    with pytest.raises(ConfigError, match="ATHLETE_SPARK_CONNID"):
        settings_for(service)


@pytest.mark.parametrize("name", SETTINGS_SERVICES)
def test_conf_file_is_in_the_image(name):
    env = environment(SERVICES[name])
    assert "ATHLETE_CONF_FILE" in env, f"{name} does not say which conf file it uses"
    path = conf_file(SERVICES[name])
    assert path.is_file(), f"{name}: ATHLETE_CONF_FILE={env['ATHLETE_CONF_FILE']} maps to {path}, which is missing"
    assert not ignored_by_docker(path.relative_to(HOME).as_posix()), f"{path} is excluded by .dockerignore"


@pytest.mark.parametrize("name", CLIENT_SERVICES)
def test_clients_reach_the_catalog_server(name):
    settings = service_settings(name)
    assert settings.catalog.backend == "embedded"
    host = settings.catalog.host
    assert host in SERVICES and is_catalog_server(SERVICES[host]), f"{name}: catalog.host {host} is no catalog service"
    assert service_settings(host).catalog.port == settings.catalog.port
    assert service_settings(host).catalog.name == settings.catalog.name


@pytest.mark.parametrize("name", [n for n in SETTINGS_SERVICES if is_catalog_server(SERVICES[n])])
def test_catalog_server_listens_on_the_network_and_keeps_state_on_a_volume(name):
    settings = service_settings(name)
    assert settings.catalog.host == "0.0.0.0", "catalog.host is the bind address: 0.0.0.0 for other containers"
    state = data_path(settings) / "catalog"  # Settings.catalog_state_path
    assert volume_holding(SERVICES[name], state), f"{name}: {state} is not on a named volume"


@pytest.mark.parametrize("name", CLIENT_SERVICES)
def test_clients_reach_mlflow(name):
    uri = urlsplit(service_settings(name).tracking_uri)
    assert uri.scheme == "http" and uri.hostname in SERVICES, f"{name}: tracking URI {uri.geturl()} is no service"
    server = argv(SERVICES[uri.hostname])
    assert server[:2] == ["mlflow", "server"]
    assert option(server, "--host") == "0.0.0.0", "the MLflow server must listen beyond its container"
    assert int(option(server, "--port", "5000")) == (uri.port or 80)
    # MLflow answers 403 to Host headers outside --allowed-hosts (default: localhost, private IPs).
    allowed = (option(server, "--allowed-hosts") or "localhost,localhost:*").split(",")
    assert any(fnmatch.fnmatch(uri.netloc, pattern) for pattern in allowed), f"{uri.netloc} not in {allowed}"


@pytest.mark.parametrize("name", CLIENT_SERVICES)
def test_clients_reach_the_spark_master(name):
    master = urlsplit(service_settings(name).spark.master)
    assert master.scheme == "spark" and master.hostname in SERVICES, f"{name}: spark.master {master.geturl()}"
    server = SERVICES[master.hostname]
    assert spark_role(server) == "master"
    assert int(option(argv(server), "--port", "7077")) == (master.port or 7077)


@pytest.mark.parametrize("name", LAKEHOUSE_SERVICES)
def test_lakehouse_volume_is_shared_at_one_path(name):
    # Drivers (Airflow tasks, the CLI), executors (workers) and the catalog: Delta files and
    # table locations must be the same path everywhere, on the same volume.
    reference = data_path(service_settings("airflow-scheduler"))
    reference_mount = volume_holding(SERVICES["airflow-scheduler"], reference)
    assert reference_mount, f"airflow-scheduler: data_dir {reference} is not on a named volume"
    if name in SETTINGS_SERVICES:
        assert data_path(service_settings(name)) == reference
    assert volume_holding(SERVICES[name], reference) == reference_mount


@pytest.mark.parametrize("name", WORKERS)
def test_spark_workers_join_the_master_and_fit_the_executors(name):
    worker, driver = SERVICES[name], service_settings("airflow-scheduler")
    masters = [s for s in SERVICES.values() if spark_role(s) == "master"]
    assert worker_master_url(worker) == driver.spark.master
    assert worker.get("image") == masters[0].get("image") == PROJECT_IMAGE, "same Python and jars as the driver"
    assert argv(worker)[0] in ("spark-class", str(IMAGE_HOME / ".venv" / "bin" / "spark-class"))
    args = argv(worker)
    executor_memory = driver.spark.conf.get("spark.executor.memory", "1g")
    assert bytes_of(option(args, "--memory", "1g")) >= bytes_of(executor_memory), "no executor fits this worker"
    if "spark.executor.cores" in driver.spark.conf and option(args, "--cores"):
        assert int(option(args, "--cores")) >= int(driver.spark.conf["spark.executor.cores"])


# --- Airflow ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "variable"), CONNECTIONS)
def test_airflow_connections_are_spark_connections(name, variable):
    connection = json.loads(environment(SERVICES[name])[variable])
    assert connection["conn_type"] == "spark"
    master = spark_master_url(connection)
    assert master == service_settings(name).spark.master, "Airflow's jobs and the CLI must use one cluster"
    assert spark_role(SERVICES[urlsplit(master).hostname]) == "master"


def test_dags_use_the_spark_connection_given():
    connection_ids = {variable.removeprefix("AIRFLOW_CONN_").lower() for _name, variable in CONNECTIONS}
    for name in AIRFLOW_SERVICES:
        # orchestration.SPARK_CONN_ID: $ATHLETE_SPARK_CONN_ID, else athlete_spark
        assert environment(SERVICES[name]).get("ATHLETE_SPARK_CONN_ID", "athlete_spark") in connection_ids


@pytest.mark.parametrize(
    "key",
    [
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW_CONN_ATHLETE_SPARK",
    ],
)
def test_airflow_components_agree(key):
    values = {name: environment(SERVICES[name]).get(key) for name in AIRFLOW_SERVICES}
    assert len(set(values.values())) == 1 and None not in values.values(), values


def test_airflow_tasks_reach_the_execution_api():
    url = urlsplit(environment(SERVICES["airflow-scheduler"])["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert url.hostname in SERVICES and argv(SERVICES[url.hostname])[:2] == ["airflow", "api-server"]
    assert url.port == 8080 and url.path == "/execution/"


def test_airflow_dags_folder_holds_the_project_dags():
    for name in AIRFLOW_SERVICES:
        service, folder = SERVICES[name], environment(SERVICES[name])["AIRFLOW__CORE__DAGS_FOLDER"]
        # The same folder whether the bind mount is there (edit without rebuilding) or not (the image's copy).
        assert repo_path(folder, service) == repo_path(folder) == HOME / "dags", name
    assert sorted(p.name for p in (HOME / "dags").glob("athlete_*.py"))


@pytest.mark.parametrize(("name", "where", "url"), POSTGRES_URLS, ids=[f"{n}-{w}" for n, w, _ in POSTGRES_URLS])
def test_postgres_urls_match_their_database_service(name, where, url):
    parts = urlsplit(url)
    assert parts.hostname in SERVICES, f"{name} ({where}): {parts.hostname} is not a service"
    database = SERVICES[parts.hostname]
    assert str(database.get("image", "")).startswith("postgres:")
    env = environment(database)
    assert (parts.username, parts.password, parts.path.lstrip("/"), parts.port or 5432) == (
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env.get("POSTGRES_DB", env["POSTGRES_USER"]),
        5432,
    )
    assert depends_on(SERVICES[name]).get(parts.hostname) == "service_healthy", f"{name} must wait for the database"


def test_database_drivers_are_installed_in_the_image():
    needed = set()
    for _name, where, url in POSTGRES_URLS:
        scheme = urlsplit(url).scheme
        needed.add(scheme.partition("+")[2] or "psycopg2")  # SQLAlchemy's default PostgreSQL driver
        if where == "env AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
            needed.add("asyncpg")  # Airflow 3 also opens postgresql+asyncpg:// on the same database
    runs = " ".join(args for instruction, args in dockerfile_instructions() if instruction == "RUN")
    for driver in sorted(needed):
        package = DRIVER_PACKAGES[driver]
        assert re.search(rf"pip install .*\b{re.escape(package)}==[\w.]+", runs), f"pin {package} in the Dockerfile"


# --- the image ----------------------------------------------------------------------------


def test_dockerfile_copies_the_repo_and_runs_make_setup():
    instructions = dockerfile_instructions()
    workdirs = [args for instruction, args in instructions if instruction == "WORKDIR"]
    assert workdirs and PurePosixPath(workdirs[-1]) == IMAGE_HOME
    copies = [
        i for i, (instruction, args) in enumerate(instructions) if instruction == "COPY" and args.split()[0] == "."
    ]
    assert copies, "the Dockerfile must copy the repo (COPY . .)"
    setups = [i for i, (instruction, args) in enumerate(instructions) if instruction == "RUN" and "make setup" in args]
    assert setups, "the Dockerfile must install the project and its jars with `make setup`"
    assert max(setups) > min(copies), "`make setup` must run on the copied repo"
    env = " ".join(args for instruction, args in instructions if instruction == "ENV")
    assert f"{IMAGE_HOME}/.venv/bin" in env, "services call athlete-platform, airflow, mlflow from the venv by name"


@pytest.mark.parametrize("path", [".venv", ".jars", "data", ".test-data", "output", ".git"])
def test_dockerignore_keeps_local_state_out(path):
    assert ignored_by_docker(path)


@pytest.mark.parametrize(
    "path", ["src/athlete_platform/cli.py", "conf/docker.yaml", "jobs", "dags", "java", "Makefile", "pyproject.toml"]
)
def test_dockerignore_keeps_the_project_in(path):
    assert not ignored_by_docker(path)


def files_make_setup_runs() -> set[str]:
    """Repo files the recipes of `make setup`'s chain run (scripts under tools/, sources under java/)."""
    makefile = (HOME / "Makefile").read_text()
    return set(re.findall(r"\b((?:tools|java)/[\w./-]+\.(?:py|sh|java))\b", makefile))


def test_the_first_make_setup_in_the_image_has_every_file_it_runs():
    """The dependency layer copies only what `make setup` reads; a script it runs but the layer
    lacks fails the image build (as tools/relocate_venv.py once would have)."""
    instructions = dockerfile_instructions()
    first_setup = next(i for i, (op, args) in enumerate(instructions) if op == "RUN" and "make setup" in args)
    copied = [args.split()[:-1] for op, args in instructions[:first_setup] if op == "COPY"]
    sources = {PurePosixPath(src) for group in copied for src in group}
    needed = files_make_setup_runs()
    assert needed, "the Makefile's set-up recipes name no repo file: the pattern above is stale"
    for path in sorted(needed):
        if path.startswith(("tools/ensure_redis", "tools/ensure_chromium")):  # test/unit prerequisites, not setup's
            continue
        assert any(PurePosixPath(path) == s or s in PurePosixPath(path).parents for s in sources), path


def test_the_deployment_api_listens_where_it_is_published_and_checked():
    (name,) = [n for n, s in SERVICES.items() if argv(s)[:2] == ["athlete-platform", "serve"]]
    service = SERVICES[name]
    settings = service_settings(name)
    assert settings.serving.host == "0.0.0.0", "inside its container the API must listen beyond loopback"
    targets = {int(str(spec).rsplit(":", 1)[-1].split("/")[0]) for spec in service.get("ports") or []}
    assert targets == {settings.serving.port}, f"{name} publishes {targets}, listens on {settings.serving.port}"
    assert f":{settings.serving.port}/v2/health/ready" in " ".join(service["healthcheck"]["test"])
    assert volume_holding(service, data_path(settings)) is not None, "the online store and event table live on /data"
    assert settings.mlflow.tracking_uri and "mlflow" in depends_on(service), "models come from the registry service"
