"""Hot-path microbenchmark and profile: `python -m bench.hotpath [--profile] [--model logreg|hoeffding] [-n N]`.

Runs `streamlearn.model.step.process` over pre-encoded records (in-memory
stand-ins for confluent Messages) with an emitter that only collects the
encoded output, so the number is the engine's per-event cost without the
broker: decode → predict → encode → learn. `model_only` runs the same model
over pre-decoded dicts (the ceiling); the difference is streamlearn's own
overhead per event. The three run chunk by chunk in turn (`interleaved`), so
the host's slow phases fall on all of them. `--profile` prints a pyinstrument
profile of the loop. Also times checkpoint encoding of the resulting model.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
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


#: Records per turn of the interleaving: small enough that a slow phase of the host (seconds, on this VM)
#: falls on every variant alike, large enough that switching variants costs nothing measurable.
CHUNK = 500

Variant = Callable[[int, int], None]  # runs records [i, j) through one variant


def engine_variant(model: str, n: int, categorical: bool = False, process_fn: Callable[..., Any] = process) -> Variant:
    """`streamlearn.model.step.process` (or an older version of it) over in-memory records, its output collected."""
    (state, _mc), recs, dec, is_clf = setup(model, n, categorical)
    out: list[bytes] = []
    emit = lambda k, v: out.append(v)  # noqa: E731 - the cheapest possible sink

    def run(i: int, j: int) -> None:
        process_fn(state, recs[i:j], dec, 0, is_clf, emit, None)
        out.clear()

    return run


def io_loop_variant(model: str, n: int, categorical: bool = False) -> Variant:
    """io_baseline's per-event work without Kafka: orjson decode → predict/learn → orjson encode (bench.sysproc._out)."""
    from bench.sysproc import _out

    _s, recs, _d, _c = setup(model, n, categorical)
    m = models.build(model, categorical)
    step = models.predict_learn
    loads = orjson.loads
    out: list[bytes] = []

    def run(i: int, j: int) -> None:
        for r in recs[i:j]:
            ev = loads(r.value())
            pred, proba = step(m, ev["features"], ev["label"])
            out.append(_out(pred, proba, 0, r.offset(), ev))
        out.clear()

    return run


def model_only_variant(model: str, n: int, categorical: bool = False) -> Variant:
    """The model over pre-decoded dicts: the ceiling."""
    evs = dataset(n, 5 if categorical else 0)
    m = models.build(model, categorical)
    step = models.predict_learn

    def run(i: int, j: int) -> None:
        for e in evs[i:j]:
            step(m, e["features"], e["label"])

    return run


def interleaved(variants: dict[str, Variant], n: int, passes: int) -> dict[str, list[float]]:
    """Events/s of each variant per pass: every CHUNK of records goes through all variants in turn (thread CPU time).

    Whole runs one after another (the method before session 37) let this host's slow phases fall on one
    variant: the same code measured 17-31 µs an event from run to run, which hid a 10 % difference.
    """
    eps: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(passes):
        cpu = dict.fromkeys(variants, 0.0)
        for i in range(0, n, CHUNK):
            for name, run in variants.items():
                t0 = time.thread_time()
                run(i, min(i + CHUNK, n))
                cpu[name] += time.thread_time() - t0
        for name in variants:
            eps[name].append(n / cpu[name])
    return eps


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
    ap.add_argument("--repeat", type=int, default=5, help="passes over the records (median)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--json", action="store_true", help="also write bench/results/raw/hotpath-<time>.json (rendered in docs)")
    args = ap.parse_args()
    if args.profile:
        from pyinstrument import Profiler

        prof = Profiler(interval=0.0005)
        engine = engine_variant(args.model, args.n)
        prof.start()
        for i in range(0, args.n, CHUNK):
            engine(i, min(i + CHUNK, args.n))
        prof.stop()
        print(prof.output_text(unicode=False, color=False, show_all=False))
        return
    from bench import provenance

    load0 = provenance.loadavg()
    runs = interleaved({"engine": engine_variant(args.model, args.n), "io_loop": io_loop_variant(args.model, args.n),
                        "model_only": model_only_variant(args.model, args.n)}, args.n, args.repeat)
    eng_r, io_r, lim_r = runs["engine"], runs["io_loop"], runs["model_only"]
    eng, io, lim = (statistics.median(x) for x in (eng_r, io_r, lim_r))
    res = {"model": args.model, "n": args.n, "method": f"chunk-interleaved ({CHUNK} records), thread CPU, median of passes",
           "engine_eps": round(eng), "io_loop_eps": round(io), "model_only_eps": round(lim),
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
