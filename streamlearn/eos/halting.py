"""A partition halted: Kafka refuses one of its outputs for good.

Replaying would fail the same way forever, so the batch is aborted and the
partition is no longer read. The committed offset stays before the refused
record (nothing lost); the task keeps its lease, so no other worker picks
the partition up to fail again, and publishes the error with its status
(phase FAILED) until someone fixes the cause.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from confluent_kafka import Consumer, TopicPartition

from connectors.kafka_delivery import DeliveryReports, Failure
from streamlearn import logs
from streamlearn.eos.commit import OpenBatch
from streamlearn.eos.ownership import Ownership
from streamlearn.errors import DeliveryFailedError

log = logs.get("protocol")


def halt(ownership: Ownership, batch: OpenBatch, deliveries: DeliveryReports, consumer: Consumer,
         failure: Failure | None, reading: Sequence[TopicPartition], committed_offset: int) -> DeliveryFailedError:
    """Abort the batch and pause `reading` (the partition's assignment); returns the error to publish."""
    ownership.abort()
    batch.reset()
    deliveries.clear()
    offset = failure.offset if failure is not None else None
    cause = failure.describe() if failure is not None else "unknown delivery failure"
    error = DeliveryFailedError(ownership.topic, ownership.partition_id, offset, ownership.epoch, cause)
    consumer.pause([TopicPartition(tp.topic, tp.partition) for tp in reading])
    logs.event(log, logging.ERROR, "partition_halted", **ownership.ctx(
        offset=offset, committed_offset=committed_offset, error=error.message, hint=error.hint))
    return error
