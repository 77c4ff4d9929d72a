"""The ``mvn`` path to the Apache Kafka broker jars (``kafka_jars.py`` picks the path).

Kafka publishes the broker as ``org.apache.kafka:kafka_2.13``; its Maven
dependencies are the rest of the distribution's ``libs/``. We write a tiny
pom into the cache and let ``mvn dependency:copy-dependencies`` fetch them,
plus a log4j2 SLF4J binding so the broker logs to a file rather than
nowhere. Without ``mvn`` the same jars come from the pinned list
(``kafka_pins.py``); a unit test keeps both paths on the same jar set.

Environment: ``STREAMLEARN_MAVEN_REPO`` (a mirror URL instead of Central),
``STREAMLEARN_MAVEN_ARGS`` (extra mvn arguments, e.g. ``-s settings.xml``),
``STREAMLEARN_MVN`` (the mvn executable).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from connectors.services.errors import MavenError
from connectors.services.java import find_java
from connectors.services.pom_resolver import CENTRAL, Artifact

log = logging.getLogger("connectors.services")

# Kafka 4.x logs through SLF4J 1.7 (log4j2 is its backend in the distribution).
LOG4J_VERSION = "2.24.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MAVEN_TIMEOUT_S = 900.0

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by streamlearn (connectors/services/maven.py): the Kafka broker runtime. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.streamlearn.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <repositories>
    <repository><id>central</id><url>{repo}</url></repository>
  </repositories>
  <pluginRepositories>
    <pluginRepository><id>central</id><url>{repo}</url></pluginRepository>
  </pluginRepositories>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""


def root_artifacts(version: str) -> list[Artifact]:
    """What the broker runtime depends on directly: Kafka, and log4j2 behind SLF4J."""
    return [
        Artifact("org.apache.kafka", "kafka_2.13", version),
        Artifact("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
        Artifact("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
    ]


def write_pom(home: Path, version: str) -> str:
    """Write ``home/pom.xml`` (the broker runtime as a Maven project); return the repo URL."""
    repo = os.environ.get("STREAMLEARN_MAVEN_REPO") or CENTRAL
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(_POM.format(version=version, repo=repo, log4j=LOG4J_VERSION))
    return repo


def find_mvn() -> str | None:
    """``STREAMLEARN_MVN`` or ``mvn`` on PATH; None without one."""
    return os.environ.get("STREAMLEARN_MVN") or shutil.which("mvn")


def resolve_with_maven(home: Path, version: str, staging: Path) -> None:
    """Copy the broker's runtime jars into ``staging`` with ``mvn``, or raise ``MavenError``."""
    java = find_java()  # Maven needs it too; fail with the Java hint, not Maven's.
    mvn = find_mvn()
    if not mvn:
        raise MavenError(
            f"Maven (mvn) not found and Apache Kafka {version} is not in the cache {home}",
            "unset STREAMLEARN_KAFKA_JARS (or set it to direct) to download the pinned jars "
            "without Maven, or install Maven / set STREAMLEARN_MVN",
        )
    repo = write_pom(home, version)
    where = "Maven Central" if repo == CENTRAL else repo
    log.warning("downloading Apache Kafka %s from %s with mvn (first run only) ...", version,
                where)
    argv = [
        mvn, "-B", "-q", "-f", str(home / "pom.xml"),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
        *shlex.split(os.environ.get("STREAMLEARN_MAVEN_ARGS", "")),
    ]
    env = dict(os.environ)
    env.setdefault("JAVA_HOME", java.home)
    maven_log = home / "maven.log"
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True,
                              timeout=MAVEN_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MavenError(
            f"Maven did not finish downloading Apache Kafka {version} from {where} "
            f"within {MAVEN_TIMEOUT_S:.0f}s"
        ) from exc
    maven_log.write_text(f"$ {shlex.join(argv)}\n{done.stdout}\n{done.stderr}")
    if done.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        raise _classify(done.stdout + done.stderr, version, where, home, maven_log)


def _classify(output: str, version: str, where: str, home: Path, maven_log: Path) -> MavenError:
    """Turn Maven's many-line failure into one line: missing version vs unreachable repo."""
    if "Could not find artifact org.apache.kafka:kafka_2.13" in output:
        return MavenError(
            f"Apache Kafka {version} does not exist in {where} (see {maven_log})",
            "set STREAMLEARN_KAFKA_VERSION to a published 4.x version, e.g. 4.1.1",
        )
    return MavenError(
        f"Maven could not download Apache Kafka {version} from {where} "
        f"(unreachable or offline) and the cache {home} is empty (see {maven_log})"
    )
