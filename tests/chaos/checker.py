"""Independent checker: audits a finished scenario from Kafka and Redis alone.

It shares no state with the engine: its own read_committed consumer reads
the prediction and dead-letter topics from the beginning, its own plain
consumer reads the input, and the fault-free reference model is rebuilt
in-process from the input records.

- I1: every input offset has exactly one record visible to read_committed
  (a prediction, or a dead letter for a bad record); none missing, none
  duplicated; per input partition, predictions appear in input-offset order.
- I2: the model in the final Redis checkpoint predicts exactly like a model
  trained fault-free on the same records (probe set), with the same event
  and version counts.
- I4: `I4Sampler` samples the Redis checkpoint offset, then Kafka's
  committed offset, repeatedly during the run; the first must never exceed
  the second. (Committed offsets only grow, so reading them second can only
  hide nothing: a violation seen is a violation.)
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from confluent_kafka import Consumer, KafkaError, TopicPartition

from connectors.redis_store import CheckpointStore
from streamlearn.config import load_config
from streamlearn.model import step
from streamlearn.model.codec import EventDecoder
from streamlearn.model.spec import build_metric, build_model, model_kind
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState
from tests.chaos.harness import PARTITIONS, Scenario


def _consumer(bootstrap: str, read_committed: bool = True) -> Consumer:
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"chaos-checker-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "max.partition.fetch.bytes": 4_000_000,
        "fetch.max.bytes": 8_000_000,
        "log_level": 3,
    })


def read_topic(bootstrap: str, topic: str, timeout_s: float = 90.0, read_committed: bool = True) -> dict[int, list[Any]]:
    """All records of the topic per partition, read from the beginning until every partition reports EOF."""
    c = _consumer(bootstrap, read_committed)
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    out: dict[int, list[Any]] = defaultdict(list)
    eof: set[int] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while len(eof) < PARTITIONS:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: no EOF on partitions {sorted(set(range(PARTITIONS)) - eof)} within {timeout_s:.0f}s "
                                     "(an open transaction holding back read_committed?)")
            for m in c.consume(500, timeout=0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    raise AssertionError(f"{topic}: consume error {err}")
                eof.discard(m.partition())
                out[m.partition()].append(m)
    finally:
        c.close()
    return out


@dataclass
class I1Report:
    inputs: int
    predictions: int
    dead_letters: int
    missing: list[tuple[int, int]] = field(default_factory=list)
    duplicated: list[tuple[int, int]] = field(default_factory=list)
    out_of_order: list[tuple[int, int]] = field(default_factory=list)
    wrong_id: list[tuple[int, int]] = field(default_factory=list)
    dlq_codes: dict[tuple[int, int], str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.out_of_order or self.wrong_id)

    def summary(self) -> str:
        return (f"inputs={self.inputs} predictions={self.predictions} dead_letters={self.dead_letters} "
                f"missing={len(self.missing)} {self.missing[:10]} duplicated={len(self.duplicated)} {self.duplicated[:10]} "
                f"out_of_order={self.out_of_order[:10]} wrong_id={self.wrong_id[:10]}")


def check_i1(sc: Scenario, inputs: dict[int, list[Any]]) -> I1Report:
    outputs = read_topic(sc.env.bootstrap, sc.out_topic)
    dlq = read_topic(sc.env.bootstrap, sc.dlq_topic)
    seen: Counter[tuple[int, int]] = Counter()
    ids: dict[tuple[int, int], Any] = {}
    rep = I1Report(inputs=sum(len(v) for v in inputs.values()), predictions=0, dead_letters=0)
    for _q, msgs in outputs.items():
        last: dict[int, int] = {}
        for m in msgs:
            doc = orjson.loads(m.value())
            key = (int(doc["partition"]), int(doc["offset"]))
            seen[key] += 1
            ids[key] = doc["id"]
            rep.predictions += 1
            p, off = key
            if off <= last.get(p, -1):
                rep.out_of_order.append(key)
            last[p] = off
    for msgs in dlq.values():
        for m in msgs:
            h = {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}
            key = (int(h["streamlearn.source.partition"]), int(h["streamlearn.source.offset"]))
            seen[key] += 1
            rep.dead_letters += 1
            rep.dlq_codes[key] = h["streamlearn.error.code"]
    expected = set()
    for p, msgs in inputs.items():
        for m in msgs:
            key = (p, m.offset())
            expected.add(key)
            if key in ids:
                try:
                    want = orjson.loads(m.value())["id"]
                except Exception:
                    want = None
                if want != ids[key]:
                    rep.wrong_id.append(key)
    rep.missing = sorted(k for k in expected if seen[k] == 0)
    rep.duplicated = sorted(k for k, n in seen.items() if n > 1 or k not in expected)
    return rep


def probe_set(n: int = 40) -> list[dict[str, Any]]:
    from streamlearn.tools.datasets import synthetic_events

    return [ev["features"] for ev in synthetic_events(n, seed=991, n_features=6)]


@dataclass
class I2Report:
    partitions: dict[int, str] = field(default_factory=dict)  # "" when equal, else why not

    @property
    def ok(self) -> bool:
        return all(v == "" for v in self.partitions.values())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def check_i2(sc: Scenario, inputs: dict[int, list[Any]], committed: dict[int, int | None]) -> I2Report:
    cfg = load_config(sc.config_path, environ={})
    kind = model_kind(build_model(cfg.model))
    decoder = EventDecoder(cfg.fields, is_classifier=kind.is_classifier, is_multiclass=kind.is_multiclass,
                           classes=cfg.model.classes, max_value_bytes=cfg.processing.max_value_bytes)
    store = CheckpointStore(redis.Redis.from_url(sc.env.redis_url), cfg.redis.key_prefix, cfg.app, cfg.kafka.input_topic)
    key = sc.env.checkpoint_secret.encode()
    probes = probe_set()
    rep = I2Report()
    for p in range(PARTITIONS):
        ref = ModelState(build_model(cfg.model), build_metric(cfg.model), offset=0, model_version=0, events=0)
        step.process(ref, inputs.get(p, []), decoder, p, kind.is_classifier, None, None)
        stored = store.read_checkpoint(p)
        if stored is None:
            rep.partitions[p] = "no checkpoint"
            continue
        got = checkpoint.decode(stored.blob, key)
        why = []
        if stored.offset != committed.get(p):
            why.append(f"checkpoint offset {stored.offset} != committed {committed.get(p)}")
        if (got.offset, got.events, got.model_version) != (ref.offset, ref.events, ref.model_version):
            why.append(f"(offset, events, version) {(got.offset, got.events, got.model_version)} != reference "
                       f"{(ref.offset, ref.events, ref.model_version)}")
        diffs = sum(not _same(got.model.predict_proba_one(x), ref.model.predict_proba_one(x)) for x in probes)
        if diffs:
            why.append(f"{diffs}/{len(probes)} probe predictions differ")
        if not _same(got.metric.get(), ref.metric.get()):
            why.append(f"metric {got.metric.get()} != reference {ref.metric.get()}")
        rep.partitions[p] = "; ".join(why)
    return rep


class I4Sampler:
    """Background sampler of (checkpoint offset, committed offset) per partition."""

    def __init__(self, sc: Scenario, every_s: float = 0.25) -> None:
        self.sc = sc
        self.every_s = every_s
        self.samples = 0
        self.violations: list[tuple[int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> I4Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        cfg = load_config(self.sc.config_path, environ={})
        r = redis.Redis.from_url(self.sc.env.redis_url, socket_timeout=1, socket_connect_timeout=1)
        store = CheckpointStore(r, cfg.redis.key_prefix, cfg.app, cfg.kafka.input_topic)
        c = Consumer({"bootstrap.servers": self.sc.env.bootstrap, "group.id": cfg.group_id, "enable.auto.commit": False, "log_level": 0})
        tps = [TopicPartition(cfg.kafka.input_topic, p) for p in range(PARTITIONS)]
        try:
            while not self._stop.wait(self.every_s):
                try:
                    ck = {p: store.checkpoint_meta(p).get("offset") for p in range(PARTITIONS)}
                    committed = {tp.partition: tp.offset for tp in c.committed(tps, timeout=2)}
                except Exception:  # a service is down on purpose: no observation this round
                    continue
                for p, off in ck.items():
                    if off is None:
                        continue
                    self.samples += 1
                    k = committed.get(p, -1)
                    if k is None or k < 0 or off > k:
                        self.violations.append((p, off, k if k is not None else -1))
        finally:
            c.close()


def committed_offsets(sc: Scenario) -> dict[int, int | None]:
    cfg = load_config(sc.config_path, environ={})
    c = Consumer({"bootstrap.servers": sc.env.bootstrap, "group.id": cfg.group_id, "enable.auto.commit": False, "log_level": 0})
    try:
        tps = c.committed([TopicPartition(sc.topic, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        c.close()
    return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in tps}


def caught_up(sc: Scenario, expected_total: int) -> bool:
    """True once Kafka's committed offsets cover every produced input record."""
    try:
        committed = committed_offsets(sc)
    except Exception:
        return False
    return sum(v or 0 for v in committed.values()) >= expected_total


@dataclass
class Verdict:
    i1: I1Report
    i2: I2Report
    committed: dict[int, int | None]
    inputs: dict[int, list[Any]]

    def row(self) -> dict[str, Any]:
        return {
            "events": self.i1.inputs,
            "predictions": self.i1.predictions,
            "dead_letters": self.i1.dead_letters,
            "lost": len(self.i1.missing),
            "duplicated": len(self.i1.duplicated),
            "order_ok": not self.i1.out_of_order,
            "model_equal": self.i2.ok,
        }


def audit(sc: Scenario) -> Verdict:
    """After a graceful stop: I1 over every input offset, I2 on every partition."""
    inputs = read_topic(sc.env.bootstrap, sc.topic, read_committed=False)
    committed = committed_offsets(sc)
    i1 = check_i1(sc, inputs)
    i2 = check_i2(sc, inputs, committed)
    return Verdict(i1, i2, committed, inputs)


def assert_exactly_once(v: Verdict, expect_dead_letters: int = 0) -> None:
    assert v.i1.ok, "I1 violated: " + v.i1.summary()
    assert v.i1.dead_letters == expect_dead_letters, f"unexpected dead letters: {list(v.i1.dlq_codes.items())[:10]}"
    assert v.i2.ok, f"I2 violated: {v.i2.partitions}"
    assert v.i1.predictions + v.i1.dead_letters == v.i1.inputs
