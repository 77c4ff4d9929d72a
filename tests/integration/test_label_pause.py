"""Label pacing pauses the stream it holds too much of, on the real broker, and loses or repeats nothing.

librdkafka fetches each partition by bytes and keeps fetching the stream that
is ahead, so holding alone let one stream's held records grow to its bound
and go through unpaced (`streamlearn.eos.label_pacing`). Here every label
comes 20 s of event time after its event (2,000 events later), and fetches
are small, so the labels are fetched far ahead of the events that release
them: without the pause about 2,000 labels are held at once. With it the
label partition is paused in the consumer past `labels.pause_held` held
records and resumed at a fifth of that; librdkafka drops what it had prefetched of it and,
on resume, fetches from the position the pacer has read to. The released
streams must still be every record once, in offset order, each label only
once the events have reached its event time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from confluent_kafka import TopicPartition

from connectors import kafka_io
from streamlearn.eos.label_pacing import Pacer
from streamlearn.labels.records import EVENT, LABEL, Item
from streamlearn.runtime.intake import poll_batch

EVENTS = 6_000
STEP_MS, DELAY_MS = 10, 20_000  # event time between events; a label's event time after its event's
PAUSE_AT, POLL = 200, 200


def _items(kind: int) -> Any:
    def decode(records: Sequence[Any]) -> list[Item]:
        return [(float(orjson.loads(r.value())["ts"]), kind, r.offset()) for r in records]
    return decode


def test_the_stream_held_past_pause_at_is_paused_resumed_and_read_once_in_order(
    kafka_bootstrap: str, unique_topic: Any
) -> None:
    events_topic, labels_topic = unique_topic(partitions=1), unique_topic(partitions=1)
    producer = kafka_io.make_producer(kafka_bootstrap)
    for i in range(EVENTS):
        kafka_io.produce_blocking(producer, events_topic, orjson.dumps({"id": i, "ts": i * STEP_MS, "x": "e" * 60}), None, 0)
        kafka_io.produce_blocking(producer, labels_topic, orjson.dumps({"id": i, "ts": i * STEP_MS + DELAY_MS}), None, 0)
    assert producer.flush(30) == 0

    # Small fetches (a few dozen records) so that both partitions are fetched a little at a time.
    consumer = kafka_io.make_consumer(kafka_bootstrap, f"pause-{events_topic}",
                                      {"max.partition.fetch.bytes": 4096})
    consumer.assign([TopicPartition(events_topic, 0, 0), TopicPartition(labels_topic, 0, 0)])
    pacer = Pacer(consumer, events_topic, labels_topic, 0, (_items(EVENT), _items(LABEL)), PAUSE_AT)
    released: dict[int, list[Item]] = {EVENT: [], LABEL: []}
    max_held_labels, resumes, events_seen, events_frontier = 0, 0, 0, -1.0
    deadline = time.monotonic() + 120
    try:
        while len(released[LABEL]) < EVENTS:
            assert time.monotonic() < deadline, (len(released[EVENT]), len(released[LABEL]), pacer.paused)
            batch = poll_batch(consumer, POLL, 0.2)
            got = [m for m in batch if m.error() is None]
            positions = (released[EVENT][-1][2] + 1 if released[EVENT] else 0,
                         released[LABEL][-1][2] + 1 if released[LABEL] else 0)
            fetched_events = [m for m in got if m.topic() == events_topic]
            for m in fetched_events:
                events_seen, events_frontier = events_seen + 1, float(orjson.loads(m.value())["ts"])
            was_paused = pacer.paused[1]
            ev, lb = pacer.step(fetched_events, [m for m in got if m.topic() == labels_topic], positions)
            resumes += was_paused and not pacer.paused[1]
            if lb and events_seen < EVENTS:  # events still behind: labels go only up to the events fetched
                assert lb[-1][0] <= events_frontier, (lb[-1], events_frontier)
            released[EVENT] += ev
            released[LABEL] += lb
            max_held_labels = max(max_held_labels, len(pacer.labels.items))
    finally:
        consumer.close()

    assert [it[2] for it in released[EVENT]] == list(range(EVENTS))  # every record once, in order
    assert [it[2] for it in released[LABEL]] == list(range(EVENTS))
    assert pacer.pauses >= 1 and resumes >= 1, (pacer.pauses, resumes)
    assert pacer.paused == [False, False]
    # Unpaused, ~DELAY_MS / STEP_MS labels are held at once; paused, at most what came before the pause took hold.
    assert max_held_labels <= PAUSE_AT + 4 * POLL < DELAY_MS // STEP_MS, max_held_labels
