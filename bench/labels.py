"""Delayed labels vs inline labels, same data, same machine, same run: `python -m bench.labels [-n N] [--repeat R]`.

Two levels, both written as raw JSON under bench/results/raw/ (the
benchmark issue renders docs/benchmarks.md from there):

- `hotpath`: the engine without the broker. Inline: `model.step.process`
  over labelled events. Label mode: `labels.join.Joiner.run_chunk` over the
  same events without labels plus their labels (90 % labelled, delays in
  event time, some before their event, expiry with a default), in chunks of
  `--chunk` records, with outputs that only collect (predictions and
  samples). The difference per event is what the join costs.

End to end the broker and the transactions cost the same in both modes per
record; label mode has about 1.9 records per event (the event and its
label) plus one journal record per chunk.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import dataset, machine_info
from bench.hotpath import Rec
from streamlearn.config import FieldsConfig, LabelsConfig, ModelConfig
from streamlearn.labels.join import Joiner, JoinState, Outputs
from streamlearn.model.codec import EventDecoder
from streamlearn.model.spec import build_metric, build_model, model_kind
from streamlearn.model.step import process
from streamlearn.state.checkpoint import ModelState

RAW = Path(__file__).resolve().parent / "results" / "raw"
# The configs here are built with model_validate (the constructor's validation): mypy, without pydantic's
# plugin, does not see Field()'s positional defaults and would call every omitted field required.
SPEC = ModelConfig.model_validate({"estimator": "river.linear_model.LogisticRegression",
                                   "preprocessing": ["river.preprocessing.StandardScaler"]})
T0 = 1_764_000_000_000


class TRec(Rec):
    __slots__ = ()

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)


def streams(n: int, seed: int = 3) -> tuple[list[TRec], list[TRec], list[TRec]]:
    """(inline labelled events, unlabelled events, labels sorted by ts), 10 ms of event time apart."""
    rng = random.Random(seed)
    evs = dataset(n, 0)
    inline, bare, labels = [], [], []
    lab_docs = []
    for i, e in enumerate(evs):
        ts = T0 + i * 10
        inline.append(TRec(i, orjson.dumps({**e, "ts": ts}), e["id"].encode()))
        bare.append(TRec(i, orjson.dumps({"id": e["id"], "features": e["features"], "ts": ts}), e["id"].encode()))
        if rng.random() < 0.9:
            lab_docs.append({"id": e["id"], "label": e["label"], "ts": ts + rng.randint(-2_000, 30_000)})
    lab_docs.sort(key=lambda d: d["ts"])
    labels = [TRec(i, orjson.dumps(d), str(d["id"]).encode()) for i, d in enumerate(lab_docs)]
    return inline, bare, labels


def _decoder() -> tuple[EventDecoder, bool]:
    kind = model_kind(build_model(SPEC))
    return EventDecoder(FieldsConfig.model_validate({}), is_classifier=kind.is_classifier, is_multiclass=kind.is_multiclass, classes=None,
                        max_value_bytes=262_144), kind.is_classifier


def run_inline(recs: list[TRec], chunk: int) -> float:
    dec, is_clf = _decoder()
    state = ModelState(build_model(SPEC), build_metric(SPEC), 0, 0, 0)
    out: list[bytes] = []
    emit = lambda k, v: out.append(v)  # noqa: E731 - the cheapest possible sink
    t0 = time.process_time()
    for i in range(0, len(recs), chunk):
        process(state, recs[i:i + chunk], dec, 0, is_clf, emit, None)
    return len(recs) / (time.process_time() - t0)


def run_labels(events: list[TRec], labels: list[TRec], chunk: int) -> tuple[float, dict[str, Any]]:
    dec, is_clf = _decoder()
    lc = LabelsConfig.model_validate({"source": "topic", "window_s": 60, "early_window_s": 10, "on_expiry": "default",
                                      "default_label": False})
    joiner = Joiner(lc, dec, ("id", "label", "ts"), 0, is_clf)
    state = ModelState(build_model(SPEC), build_metric(SPEC), 0, 0, 0)
    js = state.extra["labels"] = JoinState(label_offset=0, journal_offset=0)
    sink: list[bytes] = []
    outs = Outputs(lambda k, v: sink.append(v), lambda k, v: sink.append(v), lambda r, c, d: None, lambda r, c, d: None)
    # Chunks as a poll would bring them: events and the labels up to the same event time.
    step = max(chunk * len(events) // (len(events) + len(labels)), 1)
    label_ts = [orjson.loads(r.value())["ts"] for r in labels]  # the bench's own chunking, outside the timing
    li = 0
    t0 = time.process_time()
    for i in range(0, len(events), step):
        ev = events[i:i + step]
        end_ts = T0 + (i + len(ev)) * 10
        lj = li
        while lj < len(labels) and label_ts[lj] <= end_ts:
            lj += 1
        joiner.run_chunk(state, js, ev, labels[li:lj], (i, i + len(ev)), (li, lj), {}, outs)
        li = lj
    joiner.run_chunk(state, js, [], labels[li:], (len(events), len(events)), (li, len(labels)), {}, outs)
    return len(events) / (time.process_time() - t0), js.summary()


def hotpath(n: int, repeat: int, chunk: int) -> dict[str, Any]:
    inline, bare, labels = streams(n)
    ie = sorted(run_inline(inline, chunk) for _ in range(repeat))[repeat // 2]
    runs = sorted((run_labels(bare, labels, chunk) for _ in range(repeat)), key=lambda r: r[0])
    le, summary = runs[repeat // 2]
    return {"level": "hotpath", "n": n, "chunk": chunk, "inline_eps": round(ie), "labels_eps": round(le),
            "labels_over_inline": round(le / ie, 3), "join_cost_us_per_event": round(1e6 / le - 1e6 / ie, 2),
            "join": {k: summary[k] for k in ("joined", "expired", "late", "duplicate", "orphan", "pending")}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=1000, help="records per chunk (a poll's worth)")
    args = ap.parse_args()
    write_raw("labels-hotpath", {"bench": "labels", "machine": machine_info(), **hotpath(args.n, args.repeat, args.chunk)})


def write_raw(name: str, row: dict[str, Any]) -> None:
    """One raw result under bench/results/raw/, printed without the machine block."""
    RAW.mkdir(parents=True, exist_ok=True)
    path = RAW / f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(orjson.dumps(row, option=orjson.OPT_INDENT_2).decode() + "\n")
    print(orjson.dumps({k: v for k, v in row.items() if k != "machine"}).decode())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
