"""Delivery reports: which produced messages the broker refused, and whether retrying can help.

Why this exists: `Producer.flush()` returns how many messages are still
queued, so it returns 0 both when every message was acknowledged and when
some failed for good (too large for the topic, not authorized, topic
deleted, timed out). Taking 0 as success loses those messages. A
`DeliveryReports` is given to each `produce(..., on_delivery=...)`; with
`delivery.report.only.error` on (see `kafka_io.ENGINE_PRODUCER`) it is
called only for failures, so the success path costs nothing.

One broker error fails a whole produce request: a message too large for the
topic takes down the small messages batched with it, which all report the
same error. So a failure is a batch-level fact; `first` keeps the earliest
one and `largest` the biggest message that failed (the likely culprit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError

# Errors that say "not now" rather than "never": the batch is replayed, not stopped.
_TRANSIENT = {
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError._STATE,  # produce() into a transaction that has already failed: a consequence, not a cause
}
# Messages purged by abort_transaction() (or flushed away on close): our own doing, not the broker's.
_PURGED = {KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT}
# Fencing is handled by the commit (the transaction's verdict), never as a delivery problem.
_FENCED = {
    KafkaError._FENCED,
    KafkaError.PRODUCER_FENCED,
    KafkaError.INVALID_PRODUCER_EPOCH,
    KafkaError.INVALID_PRODUCER_ID_MAPPING,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    # A message failed because its producer hit a fatal error (e.g. fenced): the producer's
    # state, not the message's. Taken as permanent, it halted a partition whose producer was
    # merely fenced, where re-owning it (a new producer) is the cure.
    KafkaError._FATAL,
    # The idempotent producer's sequence bookkeeping, not the message: after a broker that stopped
    # answering (requests timed out, then retried) the broker may report the batch's sequence out of
    # order, and librdkafka raises a fatal error. Taken as permanent, it halted a partition (seen with
    # a broker frozen for 20 s) where a new producer, re-owning the partition, sends the batch again.
    KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
    KafkaError.DUPLICATE_SEQUENCE_NUMBER,
    KafkaError.UNKNOWN_PRODUCER_ID,
    KafkaError._GAPLESS_GUARANTEE,
    KafkaError._INCONSISTENT,
}


def is_permanent(err: KafkaError) -> bool:
    """Retrying the same message cannot succeed (size, authorization, unknown topic, invalid record)."""
    code = err.code()
    return not (err.retriable() or err.fatal() or code in _TRANSIENT or code in _FENCED or code in _PURGED)


@dataclass(frozen=True)
class Failure:
    """One message the broker (or the client) refused."""

    code: str  # librdkafka's name, e.g. MSG_SIZE_TOO_LARGE
    reason: str
    topic: str
    size: int  # bytes of key + value
    offset: int | None  # the input offset the message answers, when the caller can tell
    permanent: bool

    def describe(self) -> str:
        at = f" (input offset {self.offset})" if self.offset is not None else ""
        return f"{self.code} producing {self.size} bytes to {self.topic}{at}: {self.reason}"


class DeliveryReports:
    """Failed deliveries since the last `clear()`; the on_delivery callback of one partition's messages.

    `locate(msg)` names the input offset a produced message answers (the
    caller knows its record format; this module does not).
    """

    def __init__(self, locate: Callable[[Any], int | None] | None = None) -> None:
        self._locate = locate
        self.failed = 0
        self.first: Failure | None = None
        self.largest: Failure | None = None

    def __call__(self, err: KafkaError | None, msg: Any) -> None:
        if err is None or err.code() in _PURGED:
            return
        self.record(err, msg.topic() or "?", len(msg.value() or b"") + len(msg.key() or b""), self._offset_of(msg))

    def record(self, err: KafkaError, topic: str, size: int, offset: int | None) -> None:
        """A failure seen by the caller itself (produce() raised), or by the callback."""
        failure = Failure(err.name(), err.str(), topic, size, offset, is_permanent(err))
        self.failed += 1
        if self.first is None or (failure.permanent and not self.first.permanent):
            self.first = failure
        if self.largest is None or size > self.largest.size:
            self.largest = failure

    @property
    def permanent(self) -> Failure | None:
        """The failure that stops the partition (the largest refused message), if any is permanent."""
        if self.first is None or not self.first.permanent:
            return None
        return self.largest if self.largest is not None and self.largest.permanent else self.first

    def clear(self) -> None:
        self.failed = 0
        self.first = self.largest = None

    def _offset_of(self, msg: Any) -> int | None:
        if self._locate is None:
            return None
        try:
            return self._locate(msg)
        except Exception:  # a report must never raise inside librdkafka's callback
            return None
