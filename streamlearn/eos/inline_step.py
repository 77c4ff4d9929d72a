"""Step 3 with inline labels: live records, in chunks paced to the open transaction's budget.

Records fetched before a seek are dropped (they are already in the state),
records below K are replayed silently (``restore.replay``), and the live
rest goes through ``model.step`` with the emitters in chunks sized by
``pacing`` so that a batch never outlives its transaction. When the batch
has used its time budget the step stops and says so (`Ran.commit_now`):
committing is the task's job, so the step never calls back up into it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer, TopicPartition

from connectors.kafka_delivery import DeliveryReports
from streamlearn.config import AppConfig
from streamlearn.eos.commit import OpenBatch
from streamlearn.eos.emitter import emitters, sample_emitter
from streamlearn.eos.heartbeat import Heartbeat
from streamlearn.eos.ownership import Ownership
from streamlearn.eos.pacing import Pace
from streamlearn.eos.phase import Phase
from streamlearn.eos.restore import replay
from streamlearn.model import step
from streamlearn.model.codec import EventDecoder
from streamlearn.models.publisher import Publisher
from streamlearn.state.checkpoint import ModelState


@dataclass(frozen=True)
class Ran:
    """Where a run of chunks stopped: what is left, and whether the task must commit or hand back now."""

    rest: Sequence[Any]
    commit_now: bool = False  # the batch used its time budget: commit before the next chunk
    deadline_passed: bool = False  # the caller's `until` passed: hand `rest` back after any commit


class InlineStep:
    """One partition's live processing when each event carries its own label."""

    def __init__(self, cfg: AppConfig, ownership: Ownership, decoder: EventDecoder, is_classifier: bool,
                 out_partition: int, heartbeat: Heartbeat, publisher: Publisher | None, deliveries: DeliveryReports,
                 dlq_limit: int) -> None:
        self.cfg, self.ownership, self.decoder, self.is_classifier = cfg, ownership, decoder, is_classifier
        self.partition_id, self.topic = ownership.partition_id, ownership.topic
        self.out_partition, self.heartbeat, self.publisher = out_partition, heartbeat, publisher
        self.deliveries, self.dlq_limit = deliveries, dlq_limit
        # A transaction stays open at most commit_interval_ms, and well inside the broker's timeout (pacing.py).
        txn_s = cfg.kafka.transaction_timeout_ms / 1000
        self.pace = Pace(min(cfg.processing.commit_interval_ms / 1000, txn_s / 3), txn_s, ownership.ctx)

    # ---- 2. restore: what the task does after a restore --------------------------------------------
    @staticmethod
    def restored(state: ModelState, committed: int) -> Phase:
        """Records in [R, K) are replayed as they arrive (see `live`)."""
        return Phase.REPLAYING if committed > state.offset else Phase.RUNNING

    @staticmethod
    def assignment(state: ModelState | None) -> list[TopicPartition]:
        return []  # the input partition only

    @staticmethod
    def commit_offsets(state: ModelState) -> Sequence[TopicPartition]:
        return ()  # the input offset only

    @staticmethod
    def before_checkpoint(state: ModelState) -> None:
        pass  # nothing besides the model state to position

    # ---- 3. process ---------------------------------------------------------------------------------
    def live(self, state: ModelState, records: Sequence[Any], replay_until: int) -> tuple[Sequence[Any], bool]:
        """The records still to process live, and whether a replay of [R, K) finished on the way."""
        if records[0].offset() < state.offset:
            # Fetched before a seek (recovery): already part of the state.
            records = [r for r in records if r.offset() >= state.offset]
            if not records:
                return [], False
        if replay_until > state.offset:
            return replay(state, records, replay_until, self.decoder, self.partition_id, self.is_classifier,
                          self.publisher.observe if self.publisher is not None else None)
        return records, False

    def run(self, state: ModelState, records: Sequence[Any], until: float | None, producer: Producer,
            batch: OpenBatch) -> Ran:
        """Chunks into the open batch until its budget is spent, `until` passes or the records run out."""
        kc = self.cfg.kafka
        sample = sample_emitter(producer, self.cfg.samples_topic, self.partition_id, self.deliveries)  # None: no sample log
        emit, dead_letter = emitters(producer, self.cfg.app, self.topic, self.partition_id, kc.output_topic, kc.dlq_topic,
                                     self.out_partition, self.ownership.ctx, self.deliveries, self.dlq_limit)
        i = 0
        while i < len(records):
            now = self.heartbeat.beat()
            batch.begin(producer, now, self.ownership.eos)
            chunk = records[i:i + self.pace.chunk(len(records) - i, batch.open_for(now))]
            step.process(state, chunk, self.decoder, self.partition_id, self.is_classifier, emit, dead_letter,
                         self.publisher.observe if self.publisher is not None else None, sample)
            done_at = time.monotonic()
            self.pace.observe(len(chunk), done_at - now)
            batch.records += len(chunk)
            i += len(chunk)
            commit_now = batch.open_for(done_at) >= self.pace.budget_s
            deadline_passed = until is not None and done_at >= until
            if commit_now or deadline_passed:
                return Ran(records[i:], commit_now, deadline_passed)
        return Ran([])
