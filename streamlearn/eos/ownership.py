"""Step 1, take ownership: the Redis epoch, the lease and the transactional producer.

`take` bumps the partition's epoch in Redis and sets the lease in one Lua
step and, under exactly_once, creates the transactional producer
`{app}-{topic}-{p}` and calls init_transactions(): the broker bumps the
producer epoch, which fences any older owner and aborts its open
transaction (I3 for output). The Redis epoch fences older owners'
checkpoints, offset writes, status and lease (I3 for state: every CAS
refuses a stale epoch). `ensure_owner` and `renew_lease` are the two checks
that tell this owner it has been replaced.

A first take (the Coordinator assigned the partition) is unconditional: it
fences whoever held it. A re-take (`retake=True`, a recovery after a fenced
or failed producer) is a compare-and-increment on the epoch this owner
holds. Checking the epoch and then bumping it in two round trips let a
woken zombie pass the check, lose the CPU, and bump the epoch past the
rightful new owner, which then dropped the partition.

Redis calls made here outside the runtime's own outage wrapper go through
`redis_call`, which the runtime provides so that an outage pauses this
partition instead of failing the worker (`direct` in tests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from confluent_kafka import KafkaException, Producer

from connectors import kafka_io
from connectors.redis_store import CheckpointStore
from streamlearn import faults, logs
from streamlearn.config import AppConfig
from streamlearn.eos.bounded import BoundedCalls, CallStuck
from streamlearn.eos.heartbeat import Heartbeat
from streamlearn.errors import OwnershipLostError

log = logs.get("protocol")

TXN_TIMEOUT_S = 30.0  # bound on one blocking transactional call (init, flush, abort)
_T = TypeVar("_T")


class RedisCall(Protocol):
    """Runs a Redis call, waiting out an outage (the runtime's pause) rather than raising."""

    def __call__(self, fn: Callable[[], _T]) -> _T: ...


def direct(fn: Callable[[], _T]) -> _T:
    """A RedisCall with no waiting: an outage raises (unit tests, tools)."""
    return fn()


class Ownership:
    """This owner's claim on one partition: its epoch, its lease and (exactly_once) its producer."""

    def __init__(
        self,
        cfg: AppConfig,
        store: CheckpointStore,
        partition_id: int,
        owner: str,
        heartbeat: Heartbeat,
        shared_producer: Producer | None = None,
        redis_call: RedisCall = direct,
    ) -> None:
        self.cfg = cfg
        self.redis_call = redis_call
        self.store = store
        self.partition_id = partition_id
        self.topic = cfg.kafka.input_topic
        self.owner = owner
        self.heartbeat = heartbeat
        self.eos = cfg.processing.guarantee == "exactly_once"
        self.lease_ms = int(cfg.processing.owner_lease_s * 1000)
        self.epoch = 0
        # exactly_once: this partition's transactional producer; at_least_once: the worker's shared one.
        self.producer: Producer | None = shared_producer
        self.calls = BoundedCalls()  # the transactional producer's blocking calls, bounded by our clock (`bounded`)

    def ctx(self, **more: Any) -> dict[str, Any]:
        """The fields every protocol log line carries, so one partition's history can be grepped."""
        return {"topic": self.topic, "partition": self.partition_id, "epoch": self.epoch, **more}

    def lost(self, epoch: int, reason: str) -> OwnershipLostError:
        return OwnershipLostError(self.topic, self.partition_id, epoch, reason)

    def take(self, *, retake: bool = False, mark: Callable[[str], None] = lambda _step: None) -> None:
        """Bump the epoch (re-take: only if it is still ours), set the lease, fence older producers.

        `mark` is told when each step ends (`takeover.Timeline`).
        """
        expected = self.epoch if retake else None
        res = self.redis_call(lambda: self.store.take_epoch(self.partition_id, self.owner, self.lease_ms, expected=expected))
        if not res.ok:
            raise self.lost(self.epoch, f"re-take refused: Redis epoch is now {res.current}")
        self.epoch = res.current
        mark("epoch")
        if faults.ENABLED:
            faults.point("take_ownership")
        if self.eos:
            if self.producer is not None:
                self.close()
            self.calls = BoundedCalls()
            self.producer = kafka_io.make_transactional_producer(
                self.cfg.kafka.bootstrap,
                f"{self.cfg.app}-{self.topic}-{self.partition_id}",
                self.cfg.kafka.transaction_timeout_ms,
                self.cfg.kafka.producer,
                linger_ms=txn_linger_ms(self.cfg.processing.commit_interval_ms),
            )
            # Fences the previous owner and aborts its open transaction.
            self.heartbeat.beat()
            mark("producer_created")
            # Bounded like the commit's calls (`bounded`): one that outlives its timeout fails this take
            # (the run is called again) instead of holding the loop until the worker is killed.
            try:
                self.calls.run(self.producer.init_transactions, TXN_TIMEOUT_S)
            except CallStuck as exc:
                logs.event(log, logging.WARNING, "transaction_call_stuck", **self.ctx(step="init_transactions", reason=str(exc)))
                raise
            mark("init_transactions")
            # Kafka has no compare-and-set: an owner paused between its Redis bump and this init
            # fences, when it wakes, the newer owner's producer. Checked after the init, the two
            # orders agree: if the epoch is still ours, any newer owner fences us later; if not,
            # we leave before producing, and the owner we fenced re-takes (its epoch is intact).
            self.ensure_owner()
        logs.event(log, logging.INFO, "ownership_taken", **self.ctx(owner=self.owner))

    def ensure_owner(self) -> None:
        """OwnershipLostError if another owner has bumped the partition's Redis epoch since ours."""
        current = self.redis_call(lambda: self.store.current_epoch(self.partition_id))
        if current != self.epoch:
            raise self.lost(self.epoch, f"Redis epoch is now {current}")

    def producer_failed(self, exc: KafkaException) -> None:
        """A producer error mid-batch: raised again unless it is fatal, which the task answers by recovering.

        A zombie can see its fencing first as a non-fatal state error (librdkafka learns
        of it asynchronously): if the epoch moved, leave through OwnershipLostError, not a crash.
        """
        if not kafka_io.is_fatal(exc):
            self.ensure_owner()
            raise exc
        logs.event(log, logging.WARNING, "producer_fatal", **self.ctx(error=str(exc.args[0])[:200]))

    def renew_lease(self) -> None:
        res = self.store.renew_lease(self.partition_id, self.epoch, self.owner, self.lease_ms)
        if not res.ok:
            raise self.lost(self.epoch, f"Redis epoch is now {res.current}")

    def release_lease(self) -> None:
        """Graceful stop; a stale epoch (replaced meanwhile) leaves the new owner's lease alone."""
        self.store.release_lease(self.partition_id, self.epoch, self.owner)

    def abort(self) -> bool:
        """Abort the open transaction; False if the producer could not (fenced or failed: it must be replaced)."""
        if self.eos and self.producer is not None:
            try:
                self.calls.run(self.producer.abort_transaction, TXN_TIMEOUT_S)
            except KafkaException:
                return False
            except CallStuck as exc:
                logs.event(log, logging.WARNING, "transaction_call_stuck", **self.ctx(step="abort", reason=str(exc)))
                return False
        return True

    def close(self) -> None:
        if self.producer is not None and self.eos and not self.calls.stuck:
            try:
                self.producer.flush(5)
            except KafkaException as exc:
                # A fenced or fatally failed producer has nothing left that could ever commit.
                logs.event(log, logging.INFO, "producer_closed_with_error", **self.ctx(error=str(exc.args[0])[:200]))
        # A producer whose call is stuck is not flushed (that would block too): the new owner's
        # init_transactions fences it, and the stuck call's thread holds it until it returns.
        self.producer = None
        self.calls.close()


MAX_TXN_LINGER_MS = 1000  # bounds what waits in the client's queue between a long interval's commits


def txn_linger_ms(commit_interval_ms: int) -> int:
    """The transactional producer's linger.ms: the commit interval (the commit flushes anyway), at least 5, at most 1 s."""
    return max(5, min(commit_interval_ms, MAX_TXN_LINGER_MS))
