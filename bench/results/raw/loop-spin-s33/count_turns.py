"""`bench.profile_worker` with the run loop's turns counted (how `ab-inprocess.txt` was made).

Run from the checkout to measure, with that checkout on PYTHONPATH:
`PYTHONPATH=. python bench/results/raw/loop-spin-s33/count_turns.py --bootstrap B --redis-url R -n 150000 --no-profile`.
Prints profile_worker's line, then COUNTS: loop turns, polls whose wait was zero, turns with a
commit in flight, backlog fills, `PartitionTask.process` calls (and the records handed to them,
held records counted again when handed again), commits started.
"""

from __future__ import annotations

import atexit
import collections
import runpy
import sys
from typing import Any

from streamlearn.eos import task as taskmod
from streamlearn.runtime import intake, run_loop

counts: collections.Counter[str] = collections.Counter()


def counted(cls: Any, name: str, count: Any) -> None:
    original = getattr(cls, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        count(self, *args)
        return original(self, *args, **kwargs)

    setattr(cls, name, wrapper)


def on_poll(run: Any, wait_s: float, *_: Any) -> None:
    counts["turns"] += 1
    counts["wait0"] += wait_s == 0.0
    counts["with_flying"] += any(t.in_flight is not None for t in run.tasks.values())


def on_process(_: Any, records: list[Any], *__: Any) -> None:
    counts["process_calls"] += 1
    counts["records"] += len(records)


counted(run_loop.Run, "_poll_and_process", on_poll)
counted(intake.Backlog, "fill", lambda *_: counts.update(["fill"]))
counted(taskmod.PartitionTask, "process", on_process)
counted(taskmod.PartitionTask, "start_commit", lambda *_: counts.update(["start_commit"]))
atexit.register(lambda: print("COUNTS", dict(counts), file=sys.stderr))
sys.argv = ["bench.profile_worker", *sys.argv[1:]]
runpy.run_module("bench.profile_worker", run_name="__main__")
