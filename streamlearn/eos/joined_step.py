"""The task's side of label mode (labels.source: topic): steps 2-5 where they differ from inline labels.

The join itself, its journal and its replay live in ``label_step``; this is
what the task asks of a partition's mode at each step (the same questions
``inline_step.InlineStep`` answers for inline labels): the phase after a
restore, the extra partition to read (labels), the extra offset to commit
(labels), the journal position to record before a checkpoint, and one
chunk of events and labels processed into the open transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from connectors.kafka_delivery import DeliveryReports
from streamlearn.config import AppConfig
from streamlearn.eos.commit import OpenBatch
from streamlearn.eos.heartbeat import Heartbeat
from streamlearn.eos.inline_step import InlineStep, Ran
from streamlearn.eos.label_step import LabelMode
from streamlearn.eos.ownership import Ownership
from streamlearn.eos.phase import Phase
from streamlearn.model.codec import EventDecoder
from streamlearn.models.publisher import Publisher
from streamlearn.state.checkpoint import ModelState


class JoinedStep:
    """One partition's events joined with its labels, one journalled chunk per poll."""

    def __init__(self, cfg: AppConfig, ownership: Ownership, consumer: Consumer, decoder: EventDecoder,
                 is_classifier: bool, out_partition: int, heartbeat: Heartbeat, deliveries: DeliveryReports,
                 dlq_limit: int, publisher: Publisher | None = None) -> None:
        self.topic, self.ownership, self.heartbeat = ownership.topic, ownership, heartbeat
        self.out_partition, self.deliveries, self.dlq_limit = out_partition, deliveries, dlq_limit
        # The publish gate's window is fed by the join's learning steps, live and replayed (labels.join).
        self.labels = LabelMode(cfg, consumer, ownership.partition_id, decoder, is_classifier, ownership.ctx, heartbeat.beat,
                                publisher.observer if publisher is not None else None)

    # ---- 2. restore -----------------------------------------------------------------------------------
    def restored(self, state: ModelState, committed: int) -> Phase:
        """Label mode replays here, from the join journal, and reads live from the committed offsets."""
        self.labels.restore(state, committed)
        return Phase.RUNNING

    def assignment(self, state: ModelState | None) -> list[TopicPartition]:
        return [self.labels.assignment(state)]

    # ---- 3. process -----------------------------------------------------------------------------------
    @staticmethod
    def live(state: ModelState, records: Sequence[Any], replay_until: int) -> tuple[Sequence[Any], bool]:
        return records, False  # the journal replay happened at restore; the join drops what a seek refetched

    def run(self, state: ModelState, records: Sequence[Any], until: float | None, producer: Producer,
            batch: OpenBatch) -> Ran:
        """The poll's events and labels of this partition, one journalled chunk."""
        batch.begin(producer, self.heartbeat.beat(), self.ownership.eos)
        topic = self.topic
        events: list[Any] = []
        labels: list[Any] = []
        for m in records:  # one pass: topic() builds a new str per call
            (events if m.topic() == topic else labels).append(m)
        self.labels.process(state, events, labels, producer, self.out_partition, self.deliveries, self.dlq_limit)
        batch.records += len(records)
        return Ran([])

    # ---- 4. commit, 5. checkpoint ---------------------------------------------------------------------
    def commit_offsets(self, state: ModelState) -> Sequence[TopicPartition]:
        return self.labels.commit_offsets(state)

    def before_checkpoint(self, state: ModelState) -> None:
        self.labels.mark_journal_position(state)


def partition_step(cfg: AppConfig, ownership: Ownership, consumer: Consumer, decoder: EventDecoder, is_classifier: bool,
                   out_partition: int, heartbeat: Heartbeat, publisher: Publisher | None, deliveries: DeliveryReports,
                   dlq_limit: int) -> InlineStep | JoinedStep:
    """The mode a partition runs steps 2-5 in: labels joined from their topic, or inline in each event."""
    if cfg.label_mode:
        return JoinedStep(cfg, ownership, consumer, decoder, is_classifier, out_partition, heartbeat, deliveries, dlq_limit,
                          publisher)
    return InlineStep(cfg, ownership, decoder, is_classifier, out_partition, heartbeat, publisher, deliveries, dlq_limit)
