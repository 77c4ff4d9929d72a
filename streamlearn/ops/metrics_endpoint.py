"""The `/metrics` endpoint of `streamlearn run` and the demo: HTTP, and the status it reads.

`ops.metrics` turns one status dict into metric families; this is the
part that touches services: the status read from Kafka and Redis (clients
made lazily, so the endpoint can start before the input topic exists) and
the HTTP server a scrape reaches.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from prometheus_client.registry import CollectorRegistry

from streamlearn.config import AppConfig
from streamlearn.errors import ConfigError
from streamlearn.ops.metrics import Status, StatusCollector, StatusSource


class KafkaRedisStatus:
    """`streamlearn.ops.status.collect` against Kafka and Redis, as the driver sees them.

    Clients are created on first use and the partition list is refreshed
    every `refresh_s`, so the endpoint can start before the input topic exists.
    """

    def __init__(self, cfg: AppConfig, refresh_s: float = 30.0) -> None:
        self.cfg = cfg
        self.refresh_s = refresh_s
        self._store: Any = None
        self._consumer: Any = None
        self._admin: Any = None
        self._partitions: list[int] = []
        self._listed_at = -math.inf

    def __call__(self) -> Status:
        from connectors import kafka_io
        from connectors.redis_store import open_store
        from streamlearn.ops import status

        cfg = self.cfg
        if self._store is None:
            self._store = open_store(cfg.redis, cfg.app, cfg.kafka.input_topic)
            self._admin = kafka_io.admin(cfg.kafka.bootstrap, cfg.kafka.consumer)
            self._consumer = kafka_io.make_consumer(cfg.kafka.bootstrap, cfg.group_id, cfg.kafka.consumer)
        now = time.monotonic()
        if not self._partitions or now - self._listed_at > self.refresh_s:
            self._partitions = kafka_io.topic_partitions(self._admin, cfg.kafka.input_topic, timeout_s=5.0) or []
            self._listed_at = now
        if not self._partitions:
            return {"app": cfg.app, "partitions": []}
        return status.collect(cfg, self._store, self._consumer, self._partitions)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._store is not None:
            self._store.r.close()
            self._store = None


class MetricsServer:
    """A running `/metrics` endpoint: `.port` (the bound one) and `.close()`."""

    def __init__(self, httpd: Any, thread: threading.Thread, host: str, source: Any) -> None:
        self._httpd = httpd
        self._thread = thread
        self._source = source
        self.host = host
        self.port: int = httpd.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


def serve(cfg: AppConfig, source: StatusSource | None = None) -> MetricsServer | None:
    """Start `/metrics` on `metrics.host:metrics.port` (0: a free port; None: off)."""
    from prometheus_client import start_http_server

    if cfg.metrics.port is None:
        return None
    src: StatusSource = source if source is not None else KafkaRedisStatus(cfg)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(cfg.app, src))
    try:
        httpd, thread = start_http_server(cfg.metrics.port, addr=cfg.metrics.host, registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"metrics.port: cannot listen on {cfg.metrics.host}:{cfg.metrics.port} ({exc.strerror or exc})",
            hint="another `streamlearn run` may hold it: set STREAMLEARN_METRICS__PORT=0 (any free port) or pass --no-metrics",
        ) from None
    return MetricsServer(httpd, thread, cfg.metrics.host, src)
