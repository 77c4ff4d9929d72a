"""How many events to run through the model before looking at the clock again.

A poll can return `max_batch` records. Processed in one go, a slow model
(say 50 ms an event) keeps the partition's transaction open for minutes:
past `transaction.timeout.ms` the broker aborts it, the worker replays the
batch and times out again, forever. So a batch is processed in chunks sized
from the model's measured speed to fit what is left of the transaction's
time budget, and the task commits early once the budget is spent.

Fast models pay nothing: the first chunk of a partition is one event (to
measure), after which a chunk covers the whole remaining budget, i.e.
usually the whole poll. One event that alone comes close to the
transaction timeout cannot be helped by chunking: it is logged
(`slow_model_step`), at most once a minute per partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from streamlearn import logs

log = logs.get("protocol")

SLOW_STEP_FRACTION = 0.5  # warn when one event takes this share of transaction.timeout.ms
_WARN_EVERY_S = 60.0
_SMOOTHING = 0.3  # weight of the newest chunk in the per-event estimate


class Pace:
    """Per-partition estimate of one event's model time, and the chunk size it allows."""

    def __init__(self, budget_s: float, transaction_timeout_s: float, ctx: Callable[..., dict[str, Any]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.budget_s = budget_s
        self.transaction_timeout_s = transaction_timeout_s
        self.per_event_s: float | None = None  # unknown until the first chunk is measured
        self._ctx = ctx
        self._clock = clock
        self._warned_at: float | None = None

    def chunk(self, remaining: int, open_for_s: float) -> int:
        """Events to process next, given `remaining` fetched and a transaction open for `open_for_s`."""
        if self.per_event_s is None:
            return min(1, remaining)
        left = self.budget_s - open_for_s
        fits = int(left / self.per_event_s) if self.per_event_s > 0 else remaining
        return max(1, min(remaining, fits))

    def observe(self, events: int, seconds: float) -> None:
        """Fold a measured chunk into the estimate; warn if one event nears the transaction timeout."""
        if events <= 0:
            return
        per = seconds / events
        self.per_event_s = per if self.per_event_s is None else (1 - _SMOOTHING) * self.per_event_s + _SMOOTHING * per
        if per >= SLOW_STEP_FRACTION * self.transaction_timeout_s:
            now = self._clock()
            if self._warned_at is None or now - self._warned_at >= _WARN_EVERY_S:
                self._warned_at = now
                logs.event(log, logging.WARNING, "slow_model_step", **self._ctx(
                    per_event_ms=round(per * 1000, 1), transaction_timeout_ms=int(self.transaction_timeout_s * 1000),
                    hint="one event's model step nears kafka.transaction_timeout_ms: raise it, or use a faster model"))
