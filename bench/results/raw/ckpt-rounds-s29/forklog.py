"""`bench.profile_worker` with every forked checkpoint child printed (time since start, its partitions).

Run from the checkout to measure, with `PYTHONPATH=.`: the same command line as `bench.profile_worker`.
"""

from __future__ import annotations

import runpy
import sys
import time

from streamlearn.state import forked

_start = forked.ForkedCheckpointer.start
_t0 = time.monotonic()


def _logged(self: forked.ForkedCheckpointer, snaps: list[forked.Snapshot]) -> list[forked.Job]:
    print(f"FORK t={time.monotonic() - _t0:.3f} parts={[s.partition_id for s in snaps]} inflight={sorted(self.in_flight)}",
          file=sys.stderr)
    return _start(self, snaps)


forked.ForkedCheckpointer.start = _logged  # type: ignore[method-assign,assignment]
sys.argv = ["profile_worker", *sys.argv[1:]]
runpy.run_module("bench.profile_worker", run_name="__main__")
