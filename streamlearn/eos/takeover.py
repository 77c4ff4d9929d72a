"""Where a partition's takeover spends its time, step by step, logged once at its first commit.

Recovery after a worker dies is measured from the outside (kill → first
prediction of a new event, per partition). That span crosses Ray, Redis, the
transaction coordinator, the checkpoint and the replay, and a guess at which
of them is slow is usually wrong. Each step marks the moment it ended,
relative to the moment the partition was handed to this worker; the first
commit logs them all as one `takeover_timeline` line (INFO), so an operator
(or the benchmark's log) shows the slow step without a debugger. The marks
are wall-clock too (`at`), to line up with the Coordinator's
`worker_died_*` line and an outside kill time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from streamlearn import logs

log = logs.get("protocol")


class Timeline:
    """Step marks (ms since `start`) of one takeover; a step marked twice keeps its first mark."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.t0 = clock()
        self.started_at = wall()
        self.marks: dict[str, float] = {}
        self.done = False

    def mark(self, step: str) -> None:
        if not self.done and step not in self.marks:
            self.marks[step] = round((self.clock() - self.t0) * 1000.0, 1)

    def finish(self, step: str, ctx: dict[str, Any]) -> dict[str, float] | None:
        """Mark the last step and log the timeline once; None if it was already logged."""
        if self.done:
            return None
        self.mark(step)
        self.done = True
        logs.event(log, logging.INFO, "takeover_timeline", **ctx,
                   started_at=f"{self.started_at:.3f}", **{f"{k}_ms": v for k, v in self.marks.items()})
        return dict(self.marks)
