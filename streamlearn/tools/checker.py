"""The exactly-once checker: audits committed output against the input, from Kafka alone.

Tooling, not engine: the chaos and engine tests, the demo and the benchmark
use it to judge a run, so it shares no state with the workers. It reads
topics with its own consumers and rebuilds the fault-free reference model
in-process.

- I1 (`check_i1`): every input offset has exactly one record visible to
  read_committed (a prediction, or a dead letter for a bad record); none
  missing, none duplicated; per input partition, predictions appear in
  input-offset order and carry the input's id.
- I2 (`reference_state`, `model_differences`): a model equals the one
  trained fault-free, in order, on the same records, through the same hot
  path (probe predictions, metric, event and version counts).
- I5 and I2 in label mode: `streamlearn.tools.label_checker`.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from connectors.kafka_records import read_topic
from streamlearn.config import AppConfig
from streamlearn.model import step
from streamlearn.model.codec import EventDecoder
from streamlearn.model.spec import build_metric, build_model, model_kind
from streamlearn.state.checkpoint import ModelState

Key = tuple[int, int]  # (input partition, input offset)


def read_partitions(bootstrap: str, topic: str, partitions: Iterable[int], *, read_committed: bool = True,
                    deadline_s: float = 90.0) -> dict[int, list[Any]]:
    """Every record of the topic per partition, up to each partition's end.

    ReadTimeout if a partition never reports its end: with read_committed,
    most likely an open transaction holding back its last stable offset.
    """
    out: dict[int, list[Any]] = defaultdict(list)
    for m in read_topic(bootstrap, topic, partitions, read_committed=read_committed, to_end=True, deadline_s=deadline_s):
        out[int(m.partition() or 0)].append(m)
    return out


def read_app_topic(cfg: AppConfig, topic: str) -> dict[int, list[Any]]:
    """An app's topic per partition, with the app's Kafka security settings (empty if the topic does not exist)."""
    from connectors import kafka_io

    parts = kafka_io.topic_partitions(kafka_io.admin(cfg.kafka.bootstrap, cfg.kafka.consumer), topic) or []
    return read_partitions(cfg.kafka.bootstrap, topic, parts)


def audit_app(cfg: AppConfig) -> I1Report:
    """I1 of an app's input, prediction and dead-letter topics as they stand."""
    k = cfg.kafka
    return check_i1(read_app_topic(cfg, k.input_topic), read_app_topic(cfg, k.output_topic), read_app_topic(cfg, k.dlq_topic),
                    source_topic=k.input_topic)


@dataclass
class I1Report:
    inputs: int
    predictions: int = 0
    dead_letters: int = 0
    missing: list[Key] = field(default_factory=list)
    duplicated: list[Key] = field(default_factory=list)
    out_of_order: list[Key] = field(default_factory=list)
    wrong_id: list[Key] = field(default_factory=list)
    dlq_codes: dict[Key, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.out_of_order or self.wrong_id)

    def summary(self) -> str:
        return (f"inputs={self.inputs} predictions={self.predictions} dead_letters={self.dead_letters} "
                f"missing={len(self.missing)} {self.missing[:10]} duplicated={len(self.duplicated)} {self.duplicated[:10]} "
                f"out_of_order={self.out_of_order[:10]} wrong_id={self.wrong_id[:10]}")


def _input_id(m: Any) -> Any:
    try:
        return orjson.loads(m.value())["id"]
    except Exception:  # a malformed record has no id to compare
        return None


def check_i1(inputs: Mapping[int, Sequence[Any]], outputs: Mapping[int, Sequence[Any]], dead_letters: Mapping[int, Sequence[Any]],
             source_topic: str | None = None) -> I1Report:
    """I1 over committed messages, each topic as read per partition (`read_partitions`).

    Outputs and dead letters name the input (partition, offset) they answer;
    order is checked within each output partition, the only order Kafka keeps.
    With `source_topic`, dead letters of other topics (label mode's refused
    labels) are not answers to input records and are left out.
    """
    seen: Counter[Key] = Counter()
    ids: dict[Key, Any] = {}
    rep = I1Report(inputs=sum(len(v) for v in inputs.values()))
    for msgs in outputs.values():
        last: dict[int, int] = {}
        for m in msgs:
            doc = orjson.loads(m.value())
            key = (int(doc["partition"]), int(doc["offset"]))
            seen[key] += 1
            ids[key] = doc["id"]
            rep.predictions += 1
            if key[1] <= last.get(key[0], -1):
                rep.out_of_order.append(key)
            last[key[0]] = key[1]
    for m in (m for msgs in dead_letters.values() for m in msgs):
        h: dict[str, Any] = {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}
        if source_topic is not None and h.get("streamlearn.source.topic", source_topic) != source_topic:
            continue
        key = (int(h["streamlearn.source.partition"]), int(h["streamlearn.source.offset"]))
        seen[key] += 1
        rep.dead_letters += 1
        rep.dlq_codes[key] = h["streamlearn.error.code"]
    expected = {(p, m.offset()): m for p, msgs in inputs.items() for m in msgs}
    rep.wrong_id = [k for k, m in expected.items() if k in ids and _input_id(m) != ids[k]]
    rep.missing = sorted(k for k in expected if seen[k] == 0)
    rep.duplicated = sorted(k for k, n in seen.items() if n > 1 or k not in expected)
    return rep


def reference_state(cfg: AppConfig, records: Iterable[Any], partition: int) -> ModelState:
    """The fault-free model: the partition's records, in order, through the same hot path."""
    model = build_model(cfg.model)
    kind = model_kind(model)
    dec = EventDecoder(cfg.fields, is_classifier=kind.is_classifier, is_multiclass=kind.is_multiclass,
                       classes=cfg.model.classes, max_value_bytes=cfg.processing.max_value_bytes)
    state = ModelState(model, build_metric(cfg.model), offset=0, model_version=0, events=0)
    step.process(state, list(records), dec, partition, kind.is_classifier, None, None)
    return state


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (an untrained model's proba may be NaN in both)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def model_differences(got: ModelState, ref: ModelState, probes: Sequence[dict[str, Any]]) -> list[str]:
    """Why `got` is not the reference model (empty: it is)."""
    why = []
    if (got.offset, got.events, got.model_version) != (ref.offset, ref.events, ref.model_version):
        why.append(f"(offset, events, version) {(got.offset, got.events, got.model_version)} != reference "
                   f"{(ref.offset, ref.events, ref.model_version)}")
    diffs = sum(not same(got.model.predict_proba_one(x), ref.model.predict_proba_one(x)) for x in probes)
    if diffs:
        why.append(f"{diffs}/{len(probes)} probe predictions differ")
    if not same(got.metric.get(), ref.metric.get()):
        why.append(f"metric {got.metric.get()} != reference {ref.metric.get()}")
    return why


def probe_set(n: int = 40) -> list[dict[str, Any]]:
    from streamlearn.tools.datasets import synthetic_events

    return [ev["features"] for ev in synthetic_events(n, seed=991, n_features=6)]
