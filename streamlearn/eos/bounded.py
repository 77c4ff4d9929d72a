"""A transactional call bounded by our own clock, not only by librdkafka's timeout.

Why: librdkafka's transactional calls take a timeout, yet after a broker outage
`commit_transaction(5 s)` blocked the run loop for over 70 s (fresh-clone CI,
librdkafka 2.12.1; the `loop_stack` of `worker_stuck_restarting` named the call),
as its issue tracker reports for `send_offsets_to_transaction` and
`abort_transaction` too (confluentinc/librdkafka#3013, #3779). The loop then only
moved again when the Coordinator killed the whole worker, every partition of it.

So the producer's transactional calls (init, send_offsets, commit, abort) run on
a helper thread, and the loop waits for the call's own timeout plus `GRACE_S`.
Past that the producer is given up (`CallStuck`). In a commit the verdict is
REOWN, as for any commit whose outcome is unknown; an abort counts as failed
(re-own); an init_transactions fails the take (the run is called again). A new
producer with the same transactional.id runs init_transactions, which fences the
stuck one (the coordinator first completes or aborts its transaction), and the
partition is restored from its checkpoint and Kafka's committed offset, so
whichever way that transaction ended, nothing is lost or emitted twice. The
stuck call's thread is left to return (or not) on its own; the producer it holds
is destroyed there, never on the loop's thread.

Cost: the hand-off to the helper thread and back, about 80 µs of CPU per call
on this 2-core machine (two calls per commit: under 1 % of a core at the
default 100 ms commit interval on 4 partitions).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")

#: Beyond a call's own timeout: a call that honours it has returned by then (its
#: timeout is measured inside librdkafka, which may start it a little later).
GRACE_S = 5.0


class CallStuck(Exception):
    """A transactional call outlived its timeout by GRACE_S: its producer is given up."""


class BoundedCalls:
    """One helper thread per producer: its calls run there, one at a time, as they would on the loop."""

    def __init__(self, grace_s: float = GRACE_S) -> None:
        self.grace_s = grace_s
        self.stuck = False  # a call outlived its bound: this producer must not be called again
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="txn-call")

    def run(self, fn: Callable[..., _T], timeout_s: float, *args: object) -> _T:
        """`fn(*args, timeout_s)`, waited for timeout_s + grace_s; its exceptions are raised here."""
        if self.stuck:
            raise CallStuck("this producer's previous call never returned")
        future = self._pool.submit(fn, *args, timeout_s)
        try:
            return future.result(timeout_s + self.grace_s)
        except concurrent.futures.TimeoutError:
            self.stuck = True
            self._pool.shutdown(wait=False)  # its thread finishes the call whenever librdkafka returns
            raise CallStuck(f"{getattr(fn, '__name__', 'call')}({timeout_s:.0f} s) still blocked after "
                            f"{timeout_s + self.grace_s:.0f} s") from None

    def close(self) -> None:
        self._pool.shutdown(wait=not self.stuck)
