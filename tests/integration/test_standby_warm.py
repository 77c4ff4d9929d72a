"""A standby's clients are connected before it is called (`runtime.warm`), and claim nothing meanwhile."""

from __future__ import annotations

import uuid
from typing import Any

from connectors import kafka_io
from streamlearn.config import AppConfig, load_config
from streamlearn.runtime import warm


def config(kafka_bootstrap: str, redis_url: str, topic: str) -> AppConfig:
    return load_config(environ={}, overrides={
        "app": f"warm-{uuid.uuid4().hex[:8]}",
        "kafka": {"bootstrap": kafka_bootstrap, "input_topic": topic, "output_topic": topic + "-out"},
        "redis": {"url": redis_url, "key_prefix": "sltest"},
    })


def test_a_standby_hands_over_connected_clients_and_owns_nothing(kafka_bootstrap: str, redis_url: str, unique_topic: Any) -> None:
    topic = unique_topic(partitions=3)
    out = unique_topic(partitions=2)
    cfg = config(kafka_bootstrap, redis_url, topic)
    cfg = cfg.model_copy(update={"kafka": cfg.kafka.model_copy(update={"output_topic": out})})
    settled: list[int] = []
    clients = warm.Standby(cfg, "w9", settle=lambda: settled.append(1)).take()
    assert clients is not None
    assert settled == [1], "the heap is settled during the warm-up, off the takeover's path"
    try:
        assert clients.out_partitions == 2
        # Reads only: no epoch taken, no lease set, no start position decided for any partition.
        for p in range(3):
            assert clients.store.current_epoch(p) == 0
            assert clients.store.lease(p)[0] is None
            assert clients.store.start_offset(p) is None
        # The consumer is the run's: usable for the restore's reads at once.
        assert kafka_io.committed_offsets(clients.consumer, topic, [0, 1, 2]) == {0: None, 1: None, 2: None}
        assert kafka_io.watermarks(clients.consumer, topic, 2) == (0, 0)
    finally:
        clients.close()


def test_a_second_take_gets_nothing(kafka_bootstrap: str, redis_url: str, unique_topic: Any) -> None:
    """One standby's clients go to one run only: two runs must never share a consumer."""
    cfg = config(kafka_bootstrap, redis_url, unique_topic(partitions=1))
    standby = warm.Standby(cfg, "w9")
    first = standby.take()
    assert first is not None
    try:
        assert standby.take() is None
    finally:
        first.close()
