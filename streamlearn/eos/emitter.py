"""Step 3's outputs: predictions and dead letters, produced into the open batch.

Under exactly_once both go into the partition's open transaction, so they
become visible with the input offset or not at all (I1). A dead letter
carries the record unchanged, with headers naming the error and where the
record came from. The returned closures run once per event on the hot path
(`model.step`): they bind everything they need up front.

Nothing produced is taken on trust: every message carries the partition's
`DeliveryReports`, and a produce() that raises is recorded there too, so the
commit step knows a batch failed even when `flush()` says 0 left (see
`connectors.kafka_delivery`). A dead letter larger than the dead-letter
topic accepts goes with its value dropped (header `streamlearn.value.dropped`
= its size): the same record would be refused on every replay, and a record
that can never be written must not stop the partition forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import KafkaException, Producer

from connectors.kafka_delivery import DeliveryReports
from streamlearn import logs
from streamlearn.labels.records import encode_sample
from streamlearn.model import step

log = logs.get("protocol")

SOURCE_OFFSET_HEADER = "streamlearn.source.offset"
VALUE_DROPPED_HEADER = "streamlearn.value.dropped"
_BATCH_OVERHEAD = 512  # record batch + record framing, generously: the topic's limit counts the whole batch


def input_offset(msg: Any) -> int | None:
    """The input offset a produced message answers: a dead letter's header, or a prediction's `offset`."""
    for k, v in msg.headers() or []:
        if k == SOURCE_OFFSET_HEADER and v is not None:
            return int(v)
    return input_offset_of(msg.value())


def emitters(
    producer: Producer,
    app: str,
    source_topic: str,
    partition_id: int,
    out_topic: str,
    dlq_topic: str,
    out_partition: int,
    ctx: Callable[..., dict[str, Any]],
    reports: DeliveryReports,
    dlq_limit: int,
) -> tuple[step.EmitPrediction, step.EmitDeadLetter]:
    produce = producer.produce
    src_part = str(partition_id).encode()

    def send(topic: str, value: bytes | None, key: bytes | None, offset: int | None,
             headers: list[tuple[str, str | bytes | None]] | None) -> None:
        try:
            try:
                produce(topic, value, key, out_partition, reports, headers=headers)
            except BufferError:
                producer.flush(5)
                produce(topic, value, key, out_partition, reports, headers=headers)
        except KafkaException as exc:  # refused before it left (too large for the producer, failed transaction)
            reports.record(exc.args[0], topic, len(value or b"") + len(key or b""), offset)

    def emit(key: bytes | None, value: bytes) -> None:
        try:
            produce(out_topic, value, key, out_partition, reports)
        except (BufferError, KafkaException):
            send(out_topic, value, key, input_offset_of(value), None)

    def dead_letter(rec: step.Record, code: str, detail: str) -> None:
        offset = rec.offset()
        headers: list[tuple[str, str | bytes | None]] = list(getattr(rec, "headers", lambda: None)() or [])
        headers += [
            ("streamlearn.error.code", code.encode()),
            ("streamlearn.error", detail[:1000].encode("utf-8", "replace")),
            ("streamlearn.source.topic", source_topic.encode()),
            ("streamlearn.source.partition", src_part),
            (SOURCE_OFFSET_HEADER, str(offset).encode()),
            ("streamlearn.app", app.encode()),
        ]
        value, key = rec.value(), rec.key()
        size = len(value or b"") + len(key or b"") + sum(len(k) + len(v or b"") for k, v in headers) + _BATCH_OVERHEAD
        dropped = size > dlq_limit
        if dropped:
            headers.append((VALUE_DROPPED_HEADER, str(len(value or b"")).encode()))
            value = None
        send(dlq_topic, value, key, offset, headers)
        logs.event(log, logging.INFO, "dead_letter", **ctx(offset=offset, code=code, value_dropped=dropped))

    return emit, dead_letter


def sample_emitter(producer: Producer, topic: str | None, partition_id: int,
                   reports: DeliveryReports) -> step.EmitSample | None:
    """Inline mode's training-sample log (None when kafka.samples_topic is unset: the hot path pays nothing).

    The label travelled with the event, so the sample is `joined` with
    label_ts = event_ts; like label mode, `model_version` is the version that
    made the prediction, and a missing event ts is the record's timestamp.
    """
    if topic is None:
        return None
    produce = producer.produce

    def sample(rec: Any, eid: Any, x: dict[str, Any], label: Any, pred: Any, version: int, ts: Any) -> None:
        ets = float(ts) if ts is not None else float(rec.timestamp()[1])
        value, key = encode_sample(eid, orjson.dumps(x), label, pred, version, ets, ets, b"joined"), str(eid).encode()
        try:
            try:
                produce(topic, value, key, partition_id, reports)
            except BufferError:
                producer.flush(5)
                produce(topic, value, key, partition_id, reports)
        except KafkaException as exc:  # refused before it left: the commit step sees it and aborts
            reports.record(exc.args[0], topic, len(value) + len(key), rec.offset())

    return sample


def input_offset_of(prediction: bytes | None) -> int | None:
    """The `offset` field of an encoded prediction (None if it has none)."""
    try:
        return int(orjson.loads(prediction or b"null")["offset"])
    except Exception:
        return None
