"""Issue #14, finding 10: Redis calls a step makes inside a commit cycle wait out an outage.

The at_least_once offset write and a recovery's epoch check used to call
Redis directly: an outage there raised out of the worker's loop and failed
the run (at_least_once then re-emitted the batch). They now go through the
`redis_call` the runtime provides (its pause-and-retry); here a scripted
store fails each call once and the call is expected to be retried, not raised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis

from connectors.redis_store import CasResult
from streamlearn.config import load_config
from streamlearn.eos.task import PartitionTask
from streamlearn.state.checkpoint import ModelState

T = TypeVar("T")


class FlakyStore:
    """Each Redis call fails once with a connection error, then answers."""

    def __init__(self) -> None:
        self.failed: set[str] = set()
        self.offset: int | None = None

    def _once(self, name: str) -> None:
        if name not in self.failed:
            self.failed.add(name)
            raise redis.ConnectionError("Connection refused")

    def commit_offset(self, partition: int, epoch: int, offset: int) -> CasResult:
        self._once("commit_offset")
        self.offset = offset
        return CasResult(True, 1, 0)

    def current_epoch(self, partition: int) -> int:
        self._once("current_epoch")
        return 7


class Flushed:
    def flush(self, timeout: float) -> int:
        return 0


class Pause:
    """What the worker's with_redis does, minus the waiting: retry while Redis is unreachable."""

    def __init__(self) -> None:
        self.pauses = 0

    def __call__(self, fn: Callable[[], T]) -> T:
        while True:
            try:
                return fn()
            except redis.ConnectionError:
                self.pauses += 1


def alo_task(store: Any, pause: Pause) -> PartitionTask:
    cfg = load_config(environ={}, overrides={"processing": {"guarantee": "at_least_once"}})
    task = PartitionTask(cfg, store, None, 3, "w0", b"k", None, True, 1,  # type: ignore[arg-type]
                         shared_producer=Flushed(), redis_call=pause)  # type: ignore[arg-type]
    task.ownership.epoch = 7
    return task


def test_alo_offset_write_waits_out_an_outage_instead_of_failing_the_run() -> None:
    store, pause = FlakyStore(), Pause()
    task = alo_task(store, pause)
    task.state = ModelState(None, None, offset=42, model_version=0, events=0)
    task.batch.records = 5
    assert task.commit()
    assert store.offset == 42 and task.committed_offset == 42 and not task.batch.open
    assert pause.pauses == 1


def test_ownership_check_waits_out_an_outage() -> None:
    store, pause = FlakyStore(), Pause()
    task = alo_task(store, pause)
    task.ownership.ensure_owner()  # epoch 7 is still ours: no OwnershipLostError, no ConnectionError
    assert pause.pauses == 1


def test_an_owner_that_finds_a_newer_epoch_after_its_producer_init_leaves_before_producing(monkeypatch: Any) -> None:
    """A take paused between its Redis bump and init_transactions: the newer owner took over meanwhile.

    Its late init fences the newer owner's producer (Kafka has no compare-and-set), so it must
    not go on to produce: the epoch check after the init raises OwnershipLostError.
    """
    import pytest

    from streamlearn.eos import ownership
    from streamlearn.eos.heartbeat import Heartbeat
    from streamlearn.errors import OwnershipLostError

    class Store:
        epoch = 0

        def take_epoch(self, partition: int, owner: str, lease_ms: int, expected: int | None = None) -> CasResult:
            self.epoch += 1
            return CasResult(True, self.epoch, 0)

        def current_epoch(self, partition: int) -> int:
            return self.epoch

    store = Store()

    class Producer:
        def init_transactions(self, timeout: float) -> None:
            store.epoch += 1  # the newer owner's take, while this one was paused

    monkeypatch.setattr(ownership.kafka_io, "make_transactional_producer", lambda *a, **k: Producer())
    owner = ownership.Ownership(load_config(environ={}), store, 0, "w0", Heartbeat())  # type: ignore[arg-type]
    with pytest.raises(OwnershipLostError, match="Redis epoch is now 2"):
        owner.take()
