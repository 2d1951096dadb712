"""spark-submit arguments for the jobs: the one place that knows what a submitted job needs.

A job started by `spark-submit` gets a JVM before any Python runs, so the jars the driver
itself loads (Delta, the catalog alias, the metastore's JDBC driver) must be on the command
line; everything else is set by the session builder at start-up. Pure string building:
safe to call while Airflow parses a DAG.
"""

from __future__ import annotations

from pathlib import Path

from athlete_platform.lakehouse import runtime


def driver_jars(home: Path) -> list[Path]:
    jars = home / ".jars"
    return [jars / name for name in (*runtime.DELTA_JARS, runtime.CATALOG_ALIAS_JAR)]


def driver_class_path(home: Path) -> Path:
    return home / ".jars" / runtime.DERBY_CLIENT_JAR


def driver_java_options(home: Path, extra: str = "") -> str:
    """UTC and the platform's log4j config for a JVM of the platform, then `extra` (the
    `spark.java_options` setting)."""
    own = f"-Duser.timezone=UTC -Dlog4j.configurationFile=file:{home / 'conf' / 'log4j2.properties'}"
    return f"{own} {extra.strip()}".strip()


def spark_submit_command(
    home: Path,
    job: str,
    job_args: list[str],
    master: str | None = None,
    conf_file: str | None = None,
    spark_submit: str = "spark-submit",
    java_options: str = "",
) -> list[str]:
    """argv for `spark-submit jobs/<job>.py <job_args>` with the jars the driver needs."""
    if not (home / "jobs" / f"{job}.py").is_file():
        jobs = sorted(p.stem for p in (home / "jobs").glob("*.py"))
        raise ValueError(f"unknown job {job!r}; jobs are {', '.join(jobs)}")
    command = [
        spark_submit,
        "--jars",
        ",".join(str(p) for p in driver_jars(home)),
        "--driver-class-path",
        str(driver_class_path(home)),
        "--driver-java-options",
        driver_java_options(home, java_options),
    ]
    if master:
        command += ["--master", master]
    command += [str(home / "jobs" / f"{job}.py"), *job_args]
    if conf_file:
        command += ["--conf-file", conf_file]
    if master:
        command += ["--master", master]
    return command
