"""at_least_once mode: no transactions, Redis offsets; nothing lost, and no duplicate without a crash."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

from streamlearn.tools.datasets import synthetic_events
from tests.integration.engine_helpers import (
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


def test_at_least_once_delivers_everything(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]
) -> None:
    topic = unique_topic(partitions=4)
    cfg_path = write_config(tmp_path, kafka_bootstrap, redis_url, topic, processing={"guarantee": "at_least_once"})
    cfg = load(cfg_path)
    events = list(synthetic_events(4000, seed=11))
    produce(cfg, keyed(events))
    store = store_of(cfg)
    proc = start_run(cfg_path, services_env)
    wait_for(lambda: sum(store.committed_offset(p) or 0 for p in range(4)) >= len(events), 240, "Redis offsets at the end", proc)
    code, log = stop_run(proc, signal.SIGINT)
    assert code == 0, log[-3000:]
    counts = Counter(o["id"] for o in outputs(cfg))
    assert set(counts) == {ev["id"] for ev in events}
    assert max(counts.values()) == 1  # a graceful run duplicates nothing; a crash could
    for p in range(4):
        assert store.checkpoint_meta(p)["offset"] == store.committed_offset(p)
