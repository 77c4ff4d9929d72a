"""The direct jar download (no mvn): checksums, progress and one-line failures.

Runs against a ``file://`` repository of fake jars in a tmp dir; no network.
"""

from __future__ import annotations

import hashlib
import io
import logging
import socket
from collections import namedtuple
from pathlib import Path

import pytest

from connectors.services import kafka_jars
from connectors.services.errors import (
    ChecksumError,
    ConfigurationError,
    DiskFullError,
    DownloadError,
    ServiceError,
)
from connectors.services.kafka_jars import PinnedJar, ensure_kafka_jars, pinned_jars
from connectors.services.pom_resolver import Artifact

VERSION = "4.1.1"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def no_mvn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No mvn anywhere: ``auto`` must take the direct path."""
    for name in ("STREAMLEARN_MVN", "STREAMLEARN_MAVEN_REPO", "STREAMLEARN_KAFKA_JARS"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[PinnedJar]:
    """A file:// Maven repository with two jars, pinned as the Kafka version's jar list."""
    root = tmp_path / "repo"
    pins = []
    for artifact, body in ((Artifact("org.apache.kafka", "kafka_2.13", VERSION), b"broker" * 999),
                           (Artifact("org.example", "lib", "1.0", "linux"), b"lib" * 5000)):
        jar = root / artifact.path()
        jar.parent.mkdir(parents=True, exist_ok=True)
        jar.write_bytes(body)
        pins.append(PinnedJar(artifact, hashlib.sha256(body).hexdigest(), len(body)))
    monkeypatch.setenv("STREAMLEARN_MAVEN_REPO", root.as_uri())
    monkeypatch.setattr(kafka_jars, "pinned_jars", lambda version: pins)
    return pins


def _one_line(error: ServiceError) -> str:
    assert "\n" not in str(error)
    return str(error)


def test_without_mvn_the_pinned_jars_are_downloaded_and_verified(
        repo: list[PinnedJar], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()  # not a terminal: no live progress, one summary line
    with caplog.at_level(logging.INFO, logger="connectors.services"):
        libs = ensure_kafka_jars(tmp_path / "cache", VERSION, stream=stream)

    assert sorted(p.name for p in libs.iterdir()) == [f"kafka_2.13-{VERSION}.jar",
                                                      "lib-1.0-linux.jar"]
    assert (libs.parent / ".complete").read_text() == f"{VERSION} direct\n"
    assert stream.getvalue() == ""
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("downloaded")]
    assert len(summary) == 1 and "2 jars" in summary[0] and "MB/s" in summary[0]
    assert "SHA-256 verified" in summary[0]


def test_a_terminal_sees_bytes_and_rate(repo: list[PinnedJar], tmp_path: Path) -> None:
    stream = Terminal()
    ensure_kafka_jars(tmp_path / "cache", VERSION, stream=stream)
    shown = stream.getvalue()
    assert "\r  Kafka jars" in shown and "MB/s" in shown and "(2/2 jars)" in shown
    assert shown.endswith("\n")


def test_a_second_start_is_a_cache_hit(repo: list[PinnedJar], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_kafka_jars(tmp_path / "cache", VERSION, stream=io.StringIO())
    monkeypatch.setenv("STREAMLEARN_MAVEN_REPO", "http://127.0.0.1:1/nowhere")
    assert ensure_kafka_jars(tmp_path / "cache", VERSION).is_dir()


def test_a_checksum_mismatch_caches_nothing(repo: list[PinnedJar], tmp_path: Path) -> None:
    jar = tmp_path / "repo" / repo[1].artifact.path()
    jar.write_bytes(jar.read_bytes()[:-1] + b"!")  # same size, other bytes
    cache = tmp_path / "cache"

    with pytest.raises(ChecksumError) as raised:
        ensure_kafka_jars(cache, VERSION, stream=io.StringIO())

    text = _one_line(raised.value)
    assert "lib-1.0-linux.jar" in text and "does not match its pin" in text
    assert "nothing was cached" in text and raised.value.hint
    home = cache / f"kafka-{VERSION}"
    assert not (home / ".complete").exists()
    assert not (home / "libs").exists() and not (home / "libs.partial").exists()


def test_an_unreachable_repository_is_one_line_with_a_hint(
        repo: list[PinnedJar], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    monkeypatch.setenv("STREAMLEARN_MAVEN_REPO", f"http://127.0.0.1:{dead_port}/maven2")

    with pytest.raises(DownloadError) as raised:
        ensure_kafka_jars(tmp_path / "cache", VERSION, stream=Terminal())

    assert f"127.0.0.1:{dead_port} is unreachable" in _one_line(raised.value)
    assert "repo1.maven.org" in raised.value.hint and "STREAMLEARN_MAVEN_REPO" in raised.value.hint
    assert not (tmp_path / "cache" / f"kafka-{VERSION}" / ".complete").exists()


def test_a_full_disk_is_refused_before_downloading(
        repo: list[PinnedJar], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(kafka_jars.shutil, "disk_usage", lambda _path: usage(10**9, 10**9, 1000))

    with pytest.raises(DiskFullError) as raised:
        ensure_kafka_jars(tmp_path / "cache", VERSION, stream=io.StringIO())

    assert "no space left for the Kafka jars" in _one_line(raised.value)
    assert "STREAMLEARN_CACHE_DIR" in raised.value.hint


def test_an_unpinned_version_without_mvn_names_the_pin_command(tmp_path: Path) -> None:
    assert pinned_jars("3.9.0") is None
    with pytest.raises(DownloadError) as raised:
        ensure_kafka_jars(tmp_path / "cache", "3.9.0", stream=io.StringIO())
    assert "no pinned jar list" in _one_line(raised.value)
    assert "python -m connectors.services.pin_jars 3.9.0" in raised.value.hint


def test_an_unknown_mode_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLEARN_KAFKA_JARS", "gradle")
    with pytest.raises(ConfigurationError) as raised:
        ensure_kafka_jars(tmp_path / "cache", VERSION)
    assert "auto, maven, direct" in _one_line(raised.value)
