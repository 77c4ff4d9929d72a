"""A delayed-label stream whose join outcomes follow from its timestamps: the demo's and the tests' data.

Events are meant to be produced in event-time order, labels too (sorted by
their own ts), so what each event's outcome must be follows from the
timestamps alone, whatever the interleaving of the two streams at run time:
- a normal label (delay in [-early/2, window/2]) joins;
- a late label (delay 1.5 windows) is `late_label` and its event expires;
- a duplicate (the same id again, 1 s after the first label) is `duplicate_label`;
- a label for an id that has no event is `orphan_label` (only early in the
  stream, so later events move the event clock past it);
- an event with no label expires, learned with the default (false).
`ticks` are one last label per partition, far ahead in event time: they move
the label clock past every window, so every event has its outcome by the end.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamlearn.config import AppConfig

T0 = 1_764_000_000_000
WINDOW_S, EARLY_S = 60.0, 20.0


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


def ticks(d: LabelData, partitions: int) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of one clock-moving label per partition, three windows after the last event."""
    end_ts = d.events[-1]["ts"] + int(WINDOW_S * 3000)
    return [(p, f"tick-{p}".encode(), orjson.dumps({"id": f"tick-{p}", "label": False, "ts": end_ts})) for p in range(partitions)]


def produce_stream(cfg: AppConfig, d: LabelData, partitions: int, rate: float | None) -> None:
    """Events and labels merged in event-time order, at `rate` records per second, then the ticks: the
    learner sees the labels come in behind the events as in production (all events first would leave
    every model untrained while it predicts)."""
    from connectors import kafka_io
    from connectors.kafka_records import Record, produce_records

    producer = kafka_io.make_producer(cfg.kafka.bootstrap)
    merged = sorted([*((e["ts"], 0, cfg.kafka.input_topic, e) for e in d.events), *((lab["ts"], 1, cfg.label_topic, lab) for lab in d.labels)],
                    key=lambda t: (t[0], t[1]))
    pacer = kafka_io.Pacer(rate)
    for _ts, _kind, topic, doc in merged:
        kafka_io.produce_blocking(producer, topic, orjson.dumps(doc), str(doc["id"]).encode())
        pacer.tick(producer)
    produce_records(producer, cfg.label_topic, [Record(key, value, p) for p, key, value in ticks(d, partitions)])
