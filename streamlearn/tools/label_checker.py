"""The label-mode checker: I5 and I2 in label mode, from the committed topics alone.

- I5 (`check_i5`): per partition, the samples topic (read_committed) holds
  at most one sample per event id, only for events of that partition; a
  joined sample carries the first label of its id in the label topic's
  order, inside the join window; an expired sample carries the default
  label (none exist with `drop`); a label is learned at most once. What the
  test knows beyond that (which events must be joined, which expired) it
  asserts itself from `I5Report.outcomes`.
- I2 in label mode (`sample_log_state`): a fresh model of the same spec,
  trained in order on the partition's committed sample log, must equal the
  partition's checkpointed model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamlearn.config import AppConfig
from streamlearn.model.spec import build_metric, build_model
from streamlearn.state.checkpoint import ModelState
from streamlearn.tools.checker import read_app_topic


@dataclass
class I5Report:
    samples: int = 0
    outcomes: dict[Any, tuple[str, Any]] = field(default_factory=dict)  # event id -> (outcome, label)
    duplicated: list[Any] = field(default_factory=list)  # ids with more than one sample
    unknown: list[Any] = field(default_factory=list)  # samples of ids that are no event of their partition
    wrong_label: list[Any] = field(default_factory=list)  # joined with another label than the id's first one
    outside_window: list[Any] = field(default_factory=list)
    bad_expiry: list[Any] = field(default_factory=list)  # expired without the default label (or with drop)
    dlq_reasons: Counter[str] = field(default_factory=Counter)  # label dead letters by reason

    @property
    def ok(self) -> bool:
        return not (self.duplicated or self.unknown or self.wrong_label or self.outside_window or self.bad_expiry)

    def summary(self) -> str:
        return (f"samples={self.samples} duplicated={self.duplicated[:10]} unknown={self.unknown[:10]} "
                f"wrong_label={self.wrong_label[:10]} outside_window={self.outside_window[:10]} bad_expiry={self.bad_expiry[:10]} "
                f"dlq={dict(self.dlq_reasons)}")


def check_i5(cfg: AppConfig, events: Mapping[int, Sequence[Any]], labels: Mapping[int, Sequence[Any]],
             samples: Mapping[int, Sequence[Any]], dead_letters: Mapping[int, Sequence[Any]]) -> I5Report:
    lc = cfg.labels
    rep = I5Report()
    seen: Counter[Any] = Counter()
    for p, msgs in samples.items():
        event_ids = {_field(m, cfg.fields.id) for m in events.get(p, ())}
        first: dict[Any, Any] = {}
        for m in labels.get(p, ()):
            lid = _field(m, cfg.fields.id)
            if lid is not None and lid not in first:
                first[lid] = _field(m, cfg.fields.label)
        for m in msgs:
            s = orjson.loads(m.value())
            eid = s["id"]
            rep.samples += 1
            seen[eid] += 1
            rep.outcomes[eid] = (s["outcome"], s["label"])
            if eid not in event_ids:
                rep.unknown.append(eid)
            if s["outcome"] == "joined":
                if eid not in first or first[eid] != s["label"]:
                    rep.wrong_label.append(eid)
                delay_s = (s["label_ts"] - s["event_ts"]) / 1000
                if not -lc.early_window_s <= delay_s <= lc.window_s:
                    rep.outside_window.append(eid)
            elif lc.on_expiry != "default" or s["label"] != lc.default_label or s["label_ts"] is not None:
                rep.bad_expiry.append(eid)
    rep.duplicated = sorted((k for k, n in seen.items() if n > 1), key=str)
    for m in (m for msgs in dead_letters.values() for m in msgs):
        h = {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}
        if h.get("streamlearn.source.topic") == cfg.label_topic:
            rep.dlq_reasons[str(h.get("streamlearn.error.code"))] += 1
    return rep


def audit_labels(cfg: AppConfig) -> I5Report:
    """I5 of an app's events, labels, samples and dead letters as they stand (read_committed)."""
    samples_topic = cfg.samples_topic
    assert samples_topic is not None, "label mode always has a samples topic"
    return check_i5(cfg, read_app_topic(cfg, cfg.kafka.input_topic), read_app_topic(cfg, cfg.label_topic),
                    read_app_topic(cfg, samples_topic), read_app_topic(cfg, cfg.kafka.dlq_topic))


def sample_log_state(cfg: AppConfig, samples: Sequence[Any]) -> ModelState:
    """A fresh model of the app's spec trained in order on a committed sample log (and its prequential metric)."""
    model, metric = build_model(cfg.model), build_metric(cfg.model)
    for m in samples:
        s = orjson.loads(m.value())
        model.learn_one(s["features"], s["label"])
        metric.update(s["label"], s["prediction"])
    return ModelState(model, metric, offset=0, model_version=len(samples), events=0)


def _field(m: Any, name: str) -> Any:
    try:
        return orjson.loads(m.value()).get(name)
    except (orjson.JSONDecodeError, AttributeError):
        return None
