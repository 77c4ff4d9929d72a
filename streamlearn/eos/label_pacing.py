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
back and they are fetched again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from connectors import kafka_io

#: Past this many held records (both streams) everything is released unpaced: memory stays bounded even if
#: the stream behind never moves (the join is correct unpaced, only less useful).
HOLD_MAX = 100_000


class Held:
    """One stream's fetched, not yet released records, with their event times (decoded once)."""

    __slots__ = ("records", "ts")

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.ts: list[float] = []

    def add(self, records: Sequence[Any], ts_field: str) -> None:
        self.records.extend(records)
        self.ts.extend(_event_time(r, ts_field) for r in records)

    def take(self, limit: float) -> list[Any]:
        """The longest prefix with event time <= limit (a prefix: the journal's ranges are contiguous)."""
        n = 0
        for t in self.ts:
            if t > limit:
                break
            n += 1
        out, self.records, self.ts = self.records[:n], self.records[n:], self.ts[n:]
        return out

    def clear(self) -> None:
        self.records, self.ts = [], []


class Pacer:
    """The event-time step of one partition's two streams (see module doc)."""

    def __init__(self, consumer: Consumer, input_topic: str, label_topic: str, partition: int, ts_field: str) -> None:
        self.consumer, self.partition, self.ts_field = consumer, partition, ts_field
        self.tps = (TopicPartition(input_topic, partition), TopicPartition(label_topic, partition))
        self.events, self.labels = Held(), Held()

    def clear(self) -> None:
        self.events.clear()
        self.labels.clear()

    @property
    def holding(self) -> int:
        return len(self.events.records) + len(self.labels.records)

    def step(self, events: Sequence[Any], labels: Sequence[Any], positions: tuple[int, int]) -> tuple[list[Any], list[Any]]:
        """Add what was fetched; return the events and labels to process now (prefixes of each stream).

        `positions`: the join's next (input, label) offsets, for a stream nothing was consumed of since the
        last assign or seek (the consumer has no position for it yet).
        """
        if not self.holding and not (events and labels):
            other = 1 if events else 0
            if not self._behind(other, positions[other]):
                return list(events), list(labels)  # live, or the other stream caught up: nothing to wait for
        self.events.add(events, self.ts_field)
        self.labels.add(labels, self.ts_field)
        if self.holding > HOLD_MAX:
            limit = math.inf
        else:
            limit = min(self._frontier(self.events, 0, positions[0]), self._frontier(self.labels, 1, positions[1]))
        return self.events.take(limit), self.labels.take(limit)

    def _frontier(self, held: Held, which: int, position: int) -> float:
        """How far (event time) this stream is known to have got: the other one may be released up to here."""
        if not self._behind(which, position):
            return math.inf
        return held.ts[-1] if held.ts else -math.inf

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
            held = self.events if which == 0 else self.labels
            return (held.records[-1].offset() + 1 if held.records else position) + 1 < high
        return pos < high


def _event_time(rec: Any, ts_field: str) -> float:
    """The ts field as the join reads it (the record timestamp when absent); -inf for a record the join refuses."""
    try:
        doc = orjson.loads(rec.value() or b"")
        ts = doc.get(ts_field) if type(doc) is dict else None
    except orjson.JSONDecodeError:
        return -math.inf  # released at once: it only goes to the DLQ
    if type(ts) is int or type(ts) is float:
        return float(ts)
    return float(rec.timestamp()[1])
