"""What the Coordinator does when a worker's run ends, or its lease lapses.

Two failure paths:

- a worker process dies: its `run` call fails with an actor error. Its
  partitions move at once to a standby worker (an idle actor started ahead,
  `processing.standby_workers`), whose process and imports are already up.
  With a standby and `standby_refill_delay_s` > 0, workers are not restarted
  by Ray: the dead one is dropped and a fresh standby is
  started after the delay, once the new owner has had the CPU to catch up;
  idle standbys are pinged so a dead one is replaced too (`check_standbys`).
  If Ray is restarting the dead actor (`max_restarts`), it becomes the next
  standby, once a ping shows it up (`restarts`: a standby that is down is
  given partitions only when none is up, and its `run` waits for the ping);
  if it is gone for good, it is killed and a fresh standby is started.
  Without a standby the Coordinator calls `run` again on the restarted
  actor once it is up, or replaces one that is gone. Either way the new
  owner fences the old one and recovers from checkpoint + replay.
- a worker hangs (SIGSTOP, GC pause, partition from Redis): its lease expires
  and it does not answer a ping, so its partitions go to another actor. The
  hung one is not killed: it becomes a zombie; if it wakes up it is fenced
  (Kafka producer epoch, Redis epoch), drops its partitions and its `run`
  returns "retired"; only then is it removed.

And one reconciliation: a worker that answers pings may still have dropped
some of its partitions (fenced by an owner that then died, or a zombie that
took one over). A ping reports what its run dropped; any of those whose lease
is not the worker's own is handed to a standby (`partitions_dropped`), so no
partition waits unowned behind a live worker.

Everything here is decision logic over a `Roster`: Ray is reached only
through the `RayPort` (the `ray_api` module in production, a fake in unit
tests), Redis through two callables, time through a clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from streamlearn import logs
from streamlearn.config_sections import (
    STUCK_MARGIN_S,  # processing.stuck_loop_s's default margin over the lease
)
from streamlearn.runtime import adoption, lease_check, restarts
from streamlearn.runtime.lease_check import PING_TIMEOUT_S, STARTUP_GRACE_S
from streamlearn.runtime.placement import Placement
from streamlearn.runtime.ray_api import Failure, Outcome
from streamlearn.runtime.roster import Role, Roster, Worker

log = logs.get("coordinator")
__all__ = ["PING_TIMEOUT_S", "STARTUP_GRACE_S", "STUCK_MARGIN_S", "RayPort", "Supervisor"]  # thresholds: lease_check, config
# A run that raised (e.g. Kafka unreachable while taking ownership) is called again after this.
RETRY_S = 2.0
_DIED = (Failure.RESTARTING, Failure.DEAD)


class RayPort(Protocol):
    """The part of `ray_api` the decisions use."""

    def call(self, handle: Any, method: str, *args: Any) -> Any: ...
    def ready(self, refs: list[Any]) -> list[Any]: ...
    def outcome(self, ref: Any, timeout: float | None = None) -> Outcome: ...
    def kill(self, handle: Any, restart: bool = False) -> None: ...


class Supervisor:
    def __init__(self, ray: RayPort, spawn: Callable[[str], Any], lease_owner: Callable[[int], str | None],
                 count: Callable[[int, str], None], *, lease_s: float, standby_workers: int, refill_delay_s: float = 0.0,
                 stuck_after_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic, placement: Placement | None = None) -> None:
        self.ray, self.spawn, self.lease_owner, self.count, self.clock = ray, spawn, lease_owner, count, clock
        self.placement = placement  # None: no node knowledge (unit tests, a local instance behaves the same)
        self.lease_s = lease_s
        self.stuck_after_s = stuck_after_s if stuck_after_s is not None else lease_s + STUCK_MARGIN_S  # `stuck_loop_s`
        self.standby_workers = standby_workers
        self.refill_delay_s = refill_delay_s
        self.refill_at: float | None = None  # a delayed standby refill is due then (`standby_refill_delay_s`)
        self.roster = Roster()
        self.stopping = threading.Event()
        self._last_lease_check = clock()

    def start(self, partitions: list[int], n_workers: int) -> dict[str, list[int]]:
        owners = [self.roster.add(self.spawn) for _ in range(n_workers)]
        for i, p in enumerate(partitions):
            owners[i % n_workers].partitions.append(p)
        for w in owners:
            self.launch(w)
        self.fill_standby()  # after the owners, so standbys never delay the first assignment
        return {w.wid: list(w.partitions) for w in self.roster.live()}

    def adopt(self, partitions: list[int], found: dict[str, Any]) -> dict[str, list[int]]:
        """After a Coordinator restart: keep the owners found (`adoption`), hand out the orphans."""
        plan = adoption.plan(partitions, {wid: self.ping(h, PING_TIMEOUT_S) for wid, h in found.items()})
        for wid in plan.unreachable:
            self.ray.kill(found[wid])
            self.roster.skip_id(wid)
        for wid in plan.standby:
            self.roster.adopt(wid, found[wid])
        for wid, parts in plan.owners.items():
            w = self.roster.adopt(wid, found[wid])
            w.role, w.partitions, w.has_owned = Role.OWNER, parts, True
            w.run, w.launched_at = self.ray.call(w.handle, "join_run"), self.clock()
        if plan.orphans:
            self.count_recoveries(plan.orphans)
            self.to_spare(plan.orphans)
        self.fill_standby()
        logs.event(log, logging.WARNING, "coordinator_restarted_adopted", owners=plan.owners, standby=plan.standby,
                   unreachable=plan.unreachable, orphans=plan.orphans)
        return {w.wid: list(w.partitions) for w in self.roster.live()}

    def tick(self) -> None:
        """One monitor turn: settle finished runs; every quarter lease, check the leases."""
        self.check_runs()
        if self.clock() - self._last_lease_check >= self.lease_s / 4:
            self._last_lease_check = self.clock()
            self.check_leases()
            self.check_standbys()

    # ---- runs ----------------------------------------------------------------------
    def launch(self, w: Worker) -> None:
        w.role, w.relaunch_at = Role.OWNER, None
        if w.down_since is not None:
            return  # Ray is restarting it: `restarts` calls this again once a ping answers
        w.run = self.ray.call(w.handle, "run", list(w.partitions))
        w.launched_at = self.clock()

    def check_standbys(self) -> None:
        """Without Ray restarts (`standby_refill_delay_s`), an idle standby that died would stay dead until a
        takeover handed it partitions (then a cold start). So each is pinged once a lease quarter; one found gone
        for good is dropped and refilled after the delay. A slow answer is not a death: only DEAD counts."""
        if self.refill_delay_s <= 0 or self.stopping.is_set():
            return
        for w in self.roster.standby():
            if w.health is not None and self.ray.ready([w.health]):
                out, w.health = self.ray.outcome(w.health), None
                if out.failure is Failure.DEAD:
                    logs.event(log, logging.WARNING, "standby_gone", worker=w.wid, reason="idle standby died",
                               refill_in_s=self.refill_delay_s)
                    self.ray.kill(w.handle)
                    self.roster.drop(w)
                    if self.refill_at is None:
                        self.refill_at = self.clock() + self.refill_delay_s
                    continue
            if w.health is None:
                w.health = self.ray.call(w.handle, "ping")

    def fill_standby(self) -> None:
        self.refill_at = None
        while len(self.roster.standby()) < self.standby_workers:
            self.roster.add(self.spawn)

    def check_runs(self) -> None:
        now = self.clock()
        if self.refill_at is not None and now >= self.refill_at and not self.stopping.is_set():
            self.fill_standby()
        for w in self.roster.with_role(Role.OWNER):
            if w.run is None and w.relaunch_at is not None and now >= w.relaunch_at:
                self.launch(w)
        running = self.roster.running()
        for ref in self.ray.ready(list(running)):
            w = running[ref]
            w.run = None
            self.settle(w, self.ray.outcome(ref))
        if not self.stopping.is_set():
            restarts.check(self)

    def settle(self, w: Worker, out: Outcome) -> None:
        """Decide what follows a finished run, by how it finished."""
        if w.role is Role.ZOMBIE:
            # Retired however its run ended: fenced ("retired"), or failing on its way out.
            if out.failure is None:
                logs.event(log, logging.WARNING, "zombie_retired", worker=w.wid, result=out.value.get("result"), lost=out.value.get("lost"))
            else:
                logs.event(log, logging.WARNING, "zombie_retired", worker=w.wid, result=f"error: {out.error_type}")
            self.ray.kill(w.handle)
            self.roster.drop(w)
        elif self.stopping.is_set():
            return
        elif out.failure is None and not w.partitions:
            self.roster.to_standby(w)  # every partition it held was handed on: it waits as a standby
        elif out.failure is None:
            logs.event(log, logging.WARNING, "worker_returned_early", worker=w.wid, result=out.value)
            self.launch(w)
        elif out.failure in _DIED:
            self._on_death(w, gone=out.failure is Failure.DEAD, error=out.error_type)
        else:
            # The method raised (or its result was lost): the actor lives, so retry after a
            # pause; its open transactions are aborted by the next init_transactions.
            logs.event(log, logging.WARNING, "worker_failed_retrying", worker=w.wid, partitions=w.partitions,
                       error=out.describe(), retry_in_s=RETRY_S)
            w.relaunch_at = self.clock() + RETRY_S

    def _on_death(self, w: Worker, *, gone: bool, error: str) -> None:
        self.roster.worker_restarts += 1
        w.deaths += 1
        self.count_recoveries(w.partitions)
        spare = self.spare_after_loss(w)
        delay = spare is not None and self.refill_delay_s > 0
        logs.event(log, logging.WARNING, "worker_died_replacing" if gone or delay else "worker_died_restarting",
                   worker=w.wid, partitions=w.partitions, error=error, deaths=w.deaths)
        if not gone and not delay:
            restarts.mark_down(self, w)
        if spare is None:
            if gone:
                self.replace(w, reason="actor gone for good (restarts exhausted, killed or failed to start)")
            else:
                self.launch(w)  # Ray restarts it: its run is called once a ping answers (`restarts`)
            return
        spare.partitions, w.partitions = w.partitions, []
        logs.event(log, logging.WARNING, "partitions_moved_to_standby", dead=w.wid, standby=spare.wid, partitions=spare.partitions)
        self.launch(spare)
        if gone or delay:
            # Gone, or not restarted (a refill delay: no Ray restarts, `worker_max_restarts`): w is dropped; with a
            # delay its replacement starts after the new owner's catch-up instead of competing with it.
            self.ray.kill(w.handle)
            self.roster.drop(w)
            if delay:
                self.refill_at = self.clock() + self.refill_delay_s
                logs.event(log, logging.WARNING, "standby_refill_delayed", dead=w.wid, refill_in_s=self.refill_delay_s)
            else:
                self.fill_standby()
        else:
            self.roster.to_standby(w)  # Ray is restarting it; once up it waits as the next standby

    # ---- leases --------------------------------------------------------------------
    def check_leases(self) -> None:
        lease_check.check_leases(self)

    def add_partitions(self, new: list[int]) -> None:
        """Partitions added to the input topic while running: to a standby (or a new worker), at once.

        No partition that is already owned moves for them (a hand-off would pause it); the
        standby they go to is replaced, so a dead worker still finds one.
        """
        w = self.to_spare(new)
        logs.event(log, logging.WARNING, "partitions_added", partitions=new, worker=w.wid)
        self.fill_standby()

    def to_spare(self, partitions: list[int]) -> Worker:
        """partitions to the oldest standby (or a new worker), launched."""
        w = self.roster.next_standby() or self.roster.add(self.spawn)  # known-up standbys first
        w.partitions = list(partitions)
        self.launch(w)
        return w

    def replace(self, w: Worker, reason: str) -> None:
        """w's partitions go to a standby or a new worker; w becomes a zombie if its run is in flight."""
        parts, w.partitions = w.partitions, []
        if w.run is not None:
            w.role = Role.ZOMBIE
        else:
            self.roster.drop(w)
        self.roster.replacements += 1
        new = self.spare_after_loss(w) or self.roster.add(self.spawn)
        new.partitions = parts
        logs.event(log, logging.WARNING, "worker_replaced", old=w.wid, new=new.wid, partitions=parts, reason=reason)
        self.launch(new)
        self.fill_standby()

    def spare_after_loss(self, lost: Worker) -> Worker | None:
        """The standby for a lost worker's partitions: on another node than the lost one's (`placement`),
        and there one known to be up before one Ray is restarting (`restarts`)."""
        if self.placement is None:
            return self.roster.next_standby()
        return self.placement.spare_after_loss(lost.wid, self.roster.spares())

    def count_recoveries(self, partitions: list[int]) -> None:
        for p in partitions:
            self.count(p, "recoveries")

    # ---- queries and stop ----------------------------------------------------------
    def ping(self, handle: Any, timeout: float) -> dict[str, Any] | None:
        out = self.ray.outcome(self.ray.call(handle, "ping"), timeout=timeout)
        return out.value if out.failure is None else None

    def stop_all(self, timeout_s: float) -> list[dict[str, Any]]:
        """Ask every worker to stop, zombies too (one that woke up may own its partition again)."""
        self.stopping.set()
        everyone = list(self.roster.workers.values())
        for w in everyone:
            self.ray.call(w.handle, "stop")
        results = []
        deadline = self.clock() + timeout_s
        for w in everyone:
            if w.run is not None:
                out = self.ray.outcome(w.run, timeout=max(deadline - self.clock(), 0.1))
                results.append(out.value if out.failure is None else {"worker": w.label, "result": f"error: {out.error_type}"})
        for w in everyone:
            self.ray.kill(w.handle)
        return results
