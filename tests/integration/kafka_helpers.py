"""Small Kafka client helpers for the integration tests (poll with deadlines, no sleeps)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from connectors.kafka_records import read_topic

DEADLINE_S = 60.0


def read_values(bootstrap: str, topic: str, partitions: int, *,
                isolation: str = "read_committed",
                until: Callable[[Sequence[Any]], bool],
                deadline_s: float = DEADLINE_S) -> list[Any]:
    """Read ``topic`` from the beginning until ``until(messages)`` is true.

    Returns the messages seen (confluent_kafka ``Message``s). Raises
    ``TimeoutError`` with what was seen if the condition never holds.
    """
    return list(read_topic(bootstrap, topic, range(partitions), read_committed=isolation == "read_committed",
                           until=until, deadline_s=deadline_s))


def contains(value: bytes) -> Callable[[Sequence[Any]], bool]:
    """``until`` condition: a message with this value was read."""
    return lambda seen: any(m.value() == value for m in seen)
