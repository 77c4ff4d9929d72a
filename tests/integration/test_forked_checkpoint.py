"""Checkpoints written by a forked child (streamlearn.state.forked) against a real Redis.

The child must write exactly the state the parent had at fork time, be
refused like its parent once the epoch moved (I3), and report a Redis it
cannot reach instead of dying silently.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import SecretStr
from river import linear_model, metrics

from connectors.redis_store import CAS_STALE_EPOCH, CheckpointStore, open_store
from streamlearn.config import RedisConfig
from streamlearn.state import checkpoint, forked
from streamlearn.state.checkpoint import ModelState
from streamlearn.state.forked import ForkedCheckpointer, Snapshot

pytestmark = pytest.mark.skipif(not forked.AVAILABLE, reason="needs fork()")
KEY = checkpoint.dev_key("forked-test")


def _task(store: CheckpointStore, partition_id: int, offset: int) -> Snapshot:
    model = linear_model.LogisticRegression()
    for i in range(50):
        model.learn_one({"x": float(i % 7)}, i % 2 == 0)
    state = ModelState(model, metrics.Accuracy(), offset=offset, model_version=50, events=50)
    return Snapshot(partition_id, store.next_epoch(partition_id), offset, 50, state, KEY)


def _opener(url: str, app: str) -> Any:
    section = RedisConfig(url=SecretStr(url), key_prefix="sltest", socket_timeout_s=2.0)
    return lambda: open_store(section, app, "topic")


def test_child_writes_the_state_as_it_was_at_fork_time(redis_url: str) -> None:
    app = f"forked-{uuid.uuid4().hex[:8]}"
    store = _opener(redis_url, app)()
    tasks = [_task(store, 0, 100), _task(store, 1, 200)]
    expected = {t.partition_id: t.state.model.predict_proba_one({"x": 3.0}) for t in tasks}
    forker = ForkedCheckpointer(_opener(redis_url, app))
    forker.start(tasks)
    assert forker.busy
    for t in tasks:  # the parent goes on learning; the child's copy must not see it
        t.state.model.learn_one({"x": 3.0}, False)
        t.state.offset += 1
        t.state.events += 1
    outcomes = forker.poll(wait=True)
    assert not forker.busy and not forker.in_flight
    assert [(o.job.partition_id, o.job.offset, o.result.ok if o.result else None) for o in outcomes] == [(0, 100, True), (1, 200, True)]
    for t in tasks:
        stored = store.read_checkpoint(t.partition_id)
        assert stored is not None and stored.offset == t.partition_id * 100 + 100
        restored = checkpoint.decode(stored.blob, KEY)
        assert restored.offset == stored.offset
        assert restored.model.predict_proba_one({"x": 3.0}) == expected[t.partition_id]
        assert [o.nbytes for o in outcomes if o.job.partition_id == t.partition_id] == [len(stored.blob)]


def test_child_of_a_fenced_owner_is_refused(redis_url: str) -> None:
    app = f"forked-{uuid.uuid4().hex[:8]}"
    store = _opener(redis_url, app)()
    task = _task(store, 0, 10)
    newer = store.next_epoch(0)  # another owner took the partition
    forker = ForkedCheckpointer(_opener(redis_url, app))
    forker.start([task])
    outcomes = forker.poll(wait=True)
    assert outcomes[0].result is not None
    assert outcomes[0].result.code == CAS_STALE_EPOCH and outcomes[0].result.current == newer
    assert store.read_checkpoint(0) is None


def test_unreachable_redis_is_reported_not_silent(redis_url: str) -> None:
    app = f"forked-{uuid.uuid4().hex[:8]}"
    store = _opener(redis_url, app)()
    task = _task(store, 0, 10)
    forker = ForkedCheckpointer(_opener("redis://127.0.0.1:1/0", app))
    forker.start([task])
    outcomes = forker.poll(wait=True)
    assert outcomes[0].result is None
    assert "ConnectionError" in outcomes[0].error
    assert store.read_checkpoint(0) is None


def test_partitions_checkpoint_concurrently_one_child_each(redis_url: str) -> None:
    """Partitions commit at staggered moments: each must get its own child, none may wait for another's."""
    app = f"forked-{uuid.uuid4().hex[:8]}"
    store = _opener(redis_url, app)()
    t0, t1 = _task(store, 0, 5), _task(store, 1, 7)
    forker = ForkedCheckpointer(_opener(redis_url, app))
    forker.start([t0])
    assert forker.in_flight == {0}  # not reaped before poll(): the second start must not wait for it
    forker.start([t1])
    assert forker.in_flight == {0, 1}
    outcomes = forker.poll(wait=True)
    assert sorted((o.job.partition_id, o.result.ok if o.result else None) for o in outcomes) == [(0, True), (1, True)]
    assert [store.read_checkpoint(p).offset for p in (0, 1)] == [5, 7]  # type: ignore[union-attr]
