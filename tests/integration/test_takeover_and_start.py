"""Issue #14, findings 3, 6 and 11, against the real broker and Redis, one protocol step at a time.

- 6: a zombie that passed its epoch check before the new owner took over
  cannot re-take the partition afterwards (compare-and-increment in Lua).
- 3: a checkpoint at R > 0 with no committed offset is refused (fail) or
  goes on from R with a loud log line (warn), never silently.
- 11: a new partition starts where `processing.start_from` says, and keeps
  that position across restarts.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Producer, TopicPartition

from connectors import kafka_io
from connectors.redis_store import CheckpointStore, open_store
from streamlearn.config import AppConfig, load_config
from streamlearn.eos.heartbeat import Heartbeat
from streamlearn.eos.ownership import Ownership
from streamlearn.eos.restore import Restored, restore_state
from streamlearn.errors import CommittedOffsetMissingError, OwnershipLostError
from streamlearn.model.spec import build_metric, build_model
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState

KEY = b"test-key"
T0_MS = 1_700_000_000_000


def config(kafka_bootstrap: str, redis_url: str, topic: str, **processing: Any) -> AppConfig:
    return load_config(environ={}, overrides={
        "app": f"take-{uuid.uuid4().hex[:8]}",
        "kafka": {"bootstrap": kafka_bootstrap, "input_topic": topic},
        "redis": {"url": redis_url, "key_prefix": "sltest"},
        "processing": processing,
    })


def store_of(cfg: AppConfig) -> CheckpointStore:
    return open_store(cfg.redis, cfg.app, cfg.kafka.input_topic)


def produce_at(bootstrap: str, topic: str, timestamps_ms: list[int]) -> None:
    """One record per timestamp into partition 0, with that record timestamp."""
    p = Producer({"bootstrap.servers": bootstrap})
    for i, ts in enumerate(timestamps_ms):
        p.produce(topic, b'{"id": %d, "features": {"x": 1.0}}' % i, str(i).encode(), partition=0, timestamp=ts)
    assert p.flush(30) == 0


def restore(cfg: AppConfig, store: CheckpointStore, epoch: int) -> Restored:
    consumer = kafka_io.make_consumer(cfg.kafka.bootstrap, cfg.group_id)
    try:
        return restore_state(cfg, store, consumer, 0, KEY, epoch, lambda **more: {"partition": 0, **more})
    finally:
        consumer.close()


def test_a_zombie_woken_between_its_check_and_its_retake_is_refused(kafka_bootstrap: str, redis_url: str) -> None:
    cfg = config(kafka_bootstrap, redis_url, "unused", guarantee="at_least_once")  # no producer: Redis only
    store = store_of(cfg)
    zombie = Ownership(cfg, store, 0, "w0@h:1", Heartbeat())
    zombie.take()
    zombie.ensure_owner()  # recover(): still the owner ...
    new = Ownership(cfg, store, 0, "w2@h:2", Heartbeat())
    new.take()  # ... the Coordinator's new owner takes over meanwhile ...
    with pytest.raises(OwnershipLostError, match="re-take refused"):
        zombie.take(retake=True)  # ... and the zombie's re-take must not bump the epoch past it
    assert store.current_epoch(0) == new.epoch == 2 and store.lease(0)[0] == "w2@h:2"
    new.renew_lease()  # still the owner: nothing fenced it
    new.take(retake=True)
    assert new.epoch == 3


def _checkpoint_at(cfg: AppConfig, store: CheckpointStore, offset: int) -> int:
    epoch = store.take_epoch(0, "w0@h:1", 10_000).current
    state = ModelState(build_model(cfg.model), build_metric(cfg.model), offset=offset, model_version=offset, events=offset,
                       spec_id=checkpoint.spec_id(cfg.model))
    assert store.write_checkpoint(0, epoch, offset, checkpoint.encode(state, KEY)).ok
    return store.take_epoch(0, "w1@h:2", 10_000).current  # the next owner, restoring


def test_a_checkpoint_without_a_committed_offset_is_refused(kafka_bootstrap: str, redis_url: str, unique_topic: Any,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    topic = unique_topic(partitions=1)
    produce_at(kafka_bootstrap, topic, [T0_MS + i for i in range(20)])
    cfg = config(kafka_bootstrap, redis_url, topic)
    store = store_of(cfg)
    epoch = _checkpoint_at(cfg, store, 10)
    with caplog.at_level(logging.ERROR), pytest.raises(CommittedOffsetMissingError) as err:
        restore(cfg, store, epoch)
    assert err.value.offset == 10 and err.value.partition == 0 and err.value.epoch == epoch
    assert "processing.on_missing_committed_offset" in (err.value.hint or "")
    assert "committed_offset_missing" in caplog.text and cfg.group_id in caplog.text
    # With the group's offset restored, the same checkpoint is trusted: replay [10, 15).
    c = kafka_io.make_consumer(kafka_bootstrap, cfg.group_id)
    c.commit(offsets=[TopicPartition(topic, 0, 15)], asynchronous=False)
    c.close()
    restored = restore(cfg, store, epoch)
    assert (restored.state.offset, restored.committed) == (10, 15)


def test_warn_goes_on_from_the_checkpoint_and_says_so(kafka_bootstrap: str, redis_url: str, unique_topic: Any,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    topic = unique_topic(partitions=1)
    produce_at(kafka_bootstrap, topic, [T0_MS + i for i in range(20)])
    cfg = config(kafka_bootstrap, redis_url, topic, on_missing_committed_offset="warn")
    store = store_of(cfg)
    epoch = _checkpoint_at(cfg, store, 10)
    with caplog.at_level(logging.ERROR):
        restored = restore(cfg, store, epoch)
    assert (restored.state.offset, restored.committed, restored.state.events) == (10, 10, 10)
    assert "committed_offset_missing" in caplog.text and "written again" in caplog.text


@pytest.mark.parametrize(("start_from", "expected"), [
    ("earliest", 0),
    ("latest", 10),
    (datetime.fromtimestamp((T0_MS + 6) / 1000, UTC).isoformat(), 6),
    ("2100-01-01T00:00:00Z", 10),  # nothing that late yet: wait at the end
])
def test_a_new_partition_starts_where_start_from_says_and_keeps_it(kafka_bootstrap: str, redis_url: str, unique_topic: Any,
                                                                   start_from: str, expected: int) -> None:
    topic = unique_topic(partitions=1)
    produce_at(kafka_bootstrap, topic, [T0_MS + i for i in range(10)])
    cfg = config(kafka_bootstrap, redis_url, topic, start_from=start_from)
    store = store_of(cfg)
    first = restore(cfg, store, store.take_epoch(0, "w0@h:1", 10_000).current)
    assert (first.state.offset, first.committed, first.state.events) == (expected, expected, 0)
    # More events arrive; the owner restarts before its first commit: the position is not decided again.
    produce_at(kafka_bootstrap, topic, [T0_MS + 100 + i for i in range(5)])
    again = restore(cfg, store, store.take_epoch(0, "w1@h:2", 10_000).current)
    assert again.state.offset == expected
    assert store.start_offset(0) == (None if start_from == "earliest" else expected)
