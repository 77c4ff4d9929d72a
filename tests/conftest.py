"""Session fixtures: real Kafka and Redis, started once per session by the launchers.

``STREAMLEARN_SERVICES`` picks the backend (auto|local|docker|external, see
``connectors.services.backends``). Services already running when the session
starts (``streamlearn services up``) are reused and left running; services the
session started are stopped at its end, unless ``STREAMLEARN_KEEP_SERVICES=1``.

Fixtures: ``services`` (Endpoints), ``kafka_bootstrap``, ``redis_url``,
``services_env`` (os.environ plus the endpoint variables, for subprocesses),
``unique_topic`` (factory: ``unique_topic(partitions=4) -> name``),
``redis_client``, and for chaos tests ``private_kafka`` / ``private_redis``
(factories for instances of their own, in tmp dirs, stopped afterwards).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.services.backends import (
    Endpoints,
    external_endpoints,
    local_services,
    resolve_backend,
    services_status,
    services_up,
)
from connectors.services.kafka_local import LocalKafka
from connectors.services.redis_local import LocalRedis
from tests.polling import poll

TESTS_DIR = Path(__file__).parent
TOPIC_READY_TIMEOUT_S = 30.0


def _extended() -> bool:
    return os.environ.get("STREAMLEARN_EXTENDED", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by folder (tests/integration → integration, tests/chaos → chaos); skip the
    `extended` tier unless STREAMLEARN_EXTENDED=1 (`make test-extended`, `make test-chaos`).

    The extended tier holds the slowest scenarios whose guarantee a faster test of the
    default tier also exercises against the real services (each says which in its marker's
    reason), so that `make test`, the README's test command and CI, stays within its
    time budget on a 2-core machine.
    """
    run_extended = _extended() or "extended" in (config.getoption("-m") or "")
    for item in items:
        try:
            layer = Path(item.path).resolve().relative_to(TESTS_DIR.resolve()).parts[0]
        except ValueError:
            continue
        if layer in ("integration", "chaos"):
            item.add_marker(getattr(pytest.mark, layer))
        mark = item.get_closest_marker("extended")
        if mark is not None and not run_extended:
            why = mark.kwargs.get("reason") or (mark.args[0] if mark.args else "")
            item.add_marker(pytest.mark.skip(reason=f"extended tier (STREAMLEARN_EXTENDED=1 or make test-extended): {why}"))


def _keep_services() -> bool:
    return os.environ.get("STREAMLEARN_KEEP_SERVICES", "").lower() in ("1", "true", "yes")


def _xdist_controller(config: pytest.Config) -> bool:
    """The process that hands tests to pytest-xdist workers (not a worker, and workers asked for)."""
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))


_CONTROLLER_STARTED: list[Any] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under pytest-xdist (`make test` runs 2 workers), the shared Kafka and Redis are started once,
    here, before any worker: each worker's `services` fixture then finds them running and reuses
    them. Left to the workers, two would race to start a broker on the same port, and the first to
    finish would stop the services under the other."""
    if not _xdist_controller(session.config):
        return
    backend = resolve_backend()
    if backend == "local":
        _CONTROLLER_STARTED.extend(svc for svc in local_services() if not svc.is_running())
        services_up("local")
    elif backend == "docker":
        status = services_status("docker")
        if not (status["kafka"]["running"] and status["redis"]["running"]):
            _CONTROLLER_STARTED.append("docker")
        services_up("docker")


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _xdist_controller(session.config) or _keep_services():
        return
    for svc in _CONTROLLER_STARTED:
        if svc == "docker":
            from connectors.services.docker_backend import docker_down

            docker_down()
        else:
            svc.stop()


@pytest.fixture(scope="session")
def services() -> Iterator[Endpoints]:
    """Kafka + Redis for the whole session (reused if already up, never stopped then)."""
    backend = resolve_backend()
    if backend == "external":
        yield external_endpoints()
        return
    if backend == "local":
        kafka, redis = local_services()
        started = [svc for svc in (kafka, redis) if not svc.is_running()]
        endpoints = services_up("local")
        yield endpoints
        if not _keep_services():
            for svc in started:
                svc.stop()
        return
    status = services_status("docker")
    already = status["kafka"]["running"] and status["redis"]["running"]
    endpoints = services_up("docker")
    yield endpoints
    if not already and not _keep_services():
        from connectors.services.docker_backend import docker_down

        docker_down()


@pytest.fixture(scope="session")
def kafka_bootstrap(services: Endpoints) -> str:
    """``bootstrap.servers`` of the session broker, e.g. ``127.0.0.1:9092``."""
    return services.kafka_bootstrap


@pytest.fixture(scope="session")
def redis_url(services: Endpoints) -> str:
    """URL of the session Redis, e.g. ``redis://127.0.0.1:6379/0``."""
    return services.redis_url


@pytest.fixture(scope="session")
def services_env(services: Endpoints) -> dict[str, str]:
    """``os.environ`` plus KAFKA_BOOTSTRAP, REDIS_URL, STREAMLEARN_*: for subprocesses."""
    return {**os.environ, **services.as_env()}


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> Iterator[Any]:
    """A ``redis.Redis`` on the session Redis (shared: use unique keys)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def unique_topic(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Iterator[
        Callable[..., str]]:
    """Factory: ``unique_topic(partitions=4, config=None) -> name`` of a fresh topic.

    Returns once every partition has a leader in the broker's metadata, so
    producers and ``assign()`` work at once. Topics are deleted after the test.
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []
    stem = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name)[:60].strip("-")

    def make(partitions: int = 4, config: dict[str, str] | None = None) -> str:
        name = f"t-{stem}-{uuid.uuid4().hex[:8]}"
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1,
                      config=dict(config or {}))], operation_timeout=TOPIC_READY_TIMEOUT_S)
        futures[name].result(timeout=TOPIC_READY_TIMEOUT_S)
        created.append(name)
        _wait_topic_ready(admin, name, partitions)
        return name

    yield make
    if created:
        futures = admin.delete_topics(created, operation_timeout=10)
        for future in futures.values():
            # Best effort: a leftover test topic is harmless.
            with contextlib.suppress(Exception):
                future.result(timeout=15)


def _wait_topic_ready(admin: Any, name: str, partitions: int) -> None:
    def ready() -> bool:
        topic = admin.list_topics(name, timeout=5).topics.get(name)
        return (topic is not None and topic.error is None and len(topic.partitions) == partitions
                and all(p.leader >= 0 for p in topic.partitions.values()))

    poll(ready, TOPIC_READY_TIMEOUT_S, f"a leader for every partition of topic {name}", every_s=0.1)


@pytest.fixture
def private_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalKafka]]:
    """Factory: a broker of the test's own (tmp state dir, free ports), started.

    Shares the jar cache with the session broker (no download); stopped after
    the test. Kill/restart it freely: ``k.kill(); k.start()``.
    """
    made: list[LocalKafka] = []

    def make(**kwargs: Any) -> LocalKafka:
        kwargs.setdefault("port", 0)
        kwargs.setdefault("controller_port", 0)
        state_dir = tmp_path_factory.mktemp("kafka")
        kafka = LocalKafka(state_dir=state_dir, **kwargs)
        made.append(kafka)
        return kafka.start()

    yield make
    for kafka in made:
        kafka.stop()


@pytest.fixture
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalRedis]]:
    """Factory: a redis-server of the test's own (tmp data dir, free port), started."""
    made: list[LocalRedis] = []

    def make(**kwargs: Any) -> LocalRedis:
        kwargs.setdefault("port", 0)
        redis = LocalRedis(state_dir=tmp_path_factory.mktemp("redis"), **kwargs)
        made.append(redis)
        return redis.start()

    yield make
    for redis in made:
        redis.stop()
