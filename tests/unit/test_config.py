from pathlib import Path

import pytest

from athlete_platform.config import load_settings
from athlete_platform.errors import ConfigError

HOME = Path(__file__).resolve().parents[2]


SHIPPED = sorted(p.name for p in (HOME / "conf").glob("*.yaml"))


def test_the_shipped_configs_are_found():
    assert {"local.yaml", "test.yaml", "cluster.yaml", "docker.yaml"} <= set(SHIPPED)


@pytest.mark.parametrize("env_file", SHIPPED)
def test_every_shipped_config_is_valid(env_file):
    settings = load_settings(HOME / "conf" / env_file, environ={})
    # The file's own values are read (not only the defaults): each names its environment.
    assert settings.env == Path(env_file).stem


def test_env_var_overrides_nested_and_top_level_keys(tmp_path):
    settings = load_settings(
        HOME / "conf" / "local.yaml",
        environ={
            "ATHLETE_CATALOG__PORT": "15999",
            "ATHLETE_DATA_DIR": str(tmp_path),
            "ATHLETE_SPARK__MASTER": "local[1]",
        },
    )
    assert settings.catalog.port == 15999
    assert settings.spark.master == "local[1]"
    assert settings.warehouse_path == tmp_path / "warehouse"


def test_relative_data_dir_is_under_project_home():
    settings = load_settings(HOME / "conf" / "local.yaml", environ={})
    assert settings.data_path == HOME / "data"


def test_unknown_yaml_key_is_named_with_its_file(tmp_path):
    conf = tmp_path / "bad.yaml"
    conf.write_text("catalog:\n  prot: 1234\n")
    with pytest.raises(ConfigError, match=r"unknown key 'catalog\.prot' \(in .*bad\.yaml\)"):
        load_settings(conf, environ={})


def test_bad_value_names_key_and_env_var():
    with pytest.raises(ConfigError, match=r"'catalog\.port' = 'abc' is invalid.*env ATHLETE_CATALOG__PORT"):
        load_settings(HOME / "conf" / "local.yaml", environ={"ATHLETE_CATALOG__PORT": "abc"})


def test_out_of_range_port_is_rejected():
    with pytest.raises(ConfigError, match=r"catalog\.port"):
        load_settings(HOME / "conf" / "local.yaml", environ={"ATHLETE_CATALOG__PORT": "80"})


def test_env_var_that_names_no_setting_is_an_error():
    with pytest.raises(ConfigError, match=r"unknown key 'spark\.mastre' \(in env ATHLETE_SPARK__MASTRE\)"):
        load_settings(HOME / "conf" / "local.yaml", environ={"ATHLETE_SPARK__MASTRE": "local"})
    with pytest.raises(ConfigError, match="ATHLETE_NOPE does not name a setting"):
        load_settings(HOME / "conf" / "local.yaml", environ={"ATHLETE_NOPE": "1"})


def test_bad_catalog_name_is_rejected():
    with pytest.raises(ConfigError, match=r"catalog\.name"):
        load_settings(HOME / "conf" / "local.yaml", environ={"ATHLETE_CATALOG__NAME": "uc-athlete;drop"})


def test_missing_config_file_says_what_to_pass(tmp_path):
    with pytest.raises(ConfigError, match="does not exist.*--conf-file"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_spark_conf_map_from_env_uses_yaml_flow_syntax():
    settings = load_settings(
        HOME / "conf" / "local.yaml", environ={"ATHLETE_SPARK__CONF": '{"spark.executor.memory": "3g"}'}
    )
    assert settings.spark.conf == {"spark.executor.memory": "3g"}


def test_env_map_that_is_not_yaml_names_the_variable():
    with pytest.raises(ConfigError, match=r"ATHLETE_SPARK__CONF='\{bad' is not a valid YAML flow list or map"):
        load_settings(HOME / "conf" / "local.yaml", environ={"ATHLETE_SPARK__CONF": "{bad"})


def test_spark_connection_variable_is_not_taken_for_a_setting():
    # ATHLETE_SPARK_CONN_ID picks the DAGs' Airflow connection (orchestration); Airflow's Spark
    # hook hands it to every job it submits, whose settings load must not stop on it.
    environ = {"ATHLETE_SPARK_CONN_ID": "spark_other", "ATHLETE_CATALOG__PORT": "15299"}
    assert load_settings(HOME / "conf" / "local.yaml", environ=environ).catalog.port == 15299
