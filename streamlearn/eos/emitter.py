"""Step 3's outputs: predictions and dead letters, produced into the open batch.

Under exactly_once both go into the partition's open transaction, so they
become visible with the input offset or not at all (I1). A dead letter
carries the record unchanged, with headers naming the error and where the
record came from. The returned closures run once per event on the hot path
(`model.step`): they bind everything they need up front.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer

from streamlearn import logs
from streamlearn.model import step

log = logs.get("protocol")


def emitters(
    producer: Producer,
    app: str,
    source_topic: str,
    partition_id: int,
    out_topic: str,
    dlq_topic: str,
    out_partition: int,
    ctx: Callable[..., dict[str, Any]],
) -> tuple[step.EmitPrediction, step.EmitDeadLetter]:
    produce = producer.produce
    src_part = str(partition_id).encode()

    def emit(key: bytes | None, value: bytes) -> None:
        try:
            produce(out_topic, value, key, out_partition)
        except BufferError:
            producer.flush(5)
            produce(out_topic, value, key, out_partition)

    def dead_letter(rec: step.Record, code: str, detail: str) -> None:
        headers = list(getattr(rec, "headers", lambda: None)() or [])
        headers += [
            ("streamlearn.error.code", code.encode()),
            ("streamlearn.error", detail[:1000].encode("utf-8", "replace")),
            ("streamlearn.source.topic", source_topic.encode()),
            ("streamlearn.source.partition", src_part),
            ("streamlearn.source.offset", str(rec.offset()).encode()),
            ("streamlearn.app", app.encode()),
        ]
        try:
            produce(dlq_topic, rec.value(), rec.key(), out_partition, headers=headers)
        except BufferError:
            producer.flush(5)
            produce(dlq_topic, rec.value(), rec.key(), out_partition, headers=headers)
        logs.event(log, logging.INFO, "dead_letter", **ctx(offset=rec.offset(), code=code))

    return emit, dead_letter
