"""Hot-path microbenchmark and profile: `python -m bench.hotpath [--profile] [--model logreg|hoeffding] [-n N]`.

Runs `streamlearn.model.step.process` over pre-encoded records (in-memory
stand-ins for confluent Messages) with an emitter that only collects the
encoded output, so the number is the engine's per-event cost without the
broker: decode → predict → encode → learn. `model_only` runs the same model
over pre-decoded dicts (the ceiling); the difference is streamlearn's own
overhead per event. `--profile` prints a pyinstrument profile of the loop.
Also times checkpoint encoding of the resulting model.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson

from bench import models
from bench.common import dataset
from streamlearn.config import FieldsConfig, ModelConfig
from streamlearn.model.codec import EventDecoder
from streamlearn.model.spec import build_metric, build_model, model_kind
from streamlearn.model.step import process
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState


class Rec:
    __slots__ = ("_k", "_o", "_v")

    def __init__(self, o: int, v: bytes, k: bytes) -> None:
        self._o, self._v, self._k = o, v, k

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes:
        return self._v

    def key(self) -> bytes:
        return self._k


def setup(model: str, n: int, categorical: bool = False) -> tuple[Any, list[Rec], EventDecoder, bool]:
    mc = ModelConfig(**models.streamlearn_model_config(model, categorical))
    m = build_model(mc)
    kind = model_kind(m)
    # model_validate (the same validation), not the constructor: mypy without pydantic's plugin misses Field()'s positional defaults.
    dec = EventDecoder(FieldsConfig.model_validate({}), is_classifier=kind.is_classifier, is_multiclass=kind.is_multiclass, classes=None,
                       max_value_bytes=262_144)
    evs = dataset(n, 5 if categorical else 0)
    recs = [Rec(i, orjson.dumps(e), e["id"].encode()) for i, e in enumerate(evs)]
    return (ModelState(m, build_metric(mc), 0, 0, 0), mc), recs, dec, kind.is_classifier


def run_engine(model: str, n: int, batch: int = 1000, categorical: bool = False) -> float:
    (state, _mc), recs, dec, is_clf = setup(model, n, categorical)
    out: list[bytes] = []
    emit = lambda k, v: out.append(v)  # noqa: E731 - the cheapest possible sink
    t0 = time.process_time()
    for i in range(0, n, batch):
        process(state, recs[i:i + batch], dec, 0, is_clf, emit, None)
    return n / (time.process_time() - t0)


def run_io_loop(model: str, n: int, categorical: bool = False) -> float:
    """io_baseline's per-event work without Kafka: orjson decode → predict/learn → orjson encode (bench.sysproc._out)."""
    from bench.sysproc import _out

    _s, recs, _d, _c = setup(model, n, categorical)
    m = models.build(model, categorical)
    step = models.predict_learn
    loads = orjson.loads
    out: list[bytes] = []
    t0 = time.process_time()
    for r in recs:
        ev = loads(r.value())
        pred, proba = step(m, ev["features"], ev["label"])
        out.append(_out(pred, proba, 0, r.offset(), ev))
    return n / (time.process_time() - t0)


def run_model_only(model: str, n: int, categorical: bool = False) -> float:
    evs = dataset(n, 5 if categorical else 0)
    m = models.build(model, categorical)
    step = models.predict_learn
    t0 = time.process_time()
    for e in evs:
        step(m, e["features"], e["label"])
    return n / (time.process_time() - t0)


def checkpoint_cost(model: str, n: int) -> dict[str, float]:
    (state, _mc), recs, dec, is_clf = setup(model, n)
    process(state, recs, dec, 0, is_clf, None, None)
    key = checkpoint.dev_key("bench")
    t0 = time.process_time()
    for _ in range(20):
        blob = checkpoint.encode(state, key)
    enc = (time.process_time() - t0) / 20
    return {"encode_ms": enc * 1000, "bytes": len(blob)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="logreg")
    ap.add_argument("-n", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--json", action="store_true", help="also write bench/results/raw/hotpath-<time>.json (rendered in docs)")
    args = ap.parse_args()
    if args.profile:
        from pyinstrument import Profiler

        prof = Profiler(interval=0.0005)
        prof.start()
        run_engine(args.model, args.n)
        prof.stop()
        print(prof.output_text(unicode=False, color=False, show_all=False))
        return
    from bench import provenance

    load0 = provenance.loadavg()
    # Interleaved (engine, io loop, model, engine, ...) so a slow phase of the machine hits all three alike.
    eng_r, io_r, lim_r = [], [], []
    for _ in range(args.repeat):
        eng_r.append(run_engine(args.model, args.n))
        io_r.append(run_io_loop(args.model, args.n))
        lim_r.append(run_model_only(args.model, args.n))
    eng, io, lim = (sorted(x)[args.repeat // 2] for x in (eng_r, io_r, lim_r))
    res = {"model": args.model, "n": args.n, "engine_eps": round(eng), "io_loop_eps": round(io), "model_only_eps": round(lim),
           "engine_over_io_loop": round(eng / io, 3), "engine_over_model": round(eng / lim, 3),
           "overhead_us_per_event": round(1e6 / eng - 1e6 / lim, 2), "engine_minus_io_loop_us_per_event": round(1e6 / eng - 1e6 / io, 2),
           "checkpoint": checkpoint_cost(args.model, min(args.n, 20_000))}
    print(orjson.dumps(res).decode())
    if args.json:
        from pathlib import Path

        from bench import provenance

        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        rec = {"label": "hotpath", "kind": "hotpath", "run": stamp, "repeat": args.repeat, "git": provenance.code_version(),
               "loadavg_before": load0, "loadavg_after": provenance.loadavg(),
               "runs": {"engine": eng_r, "io_loop": io_r, "model_only": lim_r}, **res}
        out = Path(__file__).resolve().parent / "results" / "raw" / f"hotpath-{stamp}.json"
        out.write_bytes(orjson.dumps(rec, option=orjson.OPT_INDENT_2))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
