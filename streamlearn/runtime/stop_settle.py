"""Before a graceful stop: let the takeovers in flight finish (bounded).

A graceful stop leaves each partition's checkpoint at its committed offset:
the run that owns it finishes its replay and checkpoints (`Run.finish`). But
a stop that lands just after a worker died can find a partition between
owners: moved to a standby whose `run` has not started yet, or bouncing
between actors Ray is still restarting. Nobody then runs `finish` for it, and
its checkpoint stays where the dead owner left it, behind the committed
offset (seen in CI: partition 0 checkpointed at 921, committed 1,000, after a
burst of kills that ended a second before the stop). Nothing is lost — the
next start replays that range — but the stop is no longer the clean cut users
expect, and the model stored is not the one a fault-free run stops with.

So the Coordinator, still supervising (the monitor keeps handling deaths),
first waits until every partition is held by an owner whose run answers a ping
as `running` with that partition, at most `SETTLE_S`; then it stops everyone.
If the wait runs out, the partitions still in transit are logged
(`stop_during_takeover`) and the stop goes on: a stop must never hang on a
worker that cannot come back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from streamlearn import logs

log = logs.get("coordinator")

#: Longest a graceful stop waits for takeovers in flight (a Ray actor restart takes 8-25 s under load).
SETTLE_S = 30.0
#: Bound on each owner's ping while waiting.
PING_S = 2.0
#: Pause between two looks.
LOOK_EVERY_S = 0.2


def unsettled(owners: list[tuple[list[int], bool, Any]], ping: Callable[[Any, float], dict[str, Any] | None]) -> list[int]:
    """Partitions not yet held by a running run. `owners`: (partitions, run in flight, handle) per owner."""
    waiting: list[int] = []
    for partitions, in_flight, handle in owners:
        if not partitions:
            continue
        reply = ping(handle, PING_S) if in_flight else None
        held = set(reply.get("partitions") or []) if reply is not None and reply.get("phase") == "running" else set()
        waiting.extend(p for p in partitions if p not in held)
    return sorted(waiting)


def wait_for_owners(snapshot: Callable[[], list[tuple[list[int], bool, Any]]],
                    ping: Callable[[Any, float], dict[str, Any] | None],
                    settle_s: float = SETTLE_S, clock: Callable[[], float] = time.monotonic) -> list[int]:
    """Wait until every owner's partitions are running (or `settle_s` passes); the partitions still waiting."""
    deadline = clock() + settle_s
    started = clock()
    while True:
        waiting = unsettled(snapshot(), ping)
        if not waiting:
            if clock() - started > LOOK_EVERY_S:
                logs.event(log, logging.INFO, "stop_waited_for_takeovers", waited_s=round(clock() - started, 2))
            return []
        if clock() >= deadline:
            logs.event(log, logging.WARNING, "stop_during_takeover", partitions=waiting, waited_s=round(clock() - started, 2),
                       hint="their checkpoints may stay behind the committed offset; the next start replays that range")
            return waiting
        time.sleep(LOOK_EVERY_S)
