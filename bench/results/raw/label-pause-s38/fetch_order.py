"""In what order a consumer gets a backlog's events and labels: `python fetch_order.py TOPIC [PARTITIONS]`.

Reads TOPIC and TOPIC.labels (as `bench.run` produces label mode's backlog) with the worker's consumer
settings (`connectors.kafka_io.make_consumer`) and polls of 5,000 (`runtime.intake.poll_batch`), and prints
(seconds, events in the poll, labels in the poll, events so far, labels so far) for the first polls and
about 30 more: how far the events run ahead of their labels when nothing paces the fetching.
"""

from __future__ import annotations

import sys
import time

from confluent_kafka import TopicPartition

from connectors import kafka_io
from streamlearn.runtime.intake import poll_batch


def main() -> None:
    topic, partitions = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4
    consumer = kafka_io.make_consumer("127.0.0.1:9092", f"fetch-order-{time.time()}")
    consumer.assign([TopicPartition(t, p, 0) for t in (topic, topic + ".labels") for p in range(partitions)])
    events = labels = 0
    rows = []
    t0 = time.time()
    while time.time() - t0 < 40:
        ne = nl = 0
        for m in poll_batch(consumer, 5000, 0.5):
            if m.error() is None:
                ne, nl = (ne + 1, nl) if m.topic() == topic else (ne, nl + 1)
        events, labels = events + ne, labels + nl
        rows.append((round(time.time() - t0, 2), ne, nl, events, labels))
        if ne == nl == 0 and events and events == labels:
            break
    consumer.close()
    for row in rows[:15] + rows[15 :: max(1, len(rows) // 30)]:
        print(row)
    print({"events": events, "labels": labels})


if __name__ == "__main__":
    main()
