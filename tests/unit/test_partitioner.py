"""The partitioners serving routes ids with, against the clients' own known vectors."""

from __future__ import annotations

import zlib

import pytest

from streamlearn.serving.partitioner import consistent_random, key_of, murmur2, murmur2_partition

# org.apache.kafka.common.utils.UtilsTest#testMurmur2
KAFKA_MURMUR2 = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_MURMUR2)
def test_murmur2_matches_kafkas_java_implementation(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_murmur2_partition_is_the_positive_hash_modulo_the_count() -> None:
    assert murmur2_partition(b"21", 7) == (-973932308 & 0x7FFFFFFF) % 7
    assert {murmur2_partition(str(i).encode(), 4) for i in range(100)} == {0, 1, 2, 3}


def test_consistent_random_is_crc32_modulo_the_count() -> None:
    assert consistent_random(b"e-17", 4) == zlib.crc32(b"e-17") % 4
    assert consistent_random(b"", 4) == 0  # librdkafka: random for empty keys; serving falls back to 0


def test_keys_are_the_ids_as_produce_writes_them() -> None:
    assert key_of("e-17") == b"e-17"
    assert key_of(17) == b"17"
