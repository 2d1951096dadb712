"""The SparkSession wiring, checked as data (no JVM)."""

import re
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from athlete_platform.config import load_settings
from athlete_platform.errors import ConfigError, SetupError
from athlete_platform.lakehouse import runtime
from athlete_platform.lakehouse.spark import (
    check_driver_memory,
    check_unity_connector,
    master_endpoints,
    memory_bytes,
    spark_conf,
)

HOME = Path(__file__).resolve().parents[2]


def _settings(**env):
    return load_settings(HOME / "conf" / "local.yaml", environ=env)


def test_embedded_backend_wires_delta_metastore_alias_and_utc():
    conf = spark_conf(_settings())
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    assert conf["spark.sql.catalog.uc_athlete_data"] == _alias_class_in_java_sources()
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert "-Duser.timezone=UTC" in conf["spark.executor.extraJavaOptions"]
    assert conf["spark.hadoop.javax.jdo.option.ConnectionURL"] == "jdbc:derby://127.0.0.1:15270/metastore;create=true"
    assert conf["spark.pyspark.python"] == sys.executable
    assert conf["spark.master"] == "local[*]"
    # Local jar paths only: nothing is resolved from a repository at run time.
    assert "spark.jars.packages" not in conf
    assert all(Path(jar).is_absolute() for jar in conf["spark.jars"].split(","))
    # conf/local.yaml's spark.conf reaches the session
    assert conf["spark.databricks.delta.snapshotPartitions"] == "4"


def test_java_options_follow_the_platform_options_in_every_jvm_it_starts():
    """`spark.java_options` is added after UTC and log4j (never instead of them) for the
    session's driver and executors and for a spark-submitted driver; empty adds nothing."""
    from athlete_platform.lakehouse.submit import driver_java_options, spark_submit_command

    options = "-XX:TieredStopAtLevel=1 -Xss4m"
    conf = spark_conf(_settings(ATHLETE_SPARK__JAVA_OPTIONS=options))
    for key in ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"):
        assert conf[key].startswith("-Duser.timezone=UTC -Dlog4j.configurationFile=file:")
        assert conf[key].endswith(f"log4j2.properties {options}")
    plain = spark_conf(_settings(ATHLETE_SPARK__JAVA_OPTIONS=""))["spark.driver.extraJavaOptions"]
    assert plain == driver_java_options(HOME) and plain.endswith("log4j2.properties")
    command = spark_submit_command(HOME, "feature_pipeline", [], java_options=options)
    assert command[command.index("--driver-java-options") + 1] == driver_java_options(HOME, options)
    # conf/local.yaml's quick JIT, and no JIT option on the cluster's long-running executors
    assert (
        "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"
        in spark_conf(_settings())["spark.executor.extraJavaOptions"]
    )
    cluster = load_settings(HOME / "conf" / "cluster.yaml", environ={})
    assert "-XX:" not in spark_conf(cluster)["spark.executor.extraJavaOptions"]


def _alias_class_in_java_sources() -> str:
    """The class the catalog alias jar is built from (java/), by its package and class name."""
    (source,) = (HOME / "java").rglob("SessionCatalogAlias.java")
    package = re.search(r"^package ([\w.]+);", source.read_text(), re.MULTILINE).group(1)
    assert re.search(r"public class SessionCatalogAlias\b", source.read_text())
    return f"{package}.SessionCatalogAlias"


def test_alias_follows_the_configured_catalog_name_and_spark_conf_wins():
    conf = spark_conf(
        _settings(ATHLETE_CATALOG__NAME="uc_dev", ATHLETE_SPARK__CONF='{"spark.sql.shuffle.partitions": "3"}')
    )
    assert conf["spark.sql.catalog.uc_dev"] == _alias_class_in_java_sources()
    assert "spark.sql.catalog.uc_athlete_data" not in conf
    assert conf["spark.sql.shuffle.partitions"] == "3"


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


def test_pins_jars_and_installed_packages_agree():
    pins = {}
    for line in tomllib.loads((HOME / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        pins[requirement.name.lower()] = str(requirement.specifier).removeprefix("==")
    # The Delta jars on the classpath and the delta-spark Python package are one release.
    assert pins["delta-spark"] == runtime.DELTA_VERSION == metadata.version("delta-spark")
    # pyspark and pyspark-client install into the same folder: they must be equal.
    assert pins["pyspark"] == pins["pyspark-client"] == metadata.version("pyspark")
    assert metadata.version("pyspark-client") == pins["pyspark"]
    # The catalog server's Derby must be the one the installed pyspark bundles.
    assert (runtime.pyspark_jars_folder() / f"derby-{runtime.DERBY_VERSION}.jar").is_file()


@pytest.mark.parametrize(
    "master", ["local", "local[2]", "local[*]", "local[4,3]", "local-cluster[2,1,1024]", "spark://h:7077", "yarn"]
)
def test_valid_master_urls_pass(master):
    assert load_settings(HOME / "conf" / "local.yaml", environ={"ATHLETE_SPARK__MASTER": master}).spark.master == master
    assert spark_conf(_settings(), master=master)["spark.master"] == master


@pytest.mark.parametrize("master", ["nonsense", "local[abc]", "local[0]", "spark://h", "spark://h:77:1", ""])
def test_invalid_master_urls_name_their_source(master):
    with pytest.raises(ConfigError, match="ATHLETE_SPARK__MASTER"):
        _settings(ATHLETE_SPARK__MASTER=master)
    with pytest.raises(ConfigError, match="--master"):
        spark_conf(_settings(), master=master or " ")


def test_driver_memory_beyond_the_machine_is_a_config_error():
    assert memory_bytes("4g") == 4 * 2**30 and memory_bytes("512m") == 512 * 2**20 and memory_bytes("100") == 100
    check_driver_memory("4g", total=8 * 2**30)
    with pytest.raises(ConfigError, match="spark.driver_memory is 999t but this machine has 8.0 GiB"):
        check_driver_memory("999t", total=8 * 2**30)


def test_java_version_is_read_from_either_stream_format():
    assert runtime.java_major_version('openjdk version "17.0.15" 2025-04-15') == 17
    assert runtime.java_major_version('java version "1.8.0_202"') == 8
    assert runtime.java_major_version('Picked up JAVA_TOOL_OPTIONS: -Xss4m\nopenjdk version "21" 2023-09-19') == 21
    assert runtime.java_major_version("command not found") is None


def test_spark_master_endpoints_and_unity_connector_check(tmp_path):
    assert master_endpoints("spark://a:7077,b:7078") == [("a", 7077), ("b", 7078)]
    assert master_endpoints("local[*]") == []
    with pytest.raises(SetupError, match="Unity Catalog Spark connector"):
        check_unity_connector({"spark.jars": f"{tmp_path / 'missing.jar'}"})
    jar = tmp_path / "unitycatalog-spark.jar"
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr("io/unitycatalog/spark/UCSingleCatalog.class", b"\xca\xfe")
    check_unity_connector({"spark.jars": f"/x/delta.jar,{jar}"})
