"""What serving does, without Ray: route, predict, describe, count. The Ray Serve deployment wraps it.

A request's id is routed to the partition its key was produced to
(`partitioner`), and answered by that partition's served version (or the
`?partition=P` / `?version=V` override). Requests are validated before any
model sees them (`requests`). Served versions arrive by push (`subscriber`).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from connectors import kafka_io
from connectors.redis_store import client_for, open_store
from connectors.version_store import VersionStore
from streamlearn.config import AppConfig
from streamlearn.errors import ConfigError
from streamlearn.models.blob import key_for
from streamlearn.serving.partitioner import PARTITIONERS, key_of
from streamlearn.serving.registry import Registry
from streamlearn.serving.requests import RequestError, int_param, parse_body
from streamlearn.serving.subscriber import Subscriber

LATENCY_BUCKETS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServingCore:
    def __init__(self, cfg: AppConfig, partitions: int | None = None) -> None:
        self.cfg = cfg
        topic = cfg.kafka.input_topic
        if partitions is None:
            parts = kafka_io.topic_partitions(kafka_io.admin(cfg.kafka.bootstrap, cfg.kafka.consumer), topic, timeout_s=10.0)
            if not parts:
                raise ConfigError(f"kafka.input_topic: topic '{topic}' does not exist",
                                  hint="serving routes ids to the input topic's partitions: produce to it (and run the learner) first")
            partitions = len(parts)
        self.partitions = partitions
        self.partitioner = PARTITIONERS[cfg.serving.partitioner]
        keys = {p: key_for(cfg, p) for p in range(partitions)}  # ConfigError now, without a secret (unless allow_dev_key)
        self.versions = VersionStore(open_store(cfg.redis, cfg.app, topic))
        self.registry = Registry(self.versions, keys.__getitem__, cfg.app, topic, partitions)
        self.subscriber = Subscriber(lambda: client_for(cfg.redis), self.versions.channel, self.registry.refresh, self.registry.refresh_all)
        self.metrics = CollectorRegistry()
        self.requests = Counter("streamlearn_serving_requests", "HTTP requests answered by serving, by path and status.",
                                ["path", "status"], registry=self.metrics)
        self.latency = Histogram("streamlearn_serving_request_latency_seconds", "Time to answer one request, in the replica.",
                                 ["path"], buckets=LATENCY_BUCKETS_S, registry=self.metrics)
        self.predictions = Counter("streamlearn_serving_predictions", "Events predicted (a list request counts each).",
                                   registry=self.metrics)

    def start(self) -> None:
        self.subscriber.start()

    def stop(self) -> None:
        self.subscriber.stop()

    def route(self, event_id: str | int) -> int:
        return self.partitioner(key_of(event_id), self.partitions)

    def predict(self, raw: bytes, params: dict[str, str]) -> tuple[int, Any]:
        t0 = time.perf_counter()
        status, body = self._predict(raw, params)
        self.requests.labels("/predict", str(status)).inc()
        self.latency.labels("/predict").observe(time.perf_counter() - t0)
        return status, body

    def _predict(self, raw: bytes, params: dict[str, str]) -> tuple[int, Any]:
        try:
            partition = int_param(params, "partition", 0, self.partitions - 1)
            version = int_param(params, "version", 1)
            events, is_list = parse_body(raw, self.cfg.serving.max_request_bytes, self.cfg.serving.max_batch)
        except RequestError as exc:
            return exc.status, exc.body()
        out = []
        for ev in events:
            p = partition if partition is not None else self.route(ev.id)
            model = self.registry.get(p, version)
            if model is None:
                what = f"version {version} of partition {p}" if version is not None else f"a published version for partition {p}"
                return (404 if version is not None else 503), {"error": f"no {what} (yet)", "field": "version" if version else "partition"}
            try:
                pred, proba = model.predict(ev.features)
            except Exception as exc:  # the pipeline refuses these features (e.g. strings into a scaler)
                return 422, {"error": f"the model cannot take these features: {type(exc).__name__}: {exc}", "field": "features"}
            answer: dict[str, Any] = {"id": ev.id, "prediction": pred, "partition": p, "model_version": model.version}
            if proba is not None:
                answer["proba"] = proba
            out.append(answer)
        self.predictions.inc(len(out))
        return 200, out if is_list else out[0]

    def models(self) -> dict[str, Any]:
        self.requests.labels("/models", "200").inc()
        return {"app": self.cfg.app, "topic": self.cfg.kafka.input_topic, "partitioner": self.cfg.serving.partitioner,
                "redis_connected": self.subscriber.connected.is_set(), "partitions": self.registry.describe()}

    def health(self) -> tuple[int, dict[str, Any]]:
        served = sum(1 for r in self.registry.describe() if r["version"] is not None)
        body = {"status": "ok", "partitions": self.partitions, "served": served, "redis_connected": self.subscriber.connected.is_set()}
        self.requests.labels("/healthz", "200").inc()
        return 200, body

    def scrape(self) -> bytes:
        return generate_latest(self.metrics)
