"""Real Kafka and Redis for development and tests, started by the project itself.

Public API (see ``backends``): ``Endpoints``, ``services_up``, ``services_down``,
``services_status``; launchers ``LocalKafka`` / ``LocalRedis`` for private
instances (chaos tests); errors derive from ``ServiceError``.
"""

from __future__ import annotations

from connectors.services.backends import (
    Endpoints,
    services_down,
    services_status,
    services_up,
)
from connectors.services.errors import ServiceError
from connectors.services.kafka_local import LocalKafka
from connectors.services.redis_local import LocalRedis

__all__ = [
    "Endpoints",
    "LocalKafka",
    "LocalRedis",
    "ServiceError",
    "services_down",
    "services_status",
    "services_up",
]
