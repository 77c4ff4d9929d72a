"""Delayed-label test data (streamlearn.tools.label_data) produced and audited, shared by the label-mode integration and chaos tests."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson

from streamlearn.config import AppConfig
from streamlearn.tools import checker, label_checker
from streamlearn.tools.label_data import EARLY_S, WINDOW_S, LabelData, produce_stream


def label_sections(label_topic: str, samples_topic: str, journal_topic: str) -> dict[str, Any]:
    return {"kafka": {"label_topic": label_topic, "samples_topic": samples_topic},
            "labels": {"source": "topic", "window_s": WINDOW_S, "early_window_s": EARLY_S, "on_expiry": "default",
                       "default_label": False, "idle_advance_s": 3600, "journal_topic": journal_topic}}


def produce_data(cfg: AppConfig, d: LabelData, partitions: int, rate: float | None = 2000.0) -> None:
    produce_stream(cfg, d, partitions, rate)


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
