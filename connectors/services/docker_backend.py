"""Kafka and Redis as Docker containers (testcontainers), for machines with Docker.

Kafka runs the official ``apache/kafka`` image in KRaft mode, configured with
the same broker settings as the local launcher (``BROKER_SETTINGS``), so
tests see the same transactional behaviour on both backends. We drive it
with testcontainers' generic ``DockerContainer`` rather than its
``KafkaContainer``: in testcontainers-python 4.x that class boots through
Confluent's ``cp-kafka`` scripts, which the Apache image does not have.

Ports are published on 127.0.0.1 only, at a host port chosen up front, so
the broker can advertise ``127.0.0.1:<port>`` before it starts. Container ids
go to ``<cache>/services/docker.json`` so that ``services down`` in another
process removes exactly what ``up`` started. Containers started by the CLI
must outlive it: the CLI sets ``TESTCONTAINERS_RYUK_DISABLED=true`` (pytest
sessions keep the reaper, so a crashed session leaves nothing behind).
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path
from typing import Any

from connectors.services import paths
from connectors.services.errors import ServiceStartError
from connectors.services.kafka_local import BROKER_SETTINGS, kafka_ready
from connectors.services.ports import LOOPBACK, choose_port
from connectors.services.process import read_state, write_state
from connectors.services.redis_local import redis_ready

log = logging.getLogger("connectors.services")

REDIS_IMAGE = "redis:7"
LABEL = {"io.streamlearn.services": "1"}
READY_TIMEOUT_S = 180.0


def _docker_sdk() -> Any:
    # importlib: the repo's own docker/ folder would otherwise shadow the SDK for mypy.
    return importlib.import_module("docker")


def docker_available() -> bool:
    """True if a Docker engine answers a ping (quickly; never raises)."""
    try:
        client = _docker_sdk().from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no permission: all mean "no Docker"
        return False


def _state_file() -> Path:
    return paths.cache_dir() / "services" / "docker.json"


def _container_running(container_id: str | None) -> bool:
    if not container_id:
        return False
    docker = _docker_sdk()
    client = docker.from_env(timeout=10)
    try:
        return bool(client.containers.get(container_id).status == "running")
    except docker.errors.NotFound:
        return False
    finally:
        client.close()


def docker_up(password: str | None) -> tuple[str, str]:
    """Start (or reuse) the Kafka and Redis containers; return (bootstrap, redis url)."""
    state = read_state(_state_file())
    kafka, redis = state.get("kafka", {}), state.get("redis", {})
    if not _container_running(kafka.get("id")):
        kafka = _start_kafka()
        write_state(_state_file(), {**state, "kafka": kafka})
    if not _container_running(redis.get("id")):
        redis = _start_redis(password)
    write_state(_state_file(), {"kafka": kafka, "redis": redis})
    return str(kafka["bootstrap"]), str(redis["url"])


def _start_kafka() -> dict[str, Any]:
    from testcontainers.core.container import DockerContainer

    version = paths.kafka_version()
    port = choose_port(9092)
    container = DockerContainer(f"apache/kafka:{version}")
    # A (host ip, port) tuple publishes on loopback only; docker-py accepts it.
    loopback_port: Any = (LOOPBACK, port)
    container.with_bind_ports(9092, loopback_port)
    env = {f"KAFKA_{key.upper().replace('.', '_')}": value
           for key, value in BROKER_SETTINGS.items()}
    env.update({
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{LOOPBACK}:{port}",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_LOG_DIRS": "/tmp/kraft-combined-logs",
    })
    container.with_envs(**env)
    container.with_kwargs(labels=LABEL)
    container.start()
    bootstrap = f"{LOOPBACK}:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not kafka_ready(bootstrap):
        if time.monotonic() > deadline:
            container.stop()
            raise ServiceStartError(f"Kafka container not ready after {READY_TIMEOUT_S:.0f}s",
                                    "see `docker logs` of the apache/kafka container")
        time.sleep(0.5)
    _keep_alive.append(container)
    return {"id": container.get_wrapped_container().id, "bootstrap": bootstrap,
            "version": version, "image": f"apache/kafka:{version}"}


def _start_redis(password: str | None) -> dict[str, Any]:
    from testcontainers.community.redis import RedisContainer

    port = choose_port(6379)
    container = RedisContainer(REDIS_IMAGE, password=password)
    loopback_port: Any = (LOOPBACK, port)
    container.with_bind_ports(6379, loopback_port)
    command = "redis-server --appendonly yes --appendfsync always"
    if password:
        command += f" --requirepass {password}"
    container.with_command(command)
    container.with_kwargs(labels=LABEL)
    container.start()
    auth = f":{password}@" if password else ""
    url = f"redis://{auth}{LOOPBACK}:{port}/0"
    if not redis_ready(url):
        container.stop()
        raise ServiceStartError("Redis container does not answer PING",
                                "see `docker logs` of the redis:7 container")
    _keep_alive.append(container)
    return {"id": container.get_wrapped_container().id, "url": url, "image": REDIS_IMAGE}


#: Container objects started in this process (the reaper watches this process).
_keep_alive: list[Any] = []


def docker_down() -> None:
    """Remove the containers recorded by ``docker_up`` (in any process)."""
    docker = _docker_sdk()

    state = read_state(_state_file())
    client = docker.from_env(timeout=30)
    try:
        for service in ("kafka", "redis"):
            container_id = state.get(service, {}).get("id")
            if not container_id:
                continue
            try:
                client.containers.get(container_id).remove(force=True, v=True)
                log.info("removed %s container %s", service, container_id[:12])
            except docker.errors.NotFound:
                pass
    finally:
        client.close()
    _keep_alive.clear()
    _state_file().unlink(missing_ok=True)


def docker_status() -> dict[str, Any]:
    """Status of the recorded containers in the ``services status --json`` shape."""
    state = read_state(_state_file())
    kafka, redis = state.get("kafka", {}), state.get("redis", {})
    return {
        "kafka": {"bootstrap": kafka.get("bootstrap"),
                  "running": _container_running(kafka.get("id")),
                  "version": kafka.get("version", paths.kafka_version()),
                  "backend": "docker", "container": kafka.get("id")},
        "redis": {"url": redis.get("url"), "running": _container_running(redis.get("id")),
                  "version": REDIS_IMAGE.split(":")[1], "backend": "docker",
                  "container": redis.get("id")},
    }
