"""Before/after of the hot path: `python -m bench.ab_hotpath --rev REV [-n N] [--passes P] [--json]`.

The per-event step (`streamlearn/model/step.py`) as it was at git revision REV
is loaded beside today's (its imports resolve to today's package, so REV may
differ from today in that file only), and both run over the same in-memory
records chunk by chunk in turn (`bench.hotpath.interleaved`), with the model
alone as the ceiling: the host's slow phases fall on all three alike.
Reports the median events/s of each and the per-event cost beyond the model.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import orjson

from bench import hotpath, provenance
from streamlearn.model import step

STEP_PATH = "streamlearn/model/step.py"


def step_at(rev: str) -> ModuleType:
    """`streamlearn.model.step` as it was at `rev`, as a module of its own."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(["git", "-C", str(root), "show", f"{rev}:{STEP_PATH}"], check=True, capture_output=True).stdout
    path = Path(tempfile.mkdtemp(prefix="ab-hotpath-")) / "step_at_rev.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("step_at_rev", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["step_at_rev"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", required=True, help="git revision of the 'before' step.py (e.g. HEAD~1)")
    ap.add_argument("-n", type=int, default=20_000)
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--model", default="logreg")
    ap.add_argument("--json", action="store_true", help="also write bench/results/raw/hotpath-ab-<time>.json (rendered in docs)")
    args = ap.parse_args()
    load0 = provenance.loadavg()
    old_step = step_at(args.rev)
    runs = hotpath.interleaved({"before": hotpath.engine_variant(args.model, args.n, process_fn=old_step.process),
                                "after": hotpath.engine_variant(args.model, args.n, process_fn=step.process),
                                "model_only": hotpath.model_only_variant(args.model, args.n)}, args.n, args.passes)
    o, nw, m = (statistics.median(runs[k]) for k in ("before", "after", "model_only"))
    print(f"model={args.model} n={args.n} passes={args.passes} before={args.rev}")
    print(f"model only : {m:9.0f} ev/s ({1e6 / m:.1f} us/event)")
    print(f"before     : {o:9.0f} ev/s  overhead {1e6 / o - 1e6 / m:5.1f} us/event  ratio {o / m:.3f}")
    print(f"after      : {nw:9.0f} ev/s  overhead {1e6 / nw - 1e6 / m:5.1f} us/event  ratio {nw / m:.3f}")
    print(f"after / before per pass: {[round(a / b, 3) for a, b in zip(runs['after'], runs['before'], strict=True)]}")
    load1 = provenance.loadavg()
    print(f"load average before {load0} after {load1}")
    if args.json:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        rec = {"label": "hotpath", "kind": "hotpath_ab", "run": stamp, "model": args.model, "n": args.n, "rounds": args.passes,
               "method": f"chunk-interleaved ({hotpath.CHUNK} records), thread CPU, median of passes",
               "git": provenance.code_version(), "before_rev": args.rev, "loadavg_before": load0, "loadavg_after": load1,
               "model_only_eps": m, "before_eps": o, "after_eps": nw, "before_overhead_us": 1e6 / o - 1e6 / m,
               "after_overhead_us": 1e6 / nw - 1e6 / m, "runs": {"model_only": runs["model_only"], "before": runs["before"],
                                                                 "after": runs["after"]}}
        out = Path(__file__).resolve().parent / "results" / "raw" / f"hotpath-ab-{stamp}.json"
        out.write_bytes(orjson.dumps(rec, option=orjson.OPT_INDENT_2))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
