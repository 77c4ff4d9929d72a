"""`bench.profile_worker` with the loop thread's CPU accounted per call (how the README's ACCT lines were made).

`PYTHONPATH=. python bench/results/raw/loop-accounting-s35/loop_cpu.py --bootstrap B --redis-url R -n 150000 --no-profile`
Prints profile_worker's line, then ACCT: thread CPU per event (µs) inside the per-event step, the consumer's
poll, the commits and the checkpoint dispatch, and the whole loop's thread CPU and wall time per event.
"""

from __future__ import annotations

import atexit
import runpy
import sys
import time
from typing import Any

from streamlearn.eos import task as task_module
from streamlearn.model import step
from streamlearn.runtime import intake, run_loop

acc: dict[str, float] = {}


def timed(owner: Any, name: str, key: str) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cpu = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            acc[key] = acc.get(key, 0.0) + time.thread_time() - cpu

    setattr(owner, name, wrapper)


def loop(self: Any) -> Any:
    cpu, wall = time.thread_time(), time.perf_counter()
    try:
        return original_loop(self)
    finally:
        acc["loop_cpu"] = time.thread_time() - cpu
        acc["loop_wall"] = time.perf_counter() - wall


def report() -> None:
    n = int(sys.argv[sys.argv.index("-n") + 1])
    print("ACCT us/event", {k: round(1e6 * v / n, 2) for k, v in acc.items()}, file=sys.stderr)


timed(step, "process", "step_cpu")
timed(intake, "poll_batch", "poll_cpu")
timed(task_module.PartitionTask, "start_commit", "start_commit_cpu")
timed(task_module.PartitionTask, "finish_commit", "finish_commit_cpu")
timed(run_loop.Run, "_dispatch_checkpoints", "ckpt_cpu")
original_loop = run_loop.Run.loop
run_loop.Run.loop = loop  # type: ignore[method-assign]
atexit.register(report)
sys.argv = ["bench.profile_worker", *sys.argv[1:]]
runpy.run_module("bench.profile_worker", run_name="__main__")
