"""Memory soak of the pending store: `python -m bench.labels_soak [-n 1000000]`.

One partition's join (`labels.join.Joiner`) is fed N unlabelled events
(10 numeric features each, as in the throughput benchmark) with a window
so long that none expires, so all N stay pending, as when a label source
stalls. Reports the process's peak RSS (VmHWM), the resident memory the
pending store adds per event, and what checkpointing that state costs
(pickle time and size). Writes raw JSON under bench/results/raw/.
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import random
import time
from typing import Any

import orjson

from bench.common import machine_info, peak_rss_mb
from bench.labels import SPEC, T0, TRec, _decoder, write_raw
from streamlearn.config import LabelsConfig
from streamlearn.labels.join import Joiner, JoinState
from streamlearn.model.spec import build_metric, build_model
from streamlearn.state.checkpoint import ModelState


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=5000)
    args = ap.parse_args()
    rng = random.Random(1)
    dec, is_clf = _decoder()
    # model_validate (the same validation), not the constructor: mypy without pydantic's plugin misses Field()'s positional defaults.
    lc = LabelsConfig.model_validate({"source": "topic", "window_s": 30 * 86400, "early_window_s": 120, "max_pending": args.n + 1})
    joiner = Joiner(lc, dec, ("id", "label", "ts"), 0, is_clf)
    state = ModelState(build_model(SPEC), build_metric(SPEC), 0, 0, 0)
    js = state.extra["labels"] = JoinState(label_offset=0, journal_offset=0)
    gc.collect()
    base = rss_mb()
    t0 = time.monotonic()
    for start in range(0, args.n, args.chunk):
        recs = []
        for i in range(start, min(start + args.chunk, args.n)):
            doc: dict[str, Any] = {"id": f"e-{i}", "features": {f"x{j}": round(rng.gauss(0, 1), 6) for j in range(10)}, "ts": T0 + i}
            recs.append(TRec(i, orjson.dumps(doc), doc["id"].encode()))
        joiner.run_chunk(state, js, recs, [], (start, start + len(recs)), (0, 0), {}, None)
    feed_s = time.monotonic() - t0
    gc.collect()
    held = rss_mb() - base
    t1 = time.monotonic()
    blob = pickle.dumps(js, protocol=pickle.HIGHEST_PROTOCOL)
    pickle_s = time.monotonic() - t1
    row = {"bench": "labels_soak", "pending": len(js.pending), "peak_rss_mb": round(peak_rss_mb(os.getpid()) or 0.0, 1),
           "baseline_rss_mb": round(base, 1), "pending_store_mb": round(held, 1),
           "bytes_per_pending_event": round(held * 1024 * 1024 / max(len(js.pending), 1)),
           "feed_s": round(feed_s, 1), "checkpoint_pickle_s": round(pickle_s, 2), "checkpoint_pickle_mb": round(len(blob) / 1e6, 1),
           "machine": machine_info()}
    write_raw("labels-soak", row)

if __name__ == "__main__":
    main()
