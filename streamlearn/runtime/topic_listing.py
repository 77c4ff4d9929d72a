"""Which input partitions the Coordinator should own, read from Kafka at start and while running.

At start it also creates the topics the app writes (outputs, dead letters,
and the label-mode or sample-log topics) and refuses a label topic that is not
co-partitioned with the input. While running, in label mode, an input
partition added beyond the label-mode topics' counts waits, unowned, until
they have it too (`eos.label_topics`); the wait is logged once per change.
"""

from __future__ import annotations

import logging

from connectors import kafka_io
from streamlearn import logs
from streamlearn.config import AppConfig
from streamlearn.eos.label_step import ensure_label_topics
from streamlearn.eos.label_topics import LabelTopicCounts, ensure_samples_topic, running_counts
from streamlearn.errors import ConfigError, ServiceUnavailableError

log = logs.get("coordinator")


class PartitionLister:
    def __init__(self, cfg: AppConfig) -> None:
        self.cfg = cfg
        self._label_wait: dict[str, int] | None = None  # label-mode topics new input partitions wait for (logged once)
        self._admin: kafka_io.AdminClient | None = None  # kept between listings: a new client is a new connection

    def partitions(self, *, known: list[int], starting: bool = False) -> list[int]:
        """The input partitions to own; in label mode while running, only those the label-mode topics have too."""
        k = self.cfg.kafka
        if self._admin is None:
            self._admin = kafka_io.admin(k.bootstrap, k.consumer)
        adm = self._admin
        try:
            parts = kafka_io.topic_partitions(adm, k.input_topic)
        except kafka_io.KafkaUnavailable as exc:
            self._admin = None  # the next listing starts from a fresh client
            raise ServiceUnavailableError(f"Kafka at {k.bootstrap}: {exc}", hint="start it with `streamlearn services up` or fix kafka.bootstrap") from None
        if parts is None:
            raise ConfigError(f"kafka.input_topic: topic '{k.input_topic}' does not exist on {k.bootstrap}",
                              hint="create it, or produce to it first with `streamlearn produce -c app.yaml --input events.jsonl`")
        if k.create_topics:
            for t in (k.output_topic, k.dlq_topic):
                kafka_io.ensure_topic(adm, t, len(parts), {"max.message.bytes": str(k.max_message_bytes)},
                                      replication_factor=k.replication_factor)
        if self.cfg.label_mode and starting:  # co-partitioned, or refuse to start naming both counts
            ensure_label_topics(adm, self.cfg, len(parts))
        elif self.cfg.label_mode:
            parts = self._label_ready(running_counts(adm, self.cfg, len(parts)), parts, known)
        else:  # inline mode: the sample log only when configured
            ensure_samples_topic(adm, self.cfg, len(parts))
        return parts

    def _label_ready(self, counts: LabelTopicCounts, parts: list[int], known_parts: list[int]) -> list[int]:
        """Input partitions beyond the label-mode topics' counts wait (see `label_topics`); warn once per change."""
        lagging = counts.lagging
        if lagging != self._label_wait:
            if lagging:
                logs.event(log, logging.WARNING, "label_partitions_waiting", topic=counts.input_topic,
                           input_partitions=counts.input_partitions, label_topic_partitions=lagging,
                           waiting=[p for p in parts if p >= counts.usable],
                           hint=f"add partitions to {', '.join(lagging)} up to {counts.input_partitions} (same partitioner as "
                                "the input's producers): the new input partitions are owned once they exist")
            elif self._label_wait:
                logs.event(log, logging.INFO, "label_partitions_ready", topic=counts.input_topic,
                           partitions=counts.input_partitions)
            self._label_wait = lagging
        known = set(known_parts)  # partitions already owned keep running whatever the counts say
        return [p for p in parts if p < counts.usable or p in known]
