"""`bench.profile_worker` with every garbage collection timed (README.md §5).

`PYTHONPATH=. python bench/results/raw/fused-s37/gc_acct.py --bootstrap B --redis-url R -n 150000 --no-profile`
"""

from __future__ import annotations

import atexit
import gc
import runpy
import sys
import time
from typing import Any

acc: dict[int, list[float]] = {}
started = [0.0]


def on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        started[0] = time.perf_counter()
        return
    row = acc.setdefault(info["generation"], [0, 0.0, 0])
    row[0] += 1
    row[1] += time.perf_counter() - started[0]
    row[2] += info["collected"]


def report() -> None:
    n = int(sys.argv[sys.argv.index("-n") + 1])
    for g, (count, secs, collected) in sorted(acc.items()):
        print(f"GC gen{g}: {int(count)} collections, {secs:.3f} s = {secs / n * 1e6:.2f} us/event, "
              f"collected {int(collected)}, per collection {secs / count * 1e3:.2f} ms", file=sys.stderr)
    print("GC freeze_count", gc.get_freeze_count(), "threshold", gc.get_threshold(), "count", gc.get_count(),
          "tracked", len(gc.get_objects()), file=sys.stderr)


gc.callbacks.append(on_gc)
atexit.register(report)
sys.argv = ["bench.profile_worker", *sys.argv[1:]]
runpy.run_module("bench.profile_worker", run_name="__main__")
