"""How far behind their timestamps a consumer sees SteadyLoad's records: one producer per chunk vs one for all.

    PYTHONPATH=. python bench/results/raw/ckpt-rounds-s31/feed_arrival.py [BOOTSTRAP]

3,000 keyed events over 4 partitions at 2,000 ev/s in 0.5-s chunks (test_checkpoint_rounds' feed),
read by a read_committed consumer as they arrive; prints the arrival lag (consumer's clock minus the
record's CreateTime) per variant.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from connectors import kafka_io
from connectors.kafka_records import produce_records
from streamlearn.tools.datasets import synthetic_events
from tests.integration.engine_helpers import keyed

EVENTS, RATE, CHUNK = 3_000, 2_000.0, 1_000


def lags(bootstrap: str, one_producer: bool) -> list[float]:
    topic = f"feed-arrival-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: the future fails once its client is freed
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result()
    events = list(synthetic_events(EVENTS, seed=11))
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed", "fetch.wait.max.ms": 50})
    consumer.subscribe([topic])
    while not consumer.assignment():
        consumer.poll(0.1)
    shared = kafka_io.make_producer(bootstrap)

    def feed() -> None:
        for i in range(0, EVENTS, CHUNK):
            producer = shared if one_producer else kafka_io.make_producer(bootstrap)
            produce_records(producer, topic, keyed(events[i:i + CHUNK]), rate=RATE)

    thread = threading.Thread(target=feed)
    thread.start()
    out: list[float] = []
    deadline = time.time() + 30
    while time.time() < deadline and len(out) < EVENTS:
        msg = consumer.poll(0.1)
        if msg is not None and not msg.error():
            out.append(time.time() * 1000 - msg.timestamp()[1])
    thread.join()
    consumer.close()
    return sorted(out)


def main() -> None:
    bootstrap = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
    for one in (False, True, False, True):
        got = lags(bootstrap, one)
        print(f"{'one producer' if one else 'a producer per chunk'}: {len(got)} records, arrival lag ms "
              f"p50 {got[len(got) // 2]:.0f} p90 {got[int(len(got) * 0.9)]:.0f} max {got[-1]:.0f}")


if __name__ == "__main__":
    main()
