"""`status` and the metrics endpoint reach Redis with the same settings as `run`.

Regression: `status` used to build its store from the URL alone, dropping
`redis.ssl_ca_certs` and `redis.socket_timeout_s`, so it failed on a
`rediss://` Redis with a private CA where `run` worked. Every caller now goes
through `connectors.redis_store.open_store`; no connection is made here
(redis-py connects lazily), the client's settings are inspected.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from connectors.redis_store import CheckpointStore, open_store
from streamlearn.config import AppConfig


def _tls_config(tmp_path: Path) -> AppConfig:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read until a connection is made\n")
    return AppConfig.model_validate({
        "app": "tls-app",
        "redis": {"url": "rediss://:pw@redis.example:6380/0", "ssl_ca_certs": str(ca), "socket_timeout_s": 7.5, "key_prefix": "pfx"},
        "metrics": {"port": None},
    })


def _settings(store: CheckpointStore) -> dict[str, Any]:
    kw = store.r.connection_pool.connection_kwargs
    return {k: kw.get(k) for k in ("host", "port", "password", "ssl_ca_certs", "socket_timeout", "socket_connect_timeout")}


def test_open_store_keeps_ca_timeouts_and_prefix(tmp_path: Path) -> None:
    cfg = _tls_config(tmp_path)
    store = open_store(cfg.redis, cfg.app, "events")
    kw = _settings(store)
    assert kw["ssl_ca_certs"] == cfg.redis.ssl_ca_certs
    assert kw["socket_timeout"] == 7.5 and kw["socket_connect_timeout"] == 7.5
    assert store.key(3, "ckpt") == "pfx:tls-app:events:3:ckpt"


def test_status_builds_its_store_like_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors import kafka_io
    from streamlearn.ops import cli, status

    cfg = _tls_config(tmp_path)
    seen: list[CheckpointStore] = []

    class _Consumer:
        def close(self) -> None:
            pass

    def fake_collect(_cfg: AppConfig, store: CheckpointStore, _consumer: Any, parts: list[int]) -> dict[str, Any]:
        seen.append(store)
        return {"app": cfg.app, "input_topic": "t", "guarantee": "exactly_once", "partitions": []}

    monkeypatch.setattr(cli, "_config", lambda _args: cfg)
    monkeypatch.setattr(status, "check_services", lambda _cfg: None)
    monkeypatch.setattr(kafka_io, "admin", lambda *_a, **_k: None)
    monkeypatch.setattr(kafka_io, "topic_partitions", lambda *_a, **_k: [0])
    monkeypatch.setattr(kafka_io, "make_consumer", lambda *_a, **_k: _Consumer())
    monkeypatch.setattr(status, "collect", fake_collect)
    assert cli.cmd_status(argparse.Namespace(json=True)) == 0
    (store,) = seen
    assert _settings(store) == _settings(open_store(cfg.redis, cfg.app, cfg.kafka.input_topic))
    assert _settings(store)["ssl_ca_certs"] == cfg.redis.ssl_ca_certs
    assert store.key(0, "epoch") == f"pfx:tls-app:{cfg.kafka.input_topic}:0:epoch"
