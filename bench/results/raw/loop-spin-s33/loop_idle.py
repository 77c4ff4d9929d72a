"""`bench.profile_worker` with the loop thread's time accounted (how `ab-poll-while-held.txt` was made).

`PYTHONPATH=. python bench/results/raw/loop-spin-s33/loop_idle.py --bootstrap B --redis-url R -n 150000 --no-profile`
from the checkout to measure. Prints profile_worker's line, then IDLE: the loop's wall and thread-CPU
seconds (`Run.loop`), and the wall seconds spent in `wait_any` (waiting for a commit in flight with
nothing else to do) and in `Backlog.fill` (the consumer's poll).
"""

from __future__ import annotations

import atexit
import runpy
import sys
import time
from typing import Any

from streamlearn.runtime import intake, run_loop

acc: dict[str, float] = {}


def timed(owner: Any, name: str, key: str) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            acc[key] = acc.get(key, 0.0) + time.perf_counter() - t

    setattr(owner, name, wrapper)


def loop(self: Any) -> Any:
    t, cpu = time.perf_counter(), time.thread_time()
    try:
        return original_loop(self)
    finally:
        acc["loop_wall_s"] = time.perf_counter() - t
        acc["loop_cpu_s"] = time.thread_time() - cpu


timed(run_loop, "wait_any", "wait_any_s")
timed(intake.Backlog, "fill", "fill_s")
original_loop = run_loop.Run.loop
run_loop.Run.loop = loop  # type: ignore[method-assign]
atexit.register(lambda: print("IDLE", {k: round(v, 3) for k, v in acc.items()}, file=sys.stderr))
sys.argv = ["bench.profile_worker", *sys.argv[1:]]
runpy.run_module("bench.profile_worker", run_name="__main__")
