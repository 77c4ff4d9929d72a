"""Which input partition a request id was produced to, so it is answered by the model that learned its events.

Records are keyed by their id (`str(id)` as UTF-8, like `streamlearn produce`),
and the producer's partitioner picks the partition from the key:

- `consistent_random`: librdkafka's default (confluent-kafka, and so
  `streamlearn produce`): CRC-32 of the key modulo the partition count; an
  empty key goes to a random partition, so serving falls back to partition 0.
- `murmur2`: the Java client's default (and librdkafka's `murmur2_random`):
  Kafka's murmur2 of the key, made positive (`& 0x7fffffff`), modulo the count.

Both are checked against the real client in tests/unit/test_partitioner.py
(known vectors) and tests/integration/test_serving.py (records produced to a
real topic).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

Partitioner = Callable[[bytes, int], int]


def key_of(event_id: Any) -> bytes:
    """The record key `streamlearn produce` gives an event with this id."""
    return str(event_id).encode()


def consistent_random(key: bytes, partitions: int) -> int:
    return zlib.crc32(key) % partitions if key else 0


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as a signed 32-bit int."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i: 4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail, extra = length & ~3, length % 4
    if extra == 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h >= 1 << 31 else h


def murmur2_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


PARTITIONERS: dict[str, Partitioner] = {"consistent_random": consistent_random, "murmur2": murmur2_partition}
