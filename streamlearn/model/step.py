"""The per-event hot path: decode → predict → emit → learn, for one partition.

Live processing and recovery replay run this same function (replay passes
no emitters), because some river transformers change state while
predicting: skipping predict during replay would give a different model
(I2). Everything per batch or per checkpoint lives elsewhere; this module
is small on purpose so it can be profiled in isolation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from streamlearn.errors import DecodeError
from streamlearn.model import fused, metric_batch
from streamlearn.model.codec import EventDecoder, encode_prediction
from streamlearn.model.model_state import ModelState


class Record(Protocol):
    """What the hot path needs of a Kafka message (confluent_kafka.Message fits)."""

    def offset(self) -> int: ...
    def value(self) -> bytes | None: ...
    def key(self) -> bytes | None: ...


EmitPrediction = Callable[[bytes | None, bytes], None]
EmitDeadLetter = Callable[[Record, str, str], None]
Observe = Callable[[tuple[Any, Any, Any]], None]  # (features, label, prediction) of a learned event
# (record, id, features, label, prediction, version that predicted, event ts) of a learned event: the sample log
EmitSample = Callable[[Any, Any, dict[str, Any], Any, Any, int, Any], None]


def process(
    state: ModelState,
    records: Sequence[Record],
    decoder: EventDecoder,
    partition: int,
    is_classifier: bool,
    emit_prediction: EmitPrediction | None,
    emit_dead_letter: EmitDeadLetter | None,
    observe: Observe | None = None,
    emit_sample: EmitSample | None = None,
) -> int:
    """Run the records through the model in order; returns how many went to the DLQ.

    Advances `state.offset` past every record, so the caller commits it as
    the next offset to read. `observe` gets each learned event with the
    prediction made before learning it (the publish gate's window);
    `emit_sample` writes it to the training-sample log (kafka.samples_topic).
    """
    model_calls = fused.calls(state.model, is_classifier)
    decode = decoder.decode
    predict_proba, predict, learn = model_calls.predict_proba, model_calls.predict, model_calls.learn
    metric = state.metric
    update_metric = metric.update
    # (label, prediction) pairs for one exact update per chunk (metric_batch); None: per event, as any metric allows.
    pairs: list[tuple[Any, Any]] | None = [] if metric_batch.batchable(metric) else None
    add_pair = pairs.append if pairs is not None else None
    version = state.model_version
    events = state.events
    dead = 0
    # One clock read per batch: predicted_at is the batch's processing time, not per record.
    now_ms = int(time.time() * 1000)
    offset = state.offset
    for rec in records:
        offset = rec.offset()
        try:
            eid, x, label, ts = decode(rec.value())
        except DecodeError as exc:
            dead += 1
            if emit_dead_letter is not None:
                emit_dead_letter(rec, exc.code, exc.detail)
            continue
        proba: dict[Any, float] | None
        try:
            if predict_proba is not None:
                proba = predict_proba(x)
                pred = max(proba, key=proba.__getitem__) if proba else None
            else:
                proba = None
                pred = predict(x)
            if label is not None:
                learn(x, label)
        except Exception as exc:  # a model that cannot take this event must not stop the partition
            dead += 1
            if emit_dead_letter is not None:
                emit_dead_letter(rec, "model_error", f"{type(exc).__name__}: {exc}")
            continue
        events += 1
        if label is not None:
            if add_pair is not None:
                add_pair((label, pred))
            else:
                update_metric(label, pred)
            if emit_sample is not None:
                emit_sample(rec, eid, x, label, pred, version, ts)
            version += 1
            if observe is not None:
                observe((x, label, pred))
        if emit_prediction is not None:
            emit_prediction(rec.key(), encode_prediction(eid, pred, proba, partition, offset, version, ts, now_ms))
    if pairs:
        metric_batch.apply(metric, pairs)
    if records:
        state.offset = offset + 1
    state.model_version = version
    state.events = events
    state.extra["dlq"] = state.extra.get("dlq", 0) + dead
    return dead
