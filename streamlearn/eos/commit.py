"""Step 4, commit: when a partition's open batch is committed, and how.

Exactly-once: the input offset goes into the transaction, then the
transaction commits; predictions, dead letters and the offset become visible
together (I1). Only what librdkafka calls retriable is retried; anything else
aborts, and the task rebuilds its model from the checkpoint (I2).
At-least-once: flush the produced predictions, then record the offset in
Redis under the epoch CAS; a crash between the two re-emits predictions.

Delivery reports decide too, in both modes: `flush()` returns 0 also when
messages failed for good, so the partition's `DeliveryReports` are read
before any offset moves. A failed delivery never lets the offset pass it:
a transient failure aborts and replays the batch (like a failed commit); a
permanent one (the broker will refuse the same message on every replay)
halts the partition with an error naming the input offset and the cause,
instead of aborting and replaying forever.

Cadence: a batch commits every `commit_interval_ms`, or sooner at
`max_batch` records, with the partitions' deadlines staggered over the
interval.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from connectors import kafka_io
from connectors.kafka_delivery import DeliveryReports
from connectors.redis_store import CAS_STALE_EPOCH, CheckpointStore
from streamlearn import logs
from streamlearn.eos.bounded import GRACE_S, BoundedCalls, CallStuck
from streamlearn.eos.heartbeat import Heartbeat
from streamlearn.eos.ownership import TXN_TIMEOUT_S, Ownership, RedisCall, direct
from streamlearn.errors import OwnershipLostError

log = logs.get("protocol")

COMMIT_BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
_COMMIT_RETRIES = 5


@dataclass
class OpenBatch:
    """What a partition has produced since its last commit."""

    transaction: bool = False  # exactly_once: a Kafka transaction is begun and not yet committed or aborted
    records: int = 0  # live records processed into the batch (at_least_once: produced, not yet flushed)
    opened_at: float = 0.0  # monotonic time the batch took its first live record

    @property
    def open(self) -> bool:
        """Something to commit: no checkpoint may be taken until it is (I4)."""
        return self.transaction or self.records > 0

    def open_for(self, now: float) -> float:
        """Seconds the batch (its transaction) has been open; 0 when nothing is open."""
        return now - self.opened_at if self.open else 0.0

    def begin(self, producer: Producer, now: float, transactional: bool) -> None:
        """Before a live record goes in: mark when the batch opened and, exactly_once, begin its transaction."""
        if not self.open:
            self.opened_at = now
        if transactional and not self.transaction:
            producer.begin_transaction()
            self.transaction = True

    def reset(self) -> None:
        self.transaction = False
        self.records = 0
        self.opened_at = 0.0


class Verdict(enum.Enum):
    COMMITTED = "committed"
    ABORT = "abort"  # the transaction is aborted: restore the model, the producer is still ours
    REOWN = "reown"  # the producer is fenced or failed: take ownership again (if still ours), then restore
    HALT = "halt"  # a delivery failed for good: abort and stop the partition (replaying would fail the same way)


def _direct(fn: Callable[..., Any], timeout_s: float, *args: Any) -> Any:
    """A call bounded by librdkafka's timeout alone (unit tests, at_least_once tools)."""
    return fn(*args, timeout_s)


def delivery_verdict(reports: DeliveryReports, verdict: Verdict) -> Verdict:
    """A permanent delivery failure turns a failed outcome into HALT (it cannot commit anyway).

    Except REOWN: the producer itself failed (fenced, or a fatal error), so what it could not
    deliver says nothing about the message. A zombie finds it is one (the epoch check), and an
    owner re-sends with a new producer; a message that is refused for good is refused again
    then, by a healthy producer, and halts the partition on that attempt."""
    if verdict is Verdict.REOWN or verdict is Verdict.COMMITTED:
        return verdict
    return Verdict.HALT if reports.permanent is not None else verdict


def commit_bound_s(transaction_timeout_ms: int) -> float:
    """The longest `commit_transaction` can take when every call honours its bound (`bounded`): every
    attempt's two calls waited out in full. Past it, something else is blocking (`eos.inflight`)."""
    return _COMMIT_RETRIES * 2 * (min(TXN_TIMEOUT_S, transaction_timeout_ms / 1000) + GRACE_S)


def commit_transaction(
    producer: Producer,
    consumer: Consumer,
    topic: str,
    partition_id: int,
    next_offset: int,
    transaction_timeout_ms: int,
    heartbeat: Heartbeat,
    ctx: Callable[..., dict[str, Any]],
    also: Sequence[TopicPartition] = (),
    calls: BoundedCalls | None = None,
) -> Verdict:
    """Offsets into the transaction, then commit; retry only what librdkafka says is retriable.

    The offsets must be in the transaction before it commits: committing
    predictions without their input offsets would replay (and re-emit)
    them after a restart. So a failed send_offsets is retried, never skipped.
    """
    offsets = [TopicPartition(topic, partition_id, next_offset), *also]  # also: label mode's label partition
    meta = consumer.consumer_group_metadata()
    # One call may not outlive the transaction itself: past that the broker aborts it anyway.
    call_timeout = min(TXN_TIMEOUT_S, transaction_timeout_ms / 1000)
    offsets_added = False
    run = calls.run if calls is not None else _direct
    for attempt in range(_COMMIT_RETRIES):
        heartbeat.beat()
        try:
            if not offsets_added:
                run(producer.send_offsets_to_transaction, call_timeout, offsets, meta)
                offsets_added = True
            run(producer.commit_transaction, call_timeout)
            return Verdict.COMMITTED
        except CallStuck as exc:
            # librdkafka did not return within its own timeout (`bounded`): the outcome is unknown,
            # as after a fatal error; a new producer fences this one and the partition is restored.
            logs.event(log, logging.WARNING, "transaction_call_stuck", **ctx(
                offset=next_offset, step="commit" if offsets_added else "send_offsets", reason=str(exc)))
            return Verdict.REOWN
        except KafkaException as exc:
            if kafka_io.is_fenced(exc):
                # Fenced by a newer owner (then the Redis epoch moved: recovery raises
                # OwnershipLostError), or by the broker aborting our timed-out transaction
                # (e.g. across a broker restart; nobody else owns the partition: re-own it).
                logs.event(log, logging.WARNING, "transaction_fenced", **ctx(offset=next_offset, reason=str(exc.args[0])))
                return Verdict.REOWN
            if (kafka_io.requires_abort(exc) or kafka_io.is_fatal(exc) or not kafka_io.is_retriable(exc)
                    or attempt == _COMMIT_RETRIES - 1):
                logs.event(log, logging.WARNING, "transaction_aborted", **ctx(offset=next_offset, reason=str(exc.args[0])))
                return Verdict.REOWN if kafka_io.is_fatal(exc) else Verdict.ABORT
            logs.event(log, logging.WARNING, "commit_retry", **ctx(
                offset=next_offset, attempt=attempt + 1, step="commit" if offsets_added else "send_offsets", reason=str(exc.args[0])))
    raise AssertionError("unreachable: the last attempt returns")


def batch_verdict(producer: Producer, consumer: Consumer, store: CheckpointStore, reports: DeliveryReports,
                  ownership: Ownership, next_offset: int, transaction_timeout_ms: int, heartbeat: Heartbeat,
                  also: Sequence[TopicPartition], redis_call: RedisCall = direct) -> Verdict:
    """How the open batch ends, in either mode: delivery reports first, then the commit itself."""
    topic, partition_id = ownership.topic, ownership.partition_id
    if not ownership.eos:
        return flush_and_record(producer, store, reports, topic, partition_id, ownership.epoch, next_offset, redis_call)
    early = verdict_before_commit(producer, reports, ownership)
    verdict = early or commit_transaction(producer, consumer, topic, partition_id, next_offset, transaction_timeout_ms,
                                          heartbeat, ownership.ctx, also, ownership.calls)
    # Only a REOWN comes from the poll itself (`_serve_reports`); a HALT is the reports' own verdict.
    return verdict_after_commit(producer, reports, ownership, verdict, served_failed=early is Verdict.REOWN)


def verdict_before_commit(producer: Producer, reports: DeliveryReports, ownership: Ownership) -> Verdict | None:
    """exactly_once, on the loop's thread before the transactional calls: a verdict already known, or None to commit.

    A refused message must be seen before committing (HALT), and a producer already failed
    fatally or fenced says so on poll (REOWN)."""
    failed = _serve_reports(producer, ownership.ctx)
    return failed or (Verdict.HALT if reports.permanent is not None else None)


def verdict_after_commit(producer: Producer, reports: DeliveryReports, ownership: Ownership, verdict: Verdict,
                         *, served_failed: bool) -> Verdict:
    """exactly_once, on the loop's thread once the commit's outcome is known: the batch's verdict.

    A commit that failed may not have served the delivery report that explains it, so reports
    are served again then (not after a failed poll, `served_failed`, nor on a given-up producer)."""
    if verdict is not Verdict.COMMITTED and not served_failed and not ownership.calls.stuck:
        verdict = _serve_reports(producer, ownership.ctx, log_fatal=verdict is not Verdict.REOWN) or verdict
    return delivery_verdict(reports, verdict)


def _serve_reports(producer: Producer, ctx: Callable[..., dict[str, Any]], log_fatal: bool = True) -> Verdict | None:
    """poll(0); REOWN if it raises the producer's fatal error instead (fenced, or failed for good).

    Once a transactional producer is fenced (a newer instance, or the broker aborting a
    timed-out transaction), `poll()` raises that fatal error. It is the commit's verdict,
    like commit_transaction's own fenced error: recover (epoch check, compare-and-increment
    re-take, restore). Left to escape, it failed the worker's whole run, restarting every
    partition it owned, and a recovery's re-take was never attempted.
    """
    try:
        producer.poll(0)
    except KafkaException as exc:
        if not (kafka_io.is_fenced(exc) or kafka_io.is_fatal(exc)):
            raise
        if log_fatal:  # not when the commit has already said so
            logs.event(log, logging.WARNING, "transaction_fenced" if kafka_io.is_fenced(exc) else "producer_fatal",
                       **ctx(reason=str(exc.args[0])[:200], step="poll"))
        return Verdict.REOWN
    return None


def flush_and_record(producer: Producer, store: CheckpointStore, reports: DeliveryReports, topic: str, partition_id: int,
                     epoch: int, next_offset: int, redis_call: RedisCall = direct) -> Verdict:
    """at_least_once: every prediction acknowledged, then the offset written under the epoch CAS.

    A failed delivery means the offset is not written: ABORT (replay the batch,
    re-emitting it) or HALT (a permanent failure). The write goes through
    `redis_call`: a Redis outage here pauses the partition until Redis is back;
    failing instead would restart the worker and re-emit the batch.
    """
    remaining = producer.flush(TXN_TIMEOUT_S)
    if remaining:
        raise kafka_io.KafkaUnavailable(f"{remaining} predictions of {topic}[{partition_id}] not acknowledged within {TXN_TIMEOUT_S:.0f}s")
    if reports.failed:
        return delivery_verdict(reports, Verdict.ABORT)
    res = redis_call(lambda: store.commit_offset(partition_id, epoch, next_offset))
    if not res.ok and res.code == CAS_STALE_EPOCH:
        raise OwnershipLostError(topic, partition_id, epoch, f"Redis epoch is now {res.current}")
    return Verdict.COMMITTED


@dataclass
class CommitStats:
    """Commit latency histogram, published with the status (bounds: COMMIT_BUCKETS_MS, last bucket: above)."""

    hist: list[int] = field(default_factory=lambda: [0] * (len(COMMIT_BUCKETS_MS) + 1))
    sum_ms: float = 0.0
    count: int = 0
    # Batches cut because their transaction had been open for its time budget before the turn's
    # deadline (a model too slow for processing.commit_interval_ms, or a backlog): `PartitionTask.process`.
    budget: int = 0

    def observe(self, ms: float) -> None:
        self.count += 1
        self.sum_ms += ms
        for i, bound in enumerate(COMMIT_BUCKETS_MS):
            if ms <= bound:
                self.hist[i] += 1
                return
        self.hist[-1] += 1


class CommitCadence:
    """Staggered commit deadlines: partition i of n commits at phase i/n of the interval.

    One transaction commit costs a few ms; committing all n back to back made the
    last partition's records wait for n commits, every interval (the latency tail).
    """

    def __init__(self, partition_ids: Iterable[int], interval_s: float, max_batch: int, now: float) -> None:
        ids = sorted(partition_ids)
        self.interval_s = interval_s
        self.max_batch = max_batch
        self._next = {p: now + interval_s * (i + 1) / len(ids) for i, p in enumerate(ids)}

    def soonest(self, partition_ids: Iterable[int]) -> float:
        """The next deadline (infinity with no partitions: a run waiting for a hand-off)."""
        return min((self._next[p] for p in partition_ids if p in self._next), default=math.inf)

    def due(self, open_records: Mapping[int, int], now: float) -> list[int]:
        """The partitions to commit now (deadline passed or batch full); their next deadlines move on.

        A partition handed over while running gets its first deadline one interval from now.
        """
        due = [p for p, n in open_records.items() if self._next.setdefault(p, now + self.interval_s) <= now or n >= self.max_batch]
        for p in due:
            nxt = self._next[p] + self.interval_s
            self._next[p] = nxt if nxt > now else now + self.interval_s
        return due
