"""A commit in flight: one partition's transactional commit, run off the loop's thread.

Why: a commit waits for the broker (the batch's produce requests, the offsets into the
transaction, EndTxn), 2.4 to 6 ms at 16-19k ev/s on this 2-core machine, which was 8 to 16 %
of the run loop's wall time (measured in `bench.profile_worker`). The loop did nothing
else meanwhile, although the worker's other partitions have their own producers and
their own transactions. So an exactly_once commit is started here, and the loop goes on
with the other partitions while the broker works.

What keeps it exactly-once: each partition's own order is unchanged. While its commit is
in flight the partition is not processed (its fetched records wait in the backlog), not
checkpointed (its batch is still open) and not committed again; the verdict is applied on
the loop's thread, exactly as a synchronous commit's would be, before the partition
processes anything more. The transactional calls stay bounded (`bounded`): a stuck call
becomes a REOWN verdict here too.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass

from streamlearn.eos.commit import Verdict


@dataclass
class InFlight:
    """The commit started for the open batch that ends before `next_offset`."""

    future: concurrent.futures.Future[Verdict]
    next_offset: int
    started: float  # perf_counter at the start (the commit-time statistics)

    def done(self) -> bool:
        return self.future.done()


class Committer:
    """One thread per partition for its commits, created on first use."""

    def __init__(self) -> None:
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def start(self, call: Callable[[], Verdict], next_offset: int) -> InFlight:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="txn-commit")
        return InFlight(self._pool.submit(call), next_offset, time.perf_counter())

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)  # a commit still running ends on its own (its calls are bounded)
            self._pool = None


def wait_any(flights: list[InFlight], timeout_s: float) -> None:
    """Until one of `flights` is done, or `timeout_s` passes (the loop has nothing else to do meanwhile)."""
    if flights:
        concurrent.futures.wait([f.future for f in flights], timeout=max(0.0, timeout_s),
                                return_when=concurrent.futures.FIRST_COMPLETED)
