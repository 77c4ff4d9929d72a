"""Workers Ray is restarting: never handed partitions as if they were up.

A SIGKILLed actor with restarts left comes back as a new process only after
its imports and warm-up: 8-25 s on a loaded machine. Until then a call on it
fails after about a second with ActorUnavailableError (`max_task_retries=0`:
Ray does not queue calls for a restarting actor). The Coordinator used to
put such an actor back as a standby at once, so the next death handed it
partitions; its `run` failed within a second, that counted as another death,
and the partitions moved to the next standby, often the other actor Ray was
restarting, and back again, about once a second until one of them was up
(CI and the `streamlearn_eos_2w` benchmark: up to 5 moves per kill, each
counted as a recovery and a worker restart; recoveries of 9-18 s instead of
3-4 s).

So a worker whose run failed RESTARTING is marked down (`down_since`) and
asked, by a ping, whether it is up: one ping in flight at a time, the next
`PROBE_EVERY_S` after one failed. Meanwhile:

- standbys known to be up are given partitions first (`Roster.spares`);
- if none is, the partitions still go to a standby that is down (the one
  restarting longest, the likeliest to be up first: a fresh actor would take
  as long to start) or stay on the dead owner, but its `run` is only called
  once a ping has answered. A process that is not up yet is so never taken
  for a new death, and the partitions move once per death, not per second.
  Why a ping first rather than calling `run` again after a pause: a run that
  fails cannot tell "not up yet" from "up, then died again", a ping can;
- partitions waiting on a restarting actor go to the first restarting
  standby that answers, if it answers first: the one they wait on may have
  been killed again during its restart (back-to-back failures: a second
  kill before the first restart is done), and the old bounce at least
  found whichever came up first. Not counted again: no owner has held them;
- if a ping says the actor is gone for good (DEAD), or it is not up after
  `RESTART_WAIT_S`, it is killed: an owner's partitions go to another
  standby or a new worker (`Supervisor.replace`), a standby is dropped and
  refilled. An actor that never comes back so costs a bounded wait.

Pure decisions over the roster, as in `lease_check`; the pings go through
the `RayPort` and never block the monitor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from streamlearn import logs
from streamlearn.runtime.ray_api import Failure
from streamlearn.runtime.roster import Role, Roster, Worker

log = logs.get("coordinator")
#: Pause after a ping that found the actor still restarting. Short: Ray itself takes 0.5-1 s to fail
#: a call on an actor it is restarting (measured on Ray 2.60), so this is about one ping a second,
#: and the partitions' run starts within about that of the process being up (the old bounce's pace).
PROBE_EVERY_S = 0.2
#: Longest wait for Ray's restart before the actor is killed and replaced (a fresh start takes as long).
RESTART_WAIT_S = 60.0


class Supervisor(Protocol):
    """What the decisions use of `supervisor.Supervisor` (a Protocol: no import circle)."""

    roster: Roster
    ray: Any
    clock: Callable[[], float]

    def launch(self, w: Worker) -> None: ...
    def replace(self, w: Worker, reason: str) -> None: ...
    def fill_standby(self) -> None: ...


def mark_down(sup: Supervisor, w: Worker) -> None:
    """Ray is restarting w: no run is called on it until a ping answers (probed at the next check)."""
    if w.down_since is None:
        w.down_since = sup.clock()
    w.probe, w.probe_at = None, sup.clock()


def check(sup: Supervisor) -> None:
    """Read the pings that answered; ask again, or give up on an actor that does not come back."""
    probing = sup.roster.probing()
    for ref in sup.ray.ready(list(probing)):
        w = probing[ref]
        w.probe = None
        out = sup.ray.outcome(ref)
        if out.failure is None:
            _up(sup, w)
        elif out.failure is Failure.DEAD:
            _gone(sup, w, "actor gone for good while Ray was restarting it")
        else:
            w.probe_at = sup.clock() + PROBE_EVERY_S
    now = sup.clock()
    for w in list(sup.roster.workers.values()):
        if w.down_since is None or w.probe is not None or w.role is Role.ZOMBIE:
            continue
        if now - w.down_since > RESTART_WAIT_S:
            _gone(sup, w, f"not up {RESTART_WAIT_S:.0f} s after Ray began restarting it")
        elif now >= w.probe_at:
            w.probe = sup.ray.call(w.handle, "ping")


def _up(sup: Supervisor, w: Worker) -> None:
    down_s = sup.clock() - (w.down_since or sup.clock())
    w.down_since = None
    if w.role is Role.STANDBY and (held := _waiting(sup.roster)) is not None:
        # They were waiting on another restarting actor: this one is up first.
        w.partitions, held.partitions = held.partitions, []
        sup.roster.to_standby(held)
        logs.event(log, logging.WARNING, "partitions_moved_to_restarted", waited_on=held.wid, worker=w.wid, partitions=w.partitions)
    waiting = bool(w.partitions) if w.role is Role.STANDBY else w.role is Role.OWNER and w.run is None
    logs.event(log, logging.WARNING, "worker_restarted_up", worker=w.wid, down_s=round(down_s, 2),
               partitions=w.partitions if waiting else [])
    if waiting:
        sup.launch(w)


def _waiting(roster: Roster) -> Worker | None:
    """The owner restarting longest whose partitions wait for it to be up."""
    held = [o for o in roster.with_role(Role.OWNER) if o.down_since is not None and o.run is None and o.partitions]
    return min(held, key=lambda o: o.down_since or 0.0) if held else None


def _gone(sup: Supervisor, w: Worker, reason: str) -> None:
    w.down_since, w.probe = None, None
    sup.ray.kill(w.handle)
    if w.role is Role.OWNER and w.run is None:
        sup.replace(w, reason=reason)
    elif w.role is Role.STANDBY:
        logs.event(log, logging.WARNING, "standby_gone", worker=w.wid, reason=reason)
        sup.roster.drop(w)
        sup.fill_standby()
