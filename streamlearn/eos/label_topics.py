"""The label-mode topics (and inline mode's sample log) next to an input topic that may grow while running.

A label joins only the events of its own partition number, so partition p
of the input can run in label mode only once the label, journal and sample
topics all have a partition p. At start a mismatch is an error
(`label_step.ensure_label_topics`); while running, the input topic may grow
before the others do (an operator adds partitions one topic at a time).
The topics the app creates itself (journal, samples, with
`kafka.create_topics`) are grown to the input's count here. The label topic
belongs to the label producers, whose partitioner must change together with
the event producers', so it is never grown by the app: the new input
partitions wait, unassigned, until it has them; the Coordinator logs a
warning naming both counts meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import AdminClient

from connectors import kafka_io
from streamlearn.config import AppConfig
from streamlearn.errors import ConfigError


@dataclass(frozen=True)
class LabelTopicCounts:
    """Partition counts of the label-mode topics next to the input's, and how many input partitions can run."""

    input_topic: str
    input_partitions: int
    counts: dict[str, int]  # topic -> partition count (0: missing) of the label, journal and samples topics
    usable: int  # input partitions 0 .. usable-1 have a partner partition in every label-mode topic

    @property
    def lagging(self) -> dict[str, int]:
        return {t: n for t, n in self.counts.items() if n < self.input_partitions}


def running_counts(admin: AdminClient, cfg: AppConfig, input_partitions: int) -> LabelTopicCounts:
    """Grow the app's own label-mode topics to the input's count; how many input partitions can run in label mode."""
    counts: dict[str, int] = {}
    for topic, own in ((cfg.label_topic, False), (cfg.journal_topic, True), (cfg.samples_topic, True)):
        if topic is None:
            continue
        parts = kafka_io.topic_partitions(admin, topic)
        if own and cfg.kafka.create_topics:
            if parts is None:
                kafka_io.ensure_topic(admin, topic, input_partitions, replication_factor=cfg.kafka.replication_factor)
            elif len(parts) < input_partitions:
                kafka_io.grow_topic(admin, topic, input_partitions)
            parts = kafka_io.topic_partitions(admin, topic)
        counts[topic] = len(parts or [])
    usable = min([input_partitions, *counts.values()])
    return LabelTopicCounts(cfg.kafka.input_topic, input_partitions, counts, usable)


def ensure_samples_topic(admin: AdminClient, cfg: AppConfig, input_partitions: int) -> None:
    """Inline mode with kafka.samples_topic: partition p gets input partition p's samples, so it needs as many.

    Created (or grown, when the input grew) with `kafka.create_topics`; otherwise
    too few partitions is a configuration error naming both counts.
    """
    topic = cfg.samples_topic
    if topic is None:
        return
    parts = kafka_io.topic_partitions(admin, topic)
    if cfg.kafka.create_topics:
        if parts is None:
            kafka_io.ensure_topic(admin, topic, input_partitions, replication_factor=cfg.kafka.replication_factor)
        elif len(parts) < input_partitions:
            kafka_io.grow_topic(admin, topic, input_partitions)
        parts = kafka_io.topic_partitions(admin, topic)
    if len(parts or []) < input_partitions:
        raise ConfigError(f"kafka.samples_topic: topic '{topic}' has {len(parts or [])} partitions but kafka.input_topic "
                          f"'{cfg.kafka.input_topic}' has {input_partitions}; partition p of the sample log holds input "
                          "partition p's samples", hint=f"give '{topic}' {input_partitions} partitions, or set "
                                                        "kafka.create_topics: true")
