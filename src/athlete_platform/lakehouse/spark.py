"""The one place that builds the SparkSession.

Delta extensions and catalog, the catalog backend from config, UTC everywhere, the running
interpreter for Python workers, local jar paths (no downloads), master from config or
`--master`. `spark_conf` is a pure function so the wiring is unit-tested without a JVM.

Before the JVM starts, `build_spark` checks what would otherwise surface as a JVM trace or a
hang: the master URL's form, a driver heap larger than this machine's memory, a `spark://`
master that does not accept TCP connections (a few seconds, naming the URL, instead of Spark's
~60 s of retries), the Unity connector jar for the `unity` backend; a JVM that still exits at
start-up becomes one paragraph too.
"""

from __future__ import annotations

import os
import socket
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from athlete_platform.config import Settings, master_problem
from athlete_platform.errors import ConfigError, SetupError
from athlete_platform.lakehouse.catalog_server import CatalogServer, jdbc_url
from athlete_platform.lakehouse.runtime import CATALOG_ALIAS_CLASS, Jars, java_executable
from athlete_platform.lakehouse.submit import driver_java_options

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

UNITY_CATALOG_CLASS = "io.unitycatalog.spark.UCSingleCatalog"
MASTER_CONNECT_TIMEOUT_S = 3.0


def spark_conf(settings: Settings, master: str | None = None) -> dict[str, str]:
    """Every Spark setting the platform needs, for this config."""
    jars = Jars(settings.jars_path)
    java_options = driver_java_options(settings.home, settings.spark.java_options)
    jar_paths = [str(p) for p in jars.delta()]
    if master is not None and (problem := master_problem(master)):
        raise ConfigError(f"--master {problem}. Fix the argument or leave it out to use spark.master.")
    conf = {
        "spark.master": master or settings.spark.master,
        "spark.app.name": settings.spark.app_name,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": str(settings.warehouse_path),
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        "spark.driver.memory": settings.spark.driver_memory,
        "spark.driver.extraJavaOptions": java_options,
        "spark.executor.extraJavaOptions": java_options,
        "spark.ui.enabled": str(settings.spark.ui_enabled).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.executorEnv.PYSPARK_PYTHON": sys.executable,
    }
    backend = settings.catalog.backend
    if backend == "embedded":
        derby_client = str(jars.derby_client())
        jar_paths.append(str(jars.catalog_alias()))
        conf.update(
            {
                "spark.sql.catalogImplementation": "hive",
                "spark.hadoop.javax.jdo.option.ConnectionURL": jdbc_url(settings.catalog),
                "spark.hadoop.javax.jdo.option.ConnectionDriverName": "org.apache.derby.jdbc.ClientDriver",
                "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
                "spark.hadoop.hive.metastore.schema.verification": "false",
                # The metastore client loads the JDBC driver from the JVM's own classpath.
                "spark.driver.extraClassPath": derby_client,
                f"spark.sql.catalog.{settings.catalog.name}": CATALOG_ALIAS_CLASS,
            }
        )
    elif backend == "unity":
        if not settings.catalog.unity_uri:
            raise SetupError("catalog.backend is 'unity' but catalog.unity_uri is not set: set it to the server URL.")
        prefix = f"spark.sql.catalog.{settings.catalog.name}"
        conf.update({prefix: UNITY_CATALOG_CLASS, f"{prefix}.uri": settings.catalog.unity_uri})
        if settings.catalog.unity_token:
            conf[f"{prefix}.token"] = settings.catalog.unity_token.get_secret_value()
    jar_paths.extend(settings.catalog.extra_jars)
    conf["spark.jars"] = ",".join(jar_paths)
    conf.update(settings.spark.conf)
    return conf


def build_spark(settings: Settings, master: str | None = None) -> SparkSession:
    """Get or create the SparkSession for these settings (checks set-up first)."""
    java = java_executable()
    os.environ.setdefault("JAVA_HOME", str(_java_home(java)))
    conf = spark_conf(settings, master)
    under_spark_submit = bool(os.environ.get("PYSPARK_GATEWAY_PORT"))
    if master is None and under_spark_submit:
        # Started by spark-submit: its --master (or spark-defaults) decides, not our config.
        conf.pop("spark.master")
    if not under_spark_submit:  # spark-submit has started the JVM already: its heap is decided
        check_driver_memory(settings.spark.driver_memory, _driver_memory_source())
    if "spark.master" in conf:
        check_master_reachable(conf["spark.master"])
    if settings.catalog.backend == "embedded":
        CatalogServer.from_settings(settings).require_running()
    elif settings.catalog.backend == "unity":
        check_unity_connector(conf)
    # Python workers must run this interpreter (the project's venv), also on a cluster.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:
        if "JAVA_GATEWAY_EXITED" not in str(exc):
            raise
        raise SetupError(
            f"Spark's JVM ({java}) exited at start-up; its own message is just above. Check "
            f"spark.driver_memory ({settings.spark.driver_memory}), spark.conf and JAVA_HOME, then run the "
            "command again."
        ) from None
    spark.sparkContext.setLogLevel(settings.spark.log_level)
    return spark


def _driver_memory_source() -> str:
    return "ATHLETE_SPARK__DRIVER_MEMORY" if os.environ.get("ATHLETE_SPARK__DRIVER_MEMORY") else "spark.driver_memory"


_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def memory_bytes(text: str) -> int:
    """JVM memory notation (`4g`, `512m`, `1t`, bare bytes) in bytes."""
    text = text.strip().lower()
    unit = text[-1] if text[-1:] in _UNITS and not text[-1:].isdigit() else ""
    return int(text[: len(text) - len(unit)]) * _UNITS[unit]


def physical_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_driver_memory(driver_memory: str, source: str = "spark.driver_memory", total: int | None = None) -> None:
    """A driver heap larger than this machine's memory cannot start: say so before the JVM tries."""
    total = physical_memory_bytes() if total is None else total
    if total and memory_bytes(driver_memory) > total:
        raise ConfigError(
            f"{source} is {driver_memory} but this machine has {total / 2**30:.1f} GiB of memory, so Spark's "
            f"driver JVM cannot start. Set {source} to at most that (e.g. 4g; conf/local.yaml has the default)."
        )


def master_endpoints(master: str) -> list[tuple[str, int]]:
    """(host, port) of each master in a `spark://h1:p1,h2:p2` URL; [] for other masters."""
    if not master.startswith("spark://"):
        return []
    endpoints = []
    for part in master.removeprefix("spark://").split(","):
        host, _, port = part.rpartition(":")
        endpoints.append((host, int(port)))
    return endpoints


def check_master_reachable(master: str, timeout_s: float = MASTER_CONNECT_TIMEOUT_S) -> None:
    """Fail fast when no master of a `spark://` URL accepts TCP connections."""
    endpoints = master_endpoints(master)
    for host, port in endpoints:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return
        except OSError:
            continue
    if endpoints:
        raise SetupError(
            f"The Spark master {master} does not answer (no TCP connection within {timeout_s:.0f} s). Start it "
            "(`athlete-platform cluster up` for the local standalone cluster), fix spark.master / --master, "
            "or use local[*]."
        )


def check_unity_connector(conf: dict[str, str]) -> None:
    """The unity backend needs the Unity Catalog Spark connector on the classpath: find its class."""
    entry = UNITY_CATALOG_CLASS.replace(".", "/") + ".class"
    if "unitycatalog" in conf.get("spark.jars.packages", ""):
        return  # resolved by Spark from a repository (the site's choice)
    for jar in filter(None, conf.get("spark.jars", "").split(",")):
        path = Path(jar.removeprefix("file:"))
        try:
            with zipfile.ZipFile(path) as archive:
                if entry in archive.namelist():
                    return
        except (OSError, zipfile.BadZipFile):
            continue
    raise SetupError(
        f"catalog.backend is 'unity' but no jar in spark.jars holds the Unity Catalog Spark connector "
        f"({UNITY_CATALOG_CLASS}). Add the path of unitycatalog-spark_2.13-<version>.jar (and its dependencies) "
        "to catalog.extra_jars (or ATHLETE_CATALOG__EXTRA_JARS='[/path/a.jar]'), or use catalog.backend: embedded."
    )


def _java_home(java: str):
    return Path(java).resolve().parent.parent
