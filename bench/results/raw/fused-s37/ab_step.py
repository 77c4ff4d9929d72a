"""Chunk-interleaved A/B of the per-event step in memory (how README.md §2 was measured, on 8607b0c's step).

`PYTHONPATH=. python bench/results/raw/fused-s37/ab_step.py [N]`: every 500 records go through each variant
in turn (thread CPU): the engine's `step.process`, the same without the metric's update, the same with the
Pipeline's calls fused by a wrapper (with and without the metric), and io_baseline's per-event work.
Since 80cc739 `step.process` fuses by itself, so `engine` and `engine_fused` measure the same thing.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import orjson

from bench import hotpath, models
from bench.sysproc import _out
from streamlearn.model import fused
from streamlearn.model.step import process

N = int(sys.argv[1]) if len(sys.argv) > 1 else 40_000
CHUNK = 500
out: list[bytes] = []


def emit(key: bytes | None, value: bytes) -> None:
    out.append(value)


class NoMetric:
    def update(self, y: Any, p: Any) -> None:
        pass


class FusedModel:
    """The Pipeline's per-event calls made directly (what streamlearn.model.fused now does)."""

    def __init__(self, model: Any) -> None:
        calls = fused.calls(model, True)
        assert calls.predict_proba is not None
        self.predict_proba_one, self.learn_one, self.predict_one = calls.predict_proba, calls.learn, calls.predict


def engine(fuse: bool, metric: bool) -> Any:
    (state, _mc), recs, dec, is_clf = hotpath.setup("logreg", N)
    if fuse:
        state.model = FusedModel(state.model)
    if not metric:
        state.metric = NoMetric()
    return lambda i, j: process(state, recs[i:j], dec, 0, is_clf, emit, None)


def io_loop() -> Any:
    _s, recs, _d, _c = hotpath.setup("logreg", N)
    m = models.build("logreg", False)

    def run(i: int, j: int) -> None:
        for r in recs[i:j]:
            ev = orjson.loads(r.value())
            pred, proba = models.predict_learn(m, ev["features"], ev["label"])
            out.append(_out(pred, proba, 0, r.offset(), ev))

    return run


variants = {"engine_fused": engine(True, True), "engine_fused_nometric": engine(True, False),
            "engine": engine(False, True), "engine_nometric": engine(False, False), "io": io_loop()}
cpu = dict.fromkeys(variants, 0.0)
for _pass in range(3):
    for i in range(0, N, CHUNK):
        for name, run in variants.items():
            t0 = time.thread_time()
            run(i, i + CHUNK)
            cpu[name] += time.thread_time() - t0
        out.clear()
print({k: round(v / (3 * N) * 1e6, 2) for k, v in cpu.items()})
print({k: round(v / cpu["io"], 3) for k, v in cpu.items()})
