"""`kafka_io.topic_partitions` asks the broker for one topic by name, and never creates it.

The project's broker has `auto.create.topics.enable=true` (as Apache Kafka's
default), and librdkafka lets a producer-type handle (an admin client is one)
auto-create a topic it names in a metadata request. The listing used to ask
for every topic of the cluster to stay clear of that; naming the topic is
cheap only because `kafka_io.admin` turns auto-creation off.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from connectors import kafka_io
from tests.polling import poll

# A topic auto-created by a metadata request shows up in a second or two here (seen: under 2 s).
AUTO_CREATE_WINDOW_S = 8.0


def test_an_existing_topic_gives_its_partitions(kafka_bootstrap: str, unique_topic: Any) -> None:
    topic = unique_topic(partitions=3)
    assert kafka_io.topic_partitions(kafka_io.admin(kafka_bootstrap), topic) == [0, 1, 2]


def test_a_missing_topic_is_none_and_stays_missing(kafka_bootstrap: str) -> None:
    topic = f"never-created-{uuid.uuid4().hex[:10]}"
    assert kafka_io.topic_partitions(kafka_io.admin(kafka_bootstrap), topic) is None
    # Absence over a window: a full listing by another client, polled until the window ends, never sees it.
    other = AdminClient({"bootstrap.servers": kafka_bootstrap})
    with pytest.raises(AssertionError, match="timed out"):
        poll(lambda: topic in other.list_topics(timeout=10).topics, AUTO_CREATE_WINDOW_S, f"{topic} auto-created", every_s=0.5)
