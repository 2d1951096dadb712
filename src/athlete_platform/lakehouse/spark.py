"""The one place that builds the SparkSession.

Delta extensions and catalog, the catalog backend from config, UTC everywhere, the running
interpreter for Python workers, local jar paths (no downloads), master from config or
`--master`. `spark_conf` is a pure function so the wiring is unit-tested without a JVM.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from athlete_platform.config import Settings
from athlete_platform.errors import SetupError
from athlete_platform.lakehouse.catalog_server import CatalogServer, jdbc_url
from athlete_platform.lakehouse.runtime import CATALOG_ALIAS_CLASS, Jars, java_executable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

UNITY_CATALOG_CLASS = "io.unitycatalog.spark.UCSingleCatalog"


def spark_conf(settings: Settings, master: str | None = None) -> dict[str, str]:
    """Every Spark setting the platform needs, for this config."""
    jars = Jars(settings.jars_path)
    log4j = settings.home / "conf" / "log4j2.properties"
    java_options = f"-Duser.timezone=UTC -Dlog4j.configurationFile=file:{log4j}"
    jar_paths = [str(p) for p in jars.delta()]
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
            conf[f"{prefix}.token"] = settings.catalog.unity_token
    jar_paths.extend(settings.catalog.extra_jars)
    conf["spark.jars"] = ",".join(jar_paths)
    conf.update(settings.spark.conf)
    return conf


def build_spark(settings: Settings, master: str | None = None) -> SparkSession:
    """Get or create the SparkSession for these settings (checks set-up first)."""
    java = java_executable()
    os.environ.setdefault("JAVA_HOME", str(_java_home(java)))
    conf = spark_conf(settings, master)
    if master is None and os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Started by spark-submit: its --master (or spark-defaults) decides, not our config.
        conf.pop("spark.master")
    if settings.catalog.backend == "embedded":
        CatalogServer.from_settings(settings).require_running()
    # Python workers must run this interpreter (the project's venv), also on a cluster.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.spark.log_level)
    return spark


def _java_home(java: str):
    from pathlib import Path

    return Path(java).resolve().parent.parent
