"""What the JVM side needs: Java, the jars fetched at set-up, and pyspark's bundled jars.

`make setup` fetches the jars listed in conf/jars.pom.xml into `.jars/` and builds the
catalog alias jar from java/; nothing here downloads anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from athlete_platform.errors import SetupError

# Keep in step with conf/jars.pom.xml and the pyspark/delta-spark pins in pyproject.toml.
DELTA_VERSION = "4.0.1"
DERBY_VERSION = "10.16.1.1"  # the Derby pyspark 4.0.x bundles; client and server must match

DELTA_JARS = (f"delta-spark_2.13-{DELTA_VERSION}.jar", f"delta-storage-{DELTA_VERSION}.jar")
DERBY_CLIENT_JAR = f"derbyclient-{DERBY_VERSION}.jar"
DERBY_SERVER_JARS = (f"derbynet-{DERBY_VERSION}.jar",)
PYSPARK_DERBY_JARS = (
    f"derby-{DERBY_VERSION}.jar",
    f"derbyshared-{DERBY_VERSION}.jar",
    f"derbytools-{DERBY_VERSION}.jar",
)
CATALOG_ALIAS_JAR = "athlete-platform-catalog.jar"
CATALOG_ALIAS_CLASS = "io.athleteplatform.catalog.SessionCatalogAlias"

SETUP_HINT = "Run `make setup` in the project folder (it fetches the jars once from Maven Central)."


@dataclass(frozen=True)
class Jars:
    """Absolute paths of the jars the platform puts on Spark's and the server's classpath."""

    folder: Path

    def _require(self, name: str) -> Path:
        path = self.folder / name
        if not path.is_file():
            raise SetupError(f"The jar {name} is missing from {self.folder}. {SETUP_HINT}")
        return path

    def delta(self) -> list[Path]:
        return [self._require(name) for name in DELTA_JARS]

    def derby_client(self) -> Path:
        return self._require(DERBY_CLIENT_JAR)

    def catalog_alias(self) -> Path:
        return self._require(CATALOG_ALIAS_JAR)

    def derby_server_classpath(self) -> list[Path]:
        bundled = pyspark_jars_folder()
        missing = [name for name in PYSPARK_DERBY_JARS if not (bundled / name).is_file()]
        if missing:
            raise SetupError(
                f"pyspark's bundled Derby jars {missing} are not in {bundled}: the installed pyspark "
                f"does not match the pinned one. {SETUP_HINT}"
            )
        return [bundled / name for name in PYSPARK_DERBY_JARS] + [self._require(n) for n in DERBY_SERVER_JARS]


def pyspark_jars_folder() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


@lru_cache(maxsize=1)
def java_executable() -> str:
    """The `java` Spark will use (JAVA_HOME first, like spark-submit), checked to be >= 17."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not candidate or not Path(candidate).exists():
        where = f"JAVA_HOME={java_home} has no bin/java" if java_home else "no `java` on PATH and JAVA_HOME is unset"
        raise SetupError(
            f"Java was not found ({where}). Spark and the catalog server need Java 17: install it "
            "(Debian/Ubuntu: `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME to a JDK 17 folder, "
            "then run the command again."
        )
    version = _java_major_version(candidate)
    if version is None:
        raise SetupError(
            f"Could not tell which Java {candidate} is (`{candidate} -version` printed no version). "
            "Spark 4 needs Java 17 or newer: set JAVA_HOME to a JDK 17 folder or put a Java 17 `java` first on PATH."
        )
    if version < 17:
        raise SetupError(
            f"{candidate} is Java {version}; Spark 4 needs Java 17 or newer. "
            "Set JAVA_HOME to a JDK 17 folder or put a Java 17 `java` first on PATH."
        )
    return candidate


def _java_major_version(java: str) -> int | None:
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # Real JDKs print to stderr; read stdout too so a wrapper that prints there is judged alike.
    return java_major_version(result.stderr + "\n" + result.stdout)


def java_major_version(text: str) -> int | None:
    """The major version in `java -version` output: `"1.8.0_202"` -> 8, `"17.0.15"` -> 17."""
    found = re.search(r'version\s+"?(\d+)(?:\.(\d+))?', text)
    if found is None:
        return None
    major, minor = found.groups()
    return int(minor) if major == "1" and minor else int(major)
