"""The SparkSession wiring, checked as data (no JVM)."""

import re
import sys
from pathlib import Path

import pytest

from athlete_platform.config import load_settings
from athlete_platform.errors import SetupError
from athlete_platform.lakehouse import runtime
from athlete_platform.lakehouse.spark import spark_conf

HOME = Path(__file__).resolve().parents[2]


def _settings(**env):
    return load_settings(HOME / "conf" / "local.yaml", environ=env)


def test_embedded_backend_wires_delta_metastore_alias_and_utc():
    conf = spark_conf(_settings())
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    assert conf["spark.sql.catalog.uc_athlete_data"] == runtime.CATALOG_ALIAS_CLASS
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert "-Duser.timezone=UTC" in conf["spark.executor.extraJavaOptions"]
    assert conf["spark.hadoop.javax.jdo.option.ConnectionURL"] == "jdbc:derby://127.0.0.1:15270/metastore;create=true"
    assert conf["spark.pyspark.python"] == sys.executable
    assert conf["spark.master"] == "local[*]"
    # Local jar paths only: nothing is resolved from a repository at run time.
    assert "spark.jars.packages" not in conf
    assert all(Path(jar).is_absolute() for jar in conf["spark.jars"].split(","))


def test_master_argument_overrides_config():
    assert spark_conf(_settings(), master="spark://127.0.0.1:7077")["spark.master"] == "spark://127.0.0.1:7077"


def test_session_backend_has_no_alias_and_no_metastore_server():
    conf = spark_conf(_settings(ATHLETE_CATALOG__BACKEND="session"))
    assert "spark.sql.catalog.uc_athlete_data" not in conf
    assert "spark.hadoop.javax.jdo.option.ConnectionURL" not in conf


def test_unity_backend_needs_a_uri():
    with pytest.raises(SetupError, match="unity_uri"):
        spark_conf(_settings(ATHLETE_CATALOG__BACKEND="unity"))
    conf = spark_conf(
        _settings(
            ATHLETE_CATALOG__BACKEND="unity",
            ATHLETE_CATALOG__UNITY_URI="http://127.0.0.1:8080",
            ATHLETE_CATALOG__EXTRA_JARS="[/opt/uc/unitycatalog-spark.jar]",
        )
    )
    assert conf["spark.sql.catalog.uc_athlete_data"] == "io.unitycatalog.spark.UCSingleCatalog"
    assert conf["spark.sql.catalog.uc_athlete_data.uri"] == "http://127.0.0.1:8080"
    assert conf["spark.jars"].endswith("/opt/uc/unitycatalog-spark.jar")


def test_missing_jar_says_to_run_setup(tmp_path):
    with pytest.raises(SetupError, match=r"delta-spark_2\.13-.*is missing.*make setup"):
        runtime.Jars(tmp_path / ".jars").delta()


def test_jar_versions_match_the_pom():
    pom = (HOME / "conf" / "jars.pom.xml").read_text()
    assert re.search(r"<delta.version>(.+?)</delta.version>", pom).group(1) == runtime.DELTA_VERSION
    assert re.search(r"<derby.version>(.+?)</derby.version>", pom).group(1) == runtime.DERBY_VERSION


def test_pinned_delta_matches_pinned_pyspark_line():
    pyproject = (HOME / "pyproject.toml").read_text()
    assert f'"delta-spark=={runtime.DELTA_VERSION}"' in pyproject
    spark = re.search(r'"pyspark==(\d+\.\d+\.\d+)"', pyproject).group(1)
    assert f'"pyspark-client=={spark}"' in pyproject
    import pyspark

    assert pyspark.__version__ == spark
