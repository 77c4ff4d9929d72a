"""`streamlearn serve` against a private Redis: push, a refused tampered version, a Redis restart.

Versions are published straight into Redis here (signed like the learner's),
so these tests need no learner: test_serving.py runs the full loop.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from connectors.services.backends import resolve_backend
from streamlearn.config import AppConfig
from streamlearn.model.spec import build_metric, build_model
from streamlearn.models import blob
from streamlearn.models.record import make_meta, spec_hash
from streamlearn.serving.partitioner import consistent_random, key_of
from streamlearn.state.checkpoint import ModelState
from tests.integration.engine_helpers import load, partition_key, stop_run, write_config
from tests.integration.serving_helpers import (
    free_port,
    http,
    served,
    start_serve,
    versions_of,
    wait_serving,
)
from tests.polling import poll


def _publish(cfg: AppConfig, p: int, n_learned: int, key: bytes | None = None) -> int:
    """A version of partition p trained on n_learned events, published like the learner does; returns its number."""
    model, metric = build_model(cfg.model), build_metric(cfg.model)
    for i in range(n_learned):
        x = {"x0": float(i % 5) - 2.0}
        model.learn_one(x, x["x0"] > 0)
    versions = versions_of(cfg)
    store = versions.store
    epoch = store.current_epoch(p)
    v = versions.reserve(p)
    meta = make_meta(app=cfg.app, topic=cfg.kafka.input_topic, partition=p, version=v, epoch=epoch, offset=n_learned,
                     events_learned=n_learned, metric_name="Accuracy", metric_value=None, window=0,
                     spec=spec_hash(cfg.model), size_bytes=0)
    state = ModelState(model, metric, n_learned, n_learned, n_learned)
    signed = blob.sign(state, meta, key if key is not None else partition_key(cfg, p))
    assert versions.publish(p, epoch, v, meta, signed, keep=5).ok
    return v


@pytest.fixture
def serving(tmp_path: Path, kafka_bootstrap: str, private_redis: Any, unique_topic: Any, services_env: dict[str, str]) -> Any:
    if resolve_backend() == "docker":
        pytest.skip("restarts a launcher-started Redis")
    redis_srv = private_redis()
    topic = unique_topic(partitions=2)
    path = write_config(tmp_path, kafka_bootstrap, redis_srv.url, topic)
    cfg = load(path)
    port = free_port()
    for p in (0, 1):
        _publish(cfg, p, 50)
    env = {**services_env, "STREAMLEARN_REDIS__URL": redis_srv.url, "REDIS_URL": redis_srv.url}
    proc = start_serve(path, env, port)
    try:
        wait_serving(port, proc)
        yield cfg, port, proc, redis_srv
    finally:
        code, out = stop_run(proc, signal.SIGTERM, timeout=120)
        assert code == 0, out[-3000:]


def test_push_tampered_refusal_and_redis_restart(serving: Any) -> None:
    cfg, port, _proc, redis_srv = serving
    p = consistent_random(key_of("e-1"), 2)
    poll(lambda: served(port).get(p, {}).get("version") == 1, 30, "version 1 served")
    status, answer = http(port, "POST", "/predict", {"id": "e-1", "features": {"x0": 1.5}})
    assert status == 200 and answer["partition"] == p and answer["model_version"] == 1 and answer["prediction"] is True

    v2 = _publish(cfg, p, 80)  # pushed: served at once
    poll(lambda: served(port)[p]["version"] == v2, 2.0, f"version {v2} pushed to serving", every_s=0.05)

    forged = _publish(cfg, p, 90, key=b"not the app's secret")  # tampered / foreign: refused, v2 stays
    poll(lambda: (served(port)[p].get("refused") or {}).get("version") == forged, 5, "the forged version refused")
    assert served(port)[p]["version"] == v2
    assert served(port)[p]["refused"]["reason"] == "not_authentic"
    assert http(port, "POST", "/predict", {"id": "e-1", "features": {"x0": 1.5}})[1]["model_version"] == v2

    url = redis_srv.url
    redis_srv.kill()  # serving keeps the models it has
    status, answer = http(port, "POST", "/predict", {"id": "e-1", "features": {"x0": 1.5}})
    assert status == 200 and answer["model_version"] == v2
    poll(lambda: served(port).get(p, {}).get("version") == v2 and http(port, "GET", "/models")[1]["redis_connected"] is False,
         30, "serving to notice Redis is down")
    redis_srv.start()
    assert redis_srv.url == url
    v4 = _publish(cfg, p, 120)  # whether pushed or read on reconnect, serving catches up
    poll(lambda: served(port)[p]["version"] == v4, 30, f"version {v4} served after the Redis restart")
    assert http(port, "GET", "/models")[1]["redis_connected"] is True
