"""Label mode's steps 2-4 for one partition: restore by journal replay, process a chunk, what to commit.

Per chunk (the records one poll brought for this partition, events and
labels): decide the idle-clock advances, run the join (`labels.join`) with
outputs into the open transaction (predictions, samples, label dead
letters), and produce one join-journal record naming the chunk's ranges and
advances. The commit then sends BOTH the input partition's and the label
partition's next offsets into the same transaction (`commit_offsets`).

Restore: the checkpoint gives the model, the join state and (E_R, L_R, J_R);
Kafka gives the committed (E_K, L_K). Every journal record from J_R to the
journal's end is replayed through the same `Joiner.run_chunk`, emitting
nothing; afterwards the positions must be (E_K, L_K), or recovery stops
with a ReplayError naming them (never a guess). The state is then exactly
that of a crash-free run: I5, and I2 in label mode (streamlearn.eos).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from connectors import kafka_io
from connectors.kafka_delivery import DeliveryReports
from streamlearn import faults, logs
from streamlearn.config import AppConfig
from streamlearn.eos.emitter import emitters
from streamlearn.eos.journal import PartitionReader, ReplayError, journal_records
from streamlearn.eos.label_pacing import Pacer
from streamlearn.errors import ConfigError
from streamlearn.labels.join import Joiner, JoinState, Outputs
from streamlearn.labels.journal import JournalRecord
from streamlearn.model.codec import EventDecoder
from streamlearn.state.checkpoint import ModelState

log = logs.get("protocol")
#: Longest time between two journal positions (J) taken from the broker; J of the marks in between stays.
MARK_EVERY_S = 30.0
LogContext = Callable[..., dict[str, Any]]


class LabelMode:
    """The join of one partition: its rules, its idle-stream watch, its topics."""

    def __init__(self, cfg: AppConfig, consumer: Consumer, partition_id: int, decoder: EventDecoder, is_classifier: bool,
                 ctx: LogContext, beat: Callable[[], object],
                 feed: Callable[[int], Callable[[tuple[Any, Any, Any]], None] | None] | None = None) -> None:
        f = cfg.fields
        self.beat = beat  # a long replay is work, not a hang: the runtime's liveness check must see it
        self.cfg, self.consumer, self.partition_id, self.ctx = cfg, consumer, partition_id, ctx
        self.joiner = Joiner(cfg.labels, decoder, (f.id, f.label, f.ts), partition_id, is_classifier)
        self.joiner.feed = feed  # the publish gate's window: joined learning steps, live and replayed
        self.input_topic, self.label_topic, self.journal_topic = cfg.kafka.input_topic, cfg.label_topic, cfg.journal_topic
        self.samples_topic = cfg.samples_topic
        self.idle_s = cfg.labels.idle_advance_s
        self.last_event = self.last_label = time.monotonic()
        self.next_mark = 0.0  # monotonic time from which mark_journal_position asks the broker again
        # The event-time step on a backlog; it decodes what it holds with the join's own decoding.
        self.pacer = Pacer(consumer, self.input_topic, self.label_topic, partition_id,
                           (self.joiner.decode_events, self.joiner.decode_labels), cfg.labels.pause_held)

    @staticmethod
    def join_state(state: ModelState) -> JoinState:
        js = state.extra.get("labels")
        assert isinstance(js, JoinState), "label mode without a join state"
        return js

    # ---- 2. restore -------------------------------------------------------------------------
    def restore(self, state: ModelState, committed_events: int) -> None:
        """Bring a checkpointed (or fresh) state to the committed positions by replaying the journal."""
        p = self.partition_id
        self.pacer.clear()  # held records belong to the position before this restore: fetched again after the seek
        js = state.extra.get("labels")
        if not isinstance(js, JoinState):
            low_l, _ = kafka_io.watermarks(self.consumer, self.label_topic, p)
            low_j, _ = kafka_io.watermarks(self.consumer, self.journal_topic, p)
            js = state.extra["labels"] = JoinState(label_offset=low_l, journal_offset=low_j)
        k_labels = kafka_io.committed_offsets(self.consumer, self.label_topic, [p])[p]
        committed_labels = k_labels if k_labels is not None else js.label_offset
        start = (state.offset, js.label_offset, js.journal_offset)
        jr = PartitionReader(self.cfg, self.journal_topic, p, js.journal_offset, self.beat)
        ev = PartitionReader(self.cfg, self.input_topic, p, state.offset, self.beat)
        lb = PartitionReader(self.cfg, self.label_topic, p, js.label_offset, self.beat)
        chunks = 0
        try:
            for j_offset, rec in journal_records(jr):
                if rec.events[1] <= state.offset and rec.labels[1] <= js.label_offset:
                    continue  # already in the checkpoint (J is a lower bound, see mark_journal_position)
                if rec.events[0] != state.offset or rec.labels[0] != js.label_offset:
                    raise self._mismatch(f"journal offset {j_offset} starts at (events {rec.events[0]}, labels "
                                         f"{rec.labels[0]}) but the replay is at ({state.offset}, {js.label_offset})", start)
                self.joiner.run_chunk(state, js, ev.take(*rec.events), lb.take(*rec.labels), rec.events, rec.labels,
                                      rec.clock, None)
                js.journal_offset = j_offset + 1
                chunks += 1
                self.beat()
                if faults.ENABLED:
                    faults.point("during_replay")
        finally:
            for r in (jr, ev, lb):
                r.close()
        if (state.offset, js.label_offset) != (committed_events, committed_labels):
            raise self._mismatch(f"after replaying {chunks} journal records the join is at (events {state.offset}, labels "
                                 f"{js.label_offset}) but Kafka has committed ({committed_events}, {committed_labels})", start)
        self.last_event = self.last_label = time.monotonic()
        logs.event(log, logging.INFO, "labels_replayed", **self.ctx(
            checkpoint=list(start), committed=[committed_events, committed_labels], journal_records=chunks))

    def _mismatch(self, what: str, start: tuple[int, int, int]) -> ReplayError:
        ctx = self.ctx()
        return ReplayError(
            f"label-mode recovery of {self.input_topic}[{self.partition_id}] (labels {self.label_topic}, journal "
            f"{self.journal_topic}) at epoch {ctx.get('epoch')}: {what}; checkpoint (E, L, J) = {start}",
            hint="the join journal, the committed offsets and the checkpoint disagree (a journal topic deleted or "
                 "reset, or offsets moved by hand?): reset the app's consumer group and checkpoints to start over")

    # ---- 3. process ----------------------------------------------------------------------------
    def process(self, state: ModelState, events: Sequence[Any], labels: Sequence[Any], producer: Producer,
                out_partition: int, reports: DeliveryReports, dlq_limit: int) -> None:
        """One chunk into the open transaction: join outputs, then its journal record."""
        js = self.join_state(state)
        if events and events[0].offset() < state.offset:
            events = [r for r in events if r.offset() >= state.offset]  # fetched before a seek (recovery)
        if labels and labels[0].offset() < js.label_offset:
            labels = [r for r in labels if r.offset() >= js.label_offset]
        now = time.monotonic()
        if events:  # idle means nothing fetched (held records count as arrived, not idle)
            self.last_event = now
        if labels:
            self.last_label = now
        events, labels = self.pacer.step(events, labels, (state.offset, js.label_offset))
        if not events and not labels:
            return
        clock: dict[str, float] = {}
        if not events and not self.pacer.events.items and now - self.last_event >= self.idle_s \
                and js.event_clock < js.label_clock:
            clock["event"] = js.label_clock
        if not labels and not self.pacer.labels.items and now - self.last_label >= self.idle_s \
                and js.label_clock < js.event_clock:
            clock["label"] = js.event_clock
        e_range = (state.offset, events[-1][2] + 1 if events else state.offset)  # items: (ts, kind, offset, ...)
        l_range = (js.label_offset, labels[-1][2] + 1 if labels else js.label_offset)
        kc, app = self.cfg.kafka, self.cfg.app
        p = self.partition_id
        emit, dead_event = emitters(producer, app, self.input_topic, p, kc.output_topic, kc.dlq_topic, out_partition, self.ctx,
                                    reports, dlq_limit)
        _, dead_label = emitters(producer, app, self.label_topic, p, kc.output_topic, kc.dlq_topic, out_partition, self.ctx,
                                 reports, dlq_limit)
        sample = _sample_emitter(producer, self.samples_topic, p) if self.samples_topic else None
        self.joiner.run_items(state, js, events, labels, e_range, l_range, clock,
                              Outputs(emit, sample, dead_event, dead_label), int(time.time() * 1000))
        kafka_io.produce_blocking(producer, self.journal_topic, JournalRecord(e_range, l_range, clock).encode(), None, p)

    # ---- 4. commit, 5. checkpoint ------------------------------------------------------------------
    def commit_offsets(self, state: ModelState) -> list[TopicPartition]:
        """The label partition's next offset, committed in the same transaction as the input's."""
        return [TopicPartition(self.label_topic, self.partition_id, self.join_state(state).label_offset)]

    def assignment(self, state: ModelState | None) -> TopicPartition:
        if state is None:  # not restored (yet): the partition only, to unassign it
            return TopicPartition(self.label_topic, self.partition_id)
        return TopicPartition(self.label_topic, self.partition_id, self.join_state(state).label_offset)

    def mark_journal_position(self, state: ModelState) -> None:
        """Right after a commit, before a checkpoint: J, where a replay from this checkpoint starts reading.

        J only has to be a lower bound: every journal record has a non-empty range and the ranges are
        contiguous, so replay recognises the records already in the checkpoint by their ranges and
        skips them. The watermark a read_committed consumer gets is the last stable offset, which
        may still sit before the transaction just committed (its markers are written after
        commit_transaction returns): a lower bound, and never past a record the state lacks.

        Nor does J have to move at every checkpoint: an earlier J is a lower bound too. The watermark is
        a broker round trip that stalls the loop (measured: up to a few % of a backlog run's wall time
        with checkpoints every few seconds), so J moves at most every MARK_EVERY_S; a replay then reads
        and skips at most that much more journal (one small record per chunk), never more events or labels.
        """
        now = time.monotonic()
        if now < self.next_mark:
            return  # the J of an earlier mark is still a lower bound: replay skips at most MARK_EVERY_S more of journal
        self.next_mark = now + MARK_EVERY_S
        _low, high = kafka_io.watermarks(self.consumer, self.journal_topic, self.partition_id)
        self.join_state(state).journal_offset = high


def ensure_label_topics(admin: AdminClient, cfg: AppConfig, partitions: int) -> None:
    """At start: the label topic is co-partitioned with the input; samples and journal topics exist, co-partitioned.

    A label joins only the events of its partition number, so a label topic
    with another partition count would silently join nothing (or the wrong
    events): refuse to start, naming both counts.
    """
    k = cfg.kafka
    label_parts = kafka_io.topic_partitions(admin, cfg.label_topic)
    if label_parts is None:
        raise ConfigError(f"kafka.label_topic: topic '{cfg.label_topic}' does not exist (labels.source: topic)",
                          hint=f"create it with {partitions} partitions, or produce labels first: "
                               "`streamlearn produce -c app.yaml --labels labels.jsonl`")
    for key, topic, create in (("kafka.label_topic", cfg.label_topic, False), ("labels.journal_topic", cfg.journal_topic, True),
                               ("kafka.samples_topic", cfg.samples_topic, True)):
        if topic is None:
            continue
        if create and k.create_topics:
            kafka_io.ensure_topic(admin, topic, partitions)
        parts = kafka_io.topic_partitions(admin, topic)
        if parts is None:
            raise ConfigError(f"{key}: topic '{topic}' does not exist", hint="create it, or set kafka.create_topics: true")
        if len(parts) != partitions:
            raise ConfigError(f"{key}: topic '{topic}' has {len(parts)} partitions but kafka.input_topic '{k.input_topic}' "
                              f"has {partitions}; they must be co-partitioned (same count, keyed by id)",
                              hint=f"recreate '{topic}' with {partitions} partitions")


def _sample_emitter(producer: Producer, topic: str, partition: int) -> Callable[[bytes, bytes], None]:
    """One call per learning step: produce() bound once, positional; a full local queue waits as produce_blocking does."""
    produce = producer.produce

    def sample(key: bytes, value: bytes) -> None:
        try:
            produce(topic, value, key, partition)
        except BufferError:
            kafka_io.produce_blocking(producer, topic, value, key, partition)
    return sample
