"""The liveness value a task shares with the runtime that drives it.

Slow protocol steps (init_transactions, commit retries, restore) beat it on
every attempt, so the worker's liveness check tells "retrying within bounded
timeouts" from "stuck in a client library". It is a value the runtime reads,
not a call back into the runtime.
"""

from __future__ import annotations

import time


class Heartbeat:
    """The monotonic time of the last sign of life."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def beat(self) -> float:
        self.last = now = time.monotonic()
        return now

    def age(self) -> float:
        return time.monotonic() - self.last
