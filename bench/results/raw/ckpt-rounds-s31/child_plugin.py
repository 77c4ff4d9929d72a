"""A pytest plugin that records checkpoint children while tests/integration/test_checkpoint_rounds.py runs.

Diagnostics behind the round wait (`runtime.run_loop.Run._dispatch_checkpoints`), not a test:

    PYTHONPATH=bench/results/raw/ckpt-rounds-s31 [BLOAT_MB=6000] [CHILD_SLEEP=0.3] \
        python -m pytest -q -s -p child_plugin tests/integration/test_checkpoint_rounds.py

prints each child's lifetime (fork to reap, seconds) and the partitions of each child (seconds from
the first). `BLOAT_MB` makes the test process that large (resident) before it starts, as a long-lived
xdist worker is; `CHILD_SLEEP` holds every child that long before it writes.
"""

from __future__ import annotations

import os
import time
from typing import Any

from streamlearn.state import forked

LIFETIMES: list[float] = []
CHILDREN: list[tuple[float, list[int]]] = []
_BLOAT: list[bytearray] = []

_reap = forked.ForkedCheckpointer._reap
_start = forked.ForkedCheckpointer.start
_child = forked._child


def reap(self: forked.ForkedCheckpointer) -> list[forked.Outcome]:
    started = {pid: c.jobs[0].started for pid, c in self._children.items()}
    out = _reap(self)
    now = time.monotonic()
    LIFETIMES.extend(round(now - t, 3) for pid, t in started.items() if pid not in self._children)
    return out


def start(self: forked.ForkedCheckpointer, snapshots: list[forked.Snapshot]) -> list[forked.Job]:
    CHILDREN.append((time.monotonic(), [s.partition_id for s in snapshots]))
    return _start(self, snapshots)


def slow_child(*args: Any, **kwargs: Any) -> Any:
    time.sleep(float(os.environ["CHILD_SLEEP"]))  # the child's own delay, standing in for a slow fork/exit
    return _child(*args, **kwargs)


forked.ForkedCheckpointer._reap = reap  # type: ignore[method-assign]
forked.ForkedCheckpointer.start = start  # type: ignore[method-assign]
if float(os.environ.get("CHILD_SLEEP", "0")):
    forked._child = slow_child


def pytest_configure(config: Any) -> None:
    mb = int(os.environ.get("BLOAT_MB", "0"))
    if mb:
        _BLOAT.append(bytearray(os.urandom(1 << 20)) * mb)


def pytest_unconfigure(config: Any) -> None:
    t0 = CHILDREN[0][0] if CHILDREN else 0.0
    print("\nCHILD_LIFETIMES_S", LIFETIMES)
    print("CHILDREN", [(round(t - t0, 2), sorted(p)) for t, p in CHILDREN])
