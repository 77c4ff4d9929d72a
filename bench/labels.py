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

`--breakdown` (printed, not written): where label mode's extra CPU per event
goes, as the worker runs it (the publish gate's window on, as with the
default `model.publish.every_s`; the worker's GC settings, `runtime.heap`;
sinks that drop what they get, as produce() copies it). Rounds of
interleaved runs of: inline; label mode; label mode with the gate's window
fed before every joined learning step (the engine before 266d48c: now it is
fed only ahead of a candidate, `models.publisher.Publisher.observer`); label
mode without the gate's window; label mode without the sample log; and
inline and label mode with a model that does nothing (the engine's own
per-event Python). Medians and the spread per mode, in CPU us
per event (docs/labels.md, "Where label mode's CPU goes").
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.common import dataset, machine_info
from bench.hotpath import Rec
from streamlearn.config import AppConfig, FieldsConfig, LabelsConfig, ModelConfig
from streamlearn.labels.join import Joiner, JoinState, Outputs
from streamlearn.model.codec import EventDecoder
from streamlearn.model.spec import build_metric, build_model, model_kind
from streamlearn.model.step import process
from streamlearn.models.publisher import Publisher
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


class NullModel:
    """Predicts a constant and learns nothing: what is left is the engine's own per-event Python."""

    def predict_proba_one(self, x: dict[str, Any]) -> dict[bool, float]:
        return {True: 0.5, False: 0.5}

    def predict_one(self, x: dict[str, Any]) -> bool:
        return True

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        pass


def _model(null: bool) -> Any:
    return NullModel() if null else build_model(SPEC)


def _sinks(keep: bool) -> Callable[[Any, bytes], None]:
    if keep:  # the default: every output kept (the hotpath's historical sink)
        out: list[bytes] = []
        return lambda k, v: out.append(v)
    return lambda k, v: None  # produce() copies the value: nothing outlives the call


def run_inline(recs: list[TRec], chunk: int, *, null: bool = False, gate: bool = False, keep: bool = True) -> float:
    dec, is_clf = _decoder()
    state = ModelState(_model(null), build_metric(SPEC), 0, 0, 0)
    emit = _sinks(keep)
    observe = deque[tuple[Any, Any, Any]](maxlen=1000).append if gate else None  # the publish gate's window (models.publisher)
    t0 = time.process_time()
    for i in range(0, len(recs), chunk):
        process(state, recs[i:i + chunk], dec, 0, is_clf, emit, None, observe)
    return len(recs) / (time.process_time() - t0)


def run_labels(events: list[TRec], labels: list[TRec], chunk: int, *, null: bool = False, gate: str = "",
               samples: bool = True, keep: bool = True) -> tuple[float, dict[str, Any]]:
    """`gate`: "" (publishing off), "publisher" (the window fed as the worker feeds it, `Publisher.observer`),
    "every_label" (a prediction for the window before every joined learning step: the engine before 266d48c)."""
    dec, is_clf = _decoder()
    lc = LabelsConfig.model_validate({"source": "topic", "window_s": 60, "early_window_s": 10, "on_expiry": "default",
                                      "default_label": False})
    joiner = Joiner(lc, dec, ("id", "label", "ts"), 0, is_clf)
    if gate == "publisher":
        joiner.feed = Publisher(AppConfig.model_validate({}), 0, b"k" * 32, is_clf).observer  # the default every_s and gate.window
    elif gate == "every_label":
        joiner.observe = deque[tuple[Any, Any, Any]](maxlen=1000).append
    state = ModelState(_model(null), build_metric(SPEC), 0, 0, 0)
    js = state.extra["labels"] = JoinState(label_offset=0, journal_offset=0)
    outs = Outputs(_sinks(keep), _sinks(keep) if samples else None, lambda r, c, d: None, lambda r, c, d: None)
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


#: --breakdown's modes: (name, run) over the streams; run returns events/s.
BREAKDOWN: tuple[tuple[str, Callable[[list[TRec], list[TRec], list[TRec], int], float]], ...] = (
    ("inline", lambda i, b, lb, c: run_inline(i, c, gate=True, keep=False)),
    ("labels", lambda i, b, lb, c: run_labels(b, lb, c, gate="publisher", keep=False)[0]),
    ("labels_gate_every_label", lambda i, b, lb, c: run_labels(b, lb, c, gate="every_label", keep=False)[0]),
    ("labels_no_gate_window", lambda i, b, lb, c: run_labels(b, lb, c, keep=False)[0]),
    ("labels_no_sample_log", lambda i, b, lb, c: run_labels(b, lb, c, gate="publisher", samples=False, keep=False)[0]),
    ("inline_null_model", lambda i, b, lb, c: run_inline(i, c, null=True, gate=True, keep=False)),
    ("labels_null_model", lambda i, b, lb, c: run_labels(b, lb, c, null=True, gate="publisher", keep=False)[0]),
)


def breakdown(n: int, repeat: int, chunk: int) -> dict[str, Any]:
    """CPU us per event of each BREAKDOWN mode: rounds of one run each, interleaved (the machine's speed drifts)."""
    from streamlearn.runtime import heap

    streams_ = streams(n)
    heap.settle()  # the worker's GC settings (a Ray worker settles its heap before its run)
    runs: dict[str, list[float]] = {name: [] for name, _ in BREAKDOWN}
    for _ in range(repeat):
        for name, run in BREAKDOWN:
            runs[name].append(1e6 / run(*streams_, chunk))
    # Each part as the median of its per-round differences: runs of one round share the machine's speed.
    parts = {"label_mode_extra": ("labels", "inline"), "gate_window_predict": ("labels", "labels_no_gate_window"),
             "gate_window_every_label": ("labels_gate_every_label", "labels_no_gate_window"),
             "saved_by_publisher_feed": ("labels_gate_every_label", "labels"),
             "sample_log": ("labels", "labels_no_sample_log"), "model_predict_learn": ("inline", "inline_null_model"),
             "join_engine_python": ("labels_null_model", "inline_null_model")}
    return {"level": "breakdown", "n": n, "chunk": chunk, "us_per_event": {
        name: {"median": round(statistics.median(v), 2), "min": round(min(v), 2), "max": round(max(v), 2),
               "runs": [round(u, 2) for u in v]} for name, v in runs.items()},
        "paired_us_per_event": {part: round(statistics.median(x - y for x, y in zip(runs[a], runs[b], strict=True)), 2)
                                for part, (a, b) in parts.items()},
        "labels_over_inline_paired": round(statistics.median(
            i / lb for i, lb in zip(runs["inline"], runs["labels"], strict=True)), 3),
        "labels_gate_every_label_over_inline_paired": round(statistics.median(
            i / lb for i, lb in zip(runs["inline"], runs["labels_gate_every_label"], strict=True)), 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=1000, help="records per chunk (a poll's worth)")
    ap.add_argument("--breakdown", action="store_true", help="where label mode's extra CPU goes (raw file labels-breakdown-*.json)")
    args = ap.parse_args()
    if args.breakdown:
        write_raw("labels-breakdown", {"bench": "labels", "machine": machine_info(), **breakdown(args.n, args.repeat, args.chunk)})
        return
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
