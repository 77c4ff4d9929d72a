"""Before/after of the hot path: `python -m bench.ab_hotpath OLD_DIR [-n N]`.

OLD_DIR holds `codec_old.py` and `partition_old.py` (the previous versions,
with partition_old importing codec_old); both versions run interleaved over
the same records and model so machine noise hits them alike. Reports the
median events/s of each and the per-event cost beyond the model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench import hotpath, provenance
from streamlearn.model import codec, step


def run(proc_fn: Callable[..., Any], dec_cls: type, model: str, n: int, categorical: bool) -> float:
    (state, _mc), recs, _dec, is_clf = hotpath.setup(model, n, categorical)
    from streamlearn.config import FieldsConfig
    from streamlearn.model.spec import model_kind

    kind = model_kind(state.model)
    # model_validate (the same validation), not the constructor: mypy without pydantic's plugin misses Field()'s positional defaults.
    dec = dec_cls(FieldsConfig.model_validate({}), is_classifier=kind.is_classifier, is_multiclass=kind.is_multiclass, classes=None, max_value_bytes=262_144)
    out: list[bytes] = []
    emit = lambda k, v: out.append(v)  # noqa: E731
    t0 = time.process_time()
    for i in range(0, n, 1000):
        proc_fn(state, recs[i:i + 1000], dec, 0, is_clf, emit, None)
    return n / (time.process_time() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("old_dir")
    ap.add_argument("-n", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model", default="logreg")
    ap.add_argument("--json", action="store_true", help="also write bench/results/raw/hotpath-ab-<time>.json (rendered in docs)")
    args = ap.parse_args()
    load0 = provenance.loadavg()
    sys.path.insert(0, args.old_dir)
    import codec_old
    import partition_old

    old, new, lim = [], [], []
    for _ in range(args.rounds):
        old.append(run(partition_old.process, codec_old.EventDecoder, args.model, args.n, False))
        new.append(run(step.process, codec.EventDecoder, args.model, args.n, False))
        lim.append(hotpath.run_model_only(args.model, args.n))
    o, nw, m = statistics.median(old), statistics.median(new), statistics.median(lim)
    print(f"model={args.model} n={args.n} rounds={args.rounds}")
    print(f"model only : {m:9.0f} ev/s ({1e6 / m:.1f} us/event)")
    print(f"before     : {o:9.0f} ev/s  overhead {1e6 / o - 1e6 / m:5.1f} us/event  ratio {o / m:.3f}")
    print(f"after      : {nw:9.0f} ev/s  overhead {1e6 / nw - 1e6 / m:5.1f} us/event  ratio {nw / m:.3f}")
    load1 = provenance.loadavg()
    print(f"load average before {load0} after {load1}")
    if args.json:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        rec = {"label": "hotpath", "kind": "hotpath_ab", "run": stamp, "model": args.model, "n": args.n, "rounds": args.rounds,
               "git": provenance.code_version(), "old_dir": args.old_dir, "loadavg_before": load0, "loadavg_after": load1,
               "model_only_eps": m, "before_eps": o, "after_eps": nw, "before_overhead_us": 1e6 / o - 1e6 / m,
               "after_overhead_us": 1e6 / nw - 1e6 / m, "runs": {"model_only": lim, "before": old, "after": new}}
        out = Path(__file__).resolve().parent / "results" / "raw" / f"hotpath-ab-{stamp}.json"
        out.write_bytes(orjson.dumps(rec, option=orjson.OPT_INDENT_2))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
