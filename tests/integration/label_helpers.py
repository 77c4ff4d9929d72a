"""Delayed-label test data and its audit, shared by the label-mode integration and chaos tests.

Events are produced in event-time order, labels too (sorted by their own
ts), so what each event's outcome must be follows from the timestamps alone,
whatever the interleaving of the two streams at run time:
- a normal label (delay in [-early/2, window/2]) joins;
- a late label (delay 1.5 windows) is `late_label` and its event expires;
- a duplicate (the same id again, 1 s after the first label) is `duplicate_label`;
- a label for an id that has no event is `orphan_label` (only early in the
  stream, so later events move the event clock past it);
- an event with no label expires, learned with the default (false).
A last label per partition (explicit partition, far in event time) moves the
label clock past every window, so every event has its outcome by the end.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from connectors import kafka_io
from connectors.kafka_records import Record, produce_records
from streamlearn.config import AppConfig
from streamlearn.tools import checker, label_checker

T0 = 1_764_000_000_000
WINDOW_S, EARLY_S = 60.0, 20.0


def label_sections(label_topic: str, samples_topic: str, journal_topic: str) -> dict[str, Any]:
    return {"kafka": {"label_topic": label_topic, "samples_topic": samples_topic},
            "labels": {"source": "topic", "window_s": WINDOW_S, "early_window_s": EARLY_S, "on_expiry": "default",
                       "default_label": False, "idle_advance_s": 3600, "journal_topic": journal_topic}}


@dataclass
class LabelData:
    events: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)  # sorted by ts
    expected: dict[str, tuple[str, bool]] = field(default_factory=dict)  # id -> (outcome, label learned)
    truth: dict[str, bool] = field(default_factory=dict)  # the label inline mode would learn (default for the unlabelled)
    late: int = 0
    duplicate: int = 0
    orphan: int = 0


def make_data(n: int, seed: int, step_ms: int = 100) -> LabelData:
    rng = random.Random(seed)
    d = LabelData()
    for i in range(n):
        eid, ts = f"ev-{seed}-{i}", T0 + i * step_ms
        x = {f"x{j}": round(rng.gauss(0, 1), 4) for j in range(4)}
        y = x["x0"] + 0.5 * x["x1"] - 0.3 * x["x2"] > 0
        d.events.append({"id": eid, "features": x, "ts": ts})
        r = rng.random()
        if r < 0.90:
            lts = ts + int(rng.uniform(-EARLY_S / 2, WINDOW_S / 2) * 1000)
            d.labels.append({"id": eid, "label": y, "ts": lts})
            d.expected[eid], d.truth[eid] = ("joined", y), y
            if rng.random() < 0.03:
                d.labels.append({"id": eid, "label": not y, "ts": lts + 1000})
                d.duplicate += 1
        elif r < 0.92:
            d.labels.append({"id": eid, "label": y, "ts": ts + int(WINDOW_S * 1500)})
            d.expected[eid], d.truth[eid] = ("expired", False), False
            d.late += 1
        else:
            d.expected[eid], d.truth[eid] = ("expired", False), False
        if i < n * 0.8 and rng.random() < 0.01:
            d.labels.append({"id": f"ghost-{seed}-{i}", "label": True, "ts": ts})
            d.orphan += 1
    d.labels.sort(key=lambda lab: lab["ts"])
    return d


def produce_data(cfg: AppConfig, d: LabelData, partitions: int, rate: float | None = 2000.0) -> None:
    """Events and labels merged in event-time order, at `rate` records per second: the learner sees the
    labels come in behind the events as in production (all events first would leave every model untrained)."""
    producer = kafka_io.make_producer(cfg.kafka.bootstrap)
    merged = sorted([*((e["ts"], 0, cfg.kafka.input_topic, e) for e in d.events), *((lab["ts"], 1, cfg.label_topic, lab) for lab in d.labels)],
                    key=lambda t: (t[0], t[1]))
    pacer = kafka_io.Pacer(rate)
    for _ts, _kind, topic, doc in merged:
        kafka_io.produce_blocking(producer, topic, orjson.dumps(doc), str(doc["id"]).encode())
        pacer.tick(producer)
    end_ts = d.events[-1]["ts"] + int(WINDOW_S * 3000)
    ticks = [Record(f"tick-{p}".encode(), orjson.dumps({"id": f"tick-{p}", "label": False, "ts": end_ts}), p) for p in range(partitions)]
    produce_records(producer, cfg.label_topic, ticks)


@dataclass
class LabelAudit:
    i1: checker.I1Report
    i5: label_checker.I5Report
    model_mismatch: dict[int, list[str]]
    accuracy: float  # prequential accuracy of what label mode learned (prediction vs learned label)


def audit(cfg: AppConfig, probes: list[dict[str, Any]], checkpoints: dict[int, Any]) -> LabelAudit:
    """I1, I5 and I2 in label mode (checkpointed model == fresh model trained on the committed sample log)."""
    k = cfg.kafka
    assert cfg.samples_topic is not None
    events, labels = checker.read_app_topic(cfg, k.input_topic), checker.read_app_topic(cfg, cfg.label_topic)
    samples, dlq = checker.read_app_topic(cfg, cfg.samples_topic), checker.read_app_topic(cfg, k.dlq_topic)
    i1 = checker.check_i1(events, checker.read_app_topic(cfg, k.output_topic), dlq, source_topic=k.input_topic)
    i5 = label_checker.check_i5(cfg, events, labels, samples, dlq)
    mismatch: dict[int, list[str]] = {}
    right = total = 0
    for p, msgs in samples.items():
        ref = label_checker.sample_log_state(cfg, msgs)
        got = checkpoints[p]
        why = []
        if got.model_version != ref.model_version:
            why.append(f"model_version {got.model_version} != {ref.model_version} samples")
        diffs = sum(not checker.same(got.model.predict_proba_one(x), ref.model.predict_proba_one(x)) for x in probes)
        if diffs:
            why.append(f"{diffs}/{len(probes)} probe predictions differ")
        if not checker.same(got.metric.get(), ref.metric.get()):
            why.append(f"metric {got.metric.get()} != {ref.metric.get()}")
        if why:
            mismatch[p] = why
        for m in msgs:
            s = orjson.loads(m.value())
            total += 1
            right += s["prediction"] == s["label"]
    return LabelAudit(i1, i5, mismatch, right / max(total, 1))


def probes(n: int = 50) -> list[dict[str, Any]]:
    rng = random.Random(99)
    return [{f"x{j}": round(rng.gauss(0, 1), 4) for j in range(4)} for _ in range(n)]
