"""The lease checks of the Coordinator's monitor: a hung worker, a stuck one, and dropped partitions.

Apart from `supervisor` only to keep that class small; the decisions are the
Supervisor's (see its docstring): a worker whose lease expired and that does
not answer a ping is replaced (it becomes a zombie, fenced if it wakes); one
that answers but whose loop has not turned for longer than any client
timeout is restarted; one that answers is left alone, except for the
partitions its run reports lost to another owner while nobody assigned holds
them, which go to a standby.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from streamlearn import logs
from streamlearn.runtime.roster import Role, Roster, Worker

log = logs.get("coordinator")
PING_TIMEOUT_S = 2.0
# A worker that has never held a lease gets this long to start before it counts as hung.
STARTUP_GRACE_S = 60.0


class Supervisor(Protocol):
    """What the checks use of `supervisor.Supervisor` (a Protocol: no import circle)."""

    roster: Roster
    ray: Any
    lease_s: float
    stuck_after_s: float
    clock: Callable[[], float]
    lease_owner: Callable[[int], str | None]

    def ping(self, handle: Any, timeout: float) -> dict[str, Any] | None: ...
    def count_recoveries(self, partitions: list[int]) -> None: ...
    def replace(self, w: Worker, reason: str) -> None: ...
    def to_spare(self, partitions: list[int]) -> Worker: ...
    def fill_standby(self) -> None: ...


def check_leases(sup: Supervisor) -> None:
    """Every owner whose run is in flight: its leases held, or hung (replaced), stuck (restarted), or dropped some."""
    for w in sup.roster.with_role(Role.OWNER):
        age = sup.clock() - w.launched_at
        if w.run is None or not w.partitions:
            continue
        owners = {p: sup.lease_owner(p) for p in w.partitions}
        mine = {p for p, o in owners.items() if o is not None and o.startswith(f"{w.wid}@")}
        if mine:
            w.has_owned = True  # seen even while it is too fresh to judge: a loop stuck early is no start-up
        if age < sup.lease_s * 2:
            continue
        expired = [p for p, o in owners.items() if o is None]
        if len(mine) == len(owners):
            continue
        if not expired:
            # Some lease is held by another worker: did w drop those partitions?
            reply = sup.ping(w.handle, PING_TIMEOUT_S)
            if reply is not None:
                reconcile(sup, w, reply, set(owners) - mine)
            continue
        if not w.has_owned and age < STARTUP_GRACE_S:
            # Never took ownership yet: still being created (slow on a busy node), not hung.
            # Replacing it now would cascade replacements that never start.
            continue
        reply = sup.ping(w.handle, PING_TIMEOUT_S)
        if reply is None:
            sup.count_recoveries(w.partitions)
            sup.replace(w, reason=f"lease expired on partitions {expired} and no answer to ping")
        elif float(reply.get("loop_age_s", 0.0)) > sup.stuck_after_s:
            # The process answers but its loop has not turned for longer than any bounded
            # Kafka/Redis call may take: stuck in a client library. Restart it (Ray
            # re-creates the actor, its run fails, and check_runs hands its partitions on).
            logs.event(log, logging.WARNING, "worker_stuck_restarting", worker=w.wid, partitions=w.partitions,
                       loop_age_s=round(float(reply["loop_age_s"]), 1), loop_stack=" < ".join(reversed(reply.get("loop_stack", []))))
            sup.ray.kill(w.handle, restart=True)
        else:
            # Alive (e.g. paused on Redis): leave it be, except what it has dropped.
            reconcile(sup, w, reply, set(owners) - mine)


def reconcile(sup: Supervisor, w: Worker, reply: dict[str, Any], not_held: set[int]) -> None:
    """Hand on the partitions w's run reports dropped and whose lease is not w's."""
    dropped = sorted(not_held & set(reply.get("lost", ())) & set(w.partitions))
    if not dropped:
        return
    w.partitions = [p for p in w.partitions if p not in dropped]
    sup.count_recoveries(dropped)
    new = sup.to_spare(dropped)
    logs.event(log, logging.WARNING, "partitions_dropped", worker=w.wid, partitions=dropped, new=new.wid,
               reason="the worker lost them to another owner and nobody assigned holds them")
    sup.fill_standby()
