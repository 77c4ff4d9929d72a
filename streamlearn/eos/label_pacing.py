"""Label mode on a backlog: release one partition's events and labels to the join in step, by event time.

From a backlog the consumer fetches the input and label partitions by
bytes, not by event time: one topic can be read far ahead of the other.
The join stays correct either way (two event-time clocks, I5), but the
stream read ahead fills the pending store (or the early labels) up to
`labels.max_pending` and is then evicted or orphaned early, and a model
that gets its labels only after predicting on every event predicts
untrained. So the fetched records of each stream are held here and
released up to the other stream's frontier: the event time of its last
fetched record while it is still behind its high watermark, unbounded once
it has caught up (live: nothing is held, nothing waits).

Pacing only decides *when* records reach the join, never what the join
does with them: each released batch is a contiguous prefix of each stream,
and the join journal records exactly the ranges processed, so a replay after
a crash reproduces the run whatever the pacing did (docs/labels.md).
Records held at a restore are dropped: the restore seeks both partitions
back and they are fetched again. Held records are kept decoded, by the
join's own decoding (`Joiner.decode_events`, `decode_labels`): the event
time pacing needs is the one the join uses, and no record is parsed twice.

Holding alone does not keep the two streams in step: librdkafka fetches each
partition up to `max.partition.fetch.bytes` at a time and keeps fetching the
stream ahead (up to `queued.min.messages` per partition), so on a backlog
the held stream reached its bound (100,000) and went through unpaced; a benchmark
backlog's pending store then held ~100,000 events a partition and every
checkpoint pickled them (up to 33.9 MB; bench/results/raw/label-pause-s38). So the stream held past `labels.pause_held`
records is paused in the consumer (its fetching stops; librdkafka drops what
it had prefetched of it and, on resume, fetches from the position the
application has read to: nothing is lost or read twice) and resumed once
the other stream has released it down to a fifth of that. At most one stream
holds records after a step (the release limit is the lower frontier), so at
most one is paused.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from connectors import kafka_io
from streamlearn import logs
from streamlearn.labels.records import Item

log = logs.get("labels")

#: The join's decoding of one stream's records into merge items (`Joiner.decode_events`, `decode_labels`).
Decode = Callable[[Sequence[Any]], list[Item]]

#: A paused stream is resumed once released down to this share of `labels.pause_held`.
RESUME_SHARE = 0.2
#: Past this multiple of `labels.pause_held` held (both streams) everything is released unpaced: a backstop
#: for memory should the pause not take hold (the join is correct unpaced, only less useful).
HOLD_MAX_FACTOR = 2


class Held:
    """One stream's fetched, not yet released records, decoded once (their merge items: event time first)."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Item] = []

    @property
    def last_ts(self) -> float:
        return self.items[-1][0] if self.items else -math.inf

    def add(self, items: list[Item]) -> None:
        self.items.extend(items)

    def take(self, limit: float) -> list[Item]:
        """The longest prefix with event time <= limit (a prefix: the journal's ranges are contiguous)."""
        items = self.items
        n = 0
        for it in items:
            if it[0] > limit:
                break
            n += 1
        if n == len(items):
            self.items = []
            return items
        out, self.items = items[:n], items[n:]
        return out

    def clear(self) -> None:
        self.items = []


class Pacer:
    """The event-time step of one partition's two streams (see module doc)."""

    def __init__(self, consumer: Consumer, input_topic: str, label_topic: str, partition: int,
                 decode: tuple[Decode, Decode], pause_held: int) -> None:
        self.consumer, self.partition = consumer, partition
        self.decode_events, self.decode_labels = decode  # the join's own decoding: each record is decoded once
        self.tps = (TopicPartition(input_topic, partition), TopicPartition(label_topic, partition))
        self.events, self.labels = Held(), Held()
        self.pause_at, self.resume_at = pause_held, int(pause_held * RESUME_SHARE)
        self.hold_max = HOLD_MAX_FACTOR * pause_held
        self.paused = [False, False]  # (events, labels): paused by this pacer in the consumer
        self.pauses = 0  # times a stream was paused (a counter for tests and the curious)

    def clear(self) -> None:
        """A restore: held records are fetched again after its seek, so nothing stays paused either."""
        self.events.clear()
        self.labels.clear()
        for which in (0, 1):
            if self.paused[which]:
                self._set_paused(which, False)

    @property
    def holding(self) -> int:
        return len(self.events.items) + len(self.labels.items)

    def step(self, events: Sequence[Any], labels: Sequence[Any], positions: tuple[int, int]) -> tuple[list[Item], list[Item]]:
        """Add what was fetched; return the events and labels to process now (prefixes of each stream), decoded.

        `positions`: the join's next (input, label) offsets, for a stream nothing was consumed of since the
        last assign or seek (the consumer has no position for it yet).
        """
        if not self.holding and not (events and labels):
            other = 1 if events else 0
            if not self._behind(other, positions[other]):
                # live, or the other stream caught up: nothing to wait for
                return self.decode_events(events), self.decode_labels(labels)
        self.events.add(self.decode_events(events))
        self.labels.add(self.decode_labels(labels))
        if self.holding > self.hold_max:
            limit = math.inf
        else:
            limit = min(self._frontier(self.events, 0, positions[0]), self._frontier(self.labels, 1, positions[1]))
        out = self.events.take(limit), self.labels.take(limit)
        for which, held in ((0, self.events), (1, self.labels)):
            n = len(held.items)
            if not self.paused[which] and n >= self.pause_at:
                self._set_paused(which, True)
            elif self.paused[which] and n <= self.resume_at:
                self._set_paused(which, False)
        return out

    def _set_paused(self, which: int, paused: bool) -> None:
        tp = self.tps[which]
        tps = [TopicPartition(tp.topic, tp.partition)]
        try:
            if paused:
                self.consumer.pause(tps)
            else:
                self.consumer.resume(tps)
        except KafkaException:
            return  # not assigned (being dropped): nothing to fetch or stop; hold_max still bounds what is held
        self.paused[which] = paused
        self.pauses += paused
        other = self.tps[1 - which]
        logs.event(log, logging.INFO, "label_stream_paused" if paused else "label_stream_resumed", topic=tp.topic,
                   partition=tp.partition, held=len((self.events, self.labels)[which].items), waiting_for=other.topic)

    def _frontier(self, held: Held, which: int, position: int) -> float:
        """How far (event time) this stream is known to have got: the other one may be released up to here."""
        if not self._behind(which, position):
            return math.inf
        return held.last_ts

    def _behind(self, which: int, position: int) -> bool:
        """Records of this stream are in Kafka and not yet fetched (its position before the high watermark).

        The consumer's position skips transaction markers; before anything was consumed since an assign
        or seek it has none, and the join's own position is used, allowing for one commit marker at the end.
        An unknown high watermark (no fetch response for the partition yet) counts as behind: the first
        fetch answers it.
        """
        tp = self.tps[which]
        high = kafka_io.cached_high_watermark(self.consumer, tp.topic, tp.partition)
        if high is None:
            return True
        try:
            pos = self.consumer.position([tp])[0].offset
        except KafkaException:
            pos = -1
        if pos < 0:
            held = (self.events if which == 0 else self.labels).items
            return (held[-1][2] + 1 if held else position) + 1 < high
        return pos < high
