"""`bench.profile_worker` with the consumer's polls counted (the README's FILLS line).

`PYTHONPATH=. python bench/results/raw/loop-accounting-s35/poll_sizes.py --bootstrap B --redis-url R -n 150000 --no-profile`
"""

from __future__ import annotations

import atexit
import runpy
import sys
import time
from typing import Any

from streamlearn.runtime import intake

acc: dict[str, float] = {"calls": 0, "recs": 0, "t": 0.0, "cpu": 0.0, "empty": 0}
original = intake.poll_batch


def poll_batch(consumer: Any, max_batch: int, wait_s: float) -> list[Any]:
    wall, cpu = time.perf_counter(), time.thread_time()
    records = original(consumer, max_batch, wait_s)
    acc["t"] += time.perf_counter() - wall
    acc["cpu"] += time.thread_time() - cpu
    acc["calls"] += 1
    acc["recs"] += len(records)
    acc["empty"] += not records
    return records


def report() -> None:
    per_record = round(1e6 * acc["cpu"] / max(1.0, acc["recs"]), 2)
    print("FILLS", {k: round(v, 3) for k, v in acc.items()}, "us/rec cpu", per_record, file=sys.stderr)


intake.poll_batch = poll_batch
atexit.register(report)
sys.argv = ["bench.profile_worker", *sys.argv[1:]]
runpy.run_module("bench.profile_worker", run_name="__main__")
