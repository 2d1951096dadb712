"""Issue 10 item 8: bad set-up and bad input give one paragraph (what is wrong, what to do) and
exit 2 — never a stack trace. Each case runs the real console command in its own process against
a private data folder with no catalog server, so the check must come before the JVM is started."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.test_cli import assert_one_paragraph_error, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture()
def private_env(tmp_path) -> dict[str, str]:
    env = os.environ.copy()
    env["ATHLETE_DATA_DIR"] = str(tmp_path / "lake")
    env["ATHLETE_CATALOG__PORT"] = str(free_port())
    return env


def _fake_java(folder: Path, version_line: str, to_stdout: bool = False) -> Path:
    """A `java` that only prints an old version (to stderr like a JDK, or to stdout)."""
    (folder / "bin").mkdir(parents=True)
    java = folder / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}'{'' if to_stdout else ' >&2'}\n")
    java.chmod(0o755)
    return folder


CASES = {
    "spark conf not yaml": ({"ATHLETE_SPARK__CONF": "{bad"}, ["sql", "SELECT 1"], ["ATHLETE_SPARK__CONF", "YAML"]),
    "master nonsense": (
        {"ATHLETE_SPARK__MASTER": "nonsense"},
        ["sql", "SELECT 1"],
        ["spark.master", "'nonsense' is not a Spark master URL", "ATHLETE_SPARK__MASTER"],
    ),
    "--master local[abc]": ({}, ["--master", "local[abc]", "sql", "SELECT 1"], ["--master", "'local[abc]'"]),
    "driver memory 999t": (
        {"ATHLETE_SPARK__DRIVER_MEMORY": "999t"},
        ["sql", "SELECT 1"],
        ["ATHLETE_SPARK__DRIVER_MEMORY is 999t", "GiB of memory"],
    ),
    "unity without connector": (
        {"ATHLETE_CATALOG__BACKEND": "unity", "ATHLETE_CATALOG__UNITY_URI": "http://127.0.0.1:8080"},
        ["sql", "SELECT 1"],
        ["Unity Catalog Spark connector", "catalog.extra_jars"],
    ),
    "empty run date": ({}, ["ingest", "--run-date", ""], ["--run-date must be a date", "''"]),
    "bad as-of": ({}, ["predict", "--as-of", "2024-99-99"], ["--as-of must be a date", "2024-99-99"]),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_setting_or_argument_is_one_paragraph(case, private_env):
    extra, argv, needles = CASES[case]
    env = {**private_env, **extra}
    result = run_cli(*argv, env=env, timeout=120)
    assert_one_paragraph_error(result, *needles)
    assert "--run-date" not in result.stderr or case == "empty run date"


def test_unreachable_standalone_master_fails_fast_naming_the_url(private_env):
    url = f"spark://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_cli("--master", url, "sql", "SELECT 1", env=private_env, timeout=120)
    assert_one_paragraph_error(result, f"The Spark master {url} does not answer")
    assert time.monotonic() - started < 20  # Spark itself retries for ~60 s


@pytest.mark.parametrize(
    ("version_line", "to_stdout"),
    [('openjdk version "11.0.22" 2024-01-16', False), ('java version "1.8.0_202"', True)],
    ids=["java 11 via JAVA_HOME", "java 8 printing to stdout, on PATH"],
)
def test_old_java_is_one_paragraph(tmp_path, private_env, version_line, to_stdout):
    fake = _fake_java(tmp_path / "jdk", version_line, to_stdout)
    env = dict(private_env)
    if to_stdout:
        env.pop("JAVA_HOME", None)
        env["PATH"] = f"{fake / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    else:
        env["JAVA_HOME"] = str(fake)
    for argv in (["catalog", "up"], ["sql", "SELECT 1"]):
        assert_one_paragraph_error(run_cli(*argv, env=env, timeout=120), "Java 17")
