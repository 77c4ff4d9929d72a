"""Kafka's own transactions on the project's broker: what exactly-once rests on."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from tests.integration.kafka_helpers import contains, read_values


def _tx_producer(bootstrap: str, transactional_id: str) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "transaction.timeout.ms": 60_000})
    producer.init_transactions(30)
    return producer


def test_committed_is_visible_and_aborted_is_not(kafka_bootstrap: str, unique_topic: Any) -> None:
    topic = unique_topic(partitions=1)
    producer = _tx_producer(kafka_bootstrap, f"tx-{uuid.uuid4().hex}")

    producer.begin_transaction()
    producer.produce(topic, value=b"committed-1")
    producer.produce(topic, value=b"committed-2")
    producer.commit_transaction(30)

    producer.begin_transaction()
    producer.produce(topic, value=b"aborted")
    producer.flush(30)  # the record is in the log; only the abort marker hides it
    producer.abort_transaction(30)

    producer.begin_transaction()
    producer.produce(topic, value=b"committed-3")
    producer.commit_transaction(30)

    committed = read_values(kafka_bootstrap, topic, 1, until=contains(b"committed-3"))
    assert [m.value() for m in committed] == [b"committed-1", b"committed-2", b"committed-3"]

    # The aborted record really was written: read_uncommitted sees it.
    everything = read_values(kafka_bootstrap, topic, 1, isolation="read_uncommitted",
                             until=contains(b"committed-3"))
    assert b"aborted" in [m.value() for m in everything]


def test_same_transactional_id_fences_the_zombie(kafka_bootstrap: str, unique_topic: Any) -> None:
    topic = unique_topic(partitions=2)
    transactional_id = f"tx-{uuid.uuid4().hex}"
    zombie = _tx_producer(kafka_bootstrap, transactional_id)
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie", partition=0)
    zombie.flush(30)

    successor = _tx_producer(kafka_bootstrap, transactional_id)  # fences + aborts the zombie's
    successor.begin_transaction()
    successor.produce(topic, value=b"successor", partition=0)
    successor.commit_transaction(30)

    with pytest.raises(KafkaException) as raised:
        zombie.commit_transaction(30)
    error: KafkaError = raised.value.args[0]
    assert error.fatal() or error.code() in (
        KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)

    seen = read_values(kafka_bootstrap, topic, 2, until=contains(b"successor"))
    assert [m.value() for m in seen] == [b"successor"]


def test_offsets_commit_atomically_with_the_outputs(
        kafka_bootstrap: str, unique_topic: Any) -> None:
    """The engine's step 4: ``send_offsets_to_transaction`` + commit, read back by a new owner."""
    source, sink = unique_topic(partitions=1), unique_topic(partitions=1)
    seed = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(3):
        seed.produce(source, value=f"in-{i}".encode())
    assert seed.flush(30) == 0
    group = f"g-{uuid.uuid4().hex}"
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group,
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    consumer.assign([TopicPartition(source, 0, 0)])
    inputs = read_values(kafka_bootstrap, source, 1, until=lambda msgs: len(msgs) >= 3)
    producer = _tx_producer(kafka_bootstrap, f"tx-{uuid.uuid4().hex}")

    producer.begin_transaction()
    for msg in inputs:
        producer.produce(sink, value=b"out-" + msg.value())
    producer.send_offsets_to_transaction([TopicPartition(source, 0, inputs[-1].offset() + 1)],
                                         consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(30)
    consumer.close()

    reader = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group,
                       "isolation.level": "read_committed"})
    try:
        committed = reader.committed([TopicPartition(source, 0)], timeout=30)
    finally:
        reader.close()
    assert committed[0].offset == 3
    outputs = read_values(kafka_bootstrap, sink, 1, until=lambda msgs: len(msgs) >= 3)
    assert [m.value() for m in outputs] == [b"out-in-0", b"out-in-1", b"out-in-2"]
