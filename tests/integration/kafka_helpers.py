"""Small Kafka client helpers for the integration tests (poll with deadlines, no sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, TopicPartition

DEADLINE_S = 60.0


def read_values(bootstrap: str, topic: str, partitions: int, *,
                isolation: str = "read_committed",
                until: Callable[[list[Any]], bool],
                deadline_s: float = DEADLINE_S) -> list[Any]:
    """Read ``topic`` from the beginning until ``until(messages)`` is true.

    Returns the messages seen (confluent_kafka ``Message``s). Raises
    ``TimeoutError`` with what was seen if the condition never holds.
    """
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"reader-{topic}",
        "enable.auto.commit": False,
        "isolation.level": isolation,
        "auto.offset.reset": "earliest",
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    seen: list[Any] = []
    end = time.monotonic() + deadline_s
    try:
        while not until(seen):
            if time.monotonic() > end:
                raise TimeoutError(f"condition not met after {deadline_s:.0f}s; saw "
                                   f"{[m.value() for m in seen][:20]}")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                continue  # e.g. partition EOF or transient errors; the deadline bounds us
            seen.append(msg)
    finally:
        consumer.close()
    return seen


def contains(value: bytes) -> Callable[[list[Any]], bool]:
    """``until`` condition: a message with this value was read."""
    return lambda seen: any(m.value() == value for m in seen)
