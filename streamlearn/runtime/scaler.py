"""A live rescale carried out by the Coordinator: the plan (`rescale`) applied to the running workers.

Sequence:

1. The new owners (scale-up) are standbys first, then new actors; each is
   given a run with no partitions and waited for until it runs, so that its
   process, imports and Kafka clients are up before any partition pauses.
2. The roster is updated before anything is released: the lease checks
   then never take a partition in hand-off for another worker's, and the
   removed workers are no longer supervised (their runs end by design).
3. Every old owner releases its moving partitions (all at once, in
   parallel); as soon as one has, its partitions are added by their new
   owners. Per partition: release (commit, final checkpoint, lease) → add
   (new epoch, fence, restore with an empty replay). Partitions that do not
   move are never touched.
4. Removed workers are killed; the standby pool is refilled.

A release that fails (the old owner died or hung) does not stop the
hand-off: the new owner takes the partition unconditionally, fencing the
old one, and replays from the last checkpoint, as after any failure. An add
that fails hands the partitions to a standby instead, so none is left
unowned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from connectors.rescale_store import RescaleStore
from streamlearn import logs
from streamlearn.runtime import rescale
from streamlearn.runtime.roster import Role, Worker
from streamlearn.runtime.supervisor import PING_TIMEOUT_S, Supervisor

log = logs.get("coordinator")
Progress = Callable[[str], None]
HANDOFF_TIMEOUT_S = 60.0  # one release or add, on the worker (the Coordinator waits a little longer)
READY_TIMEOUT_S = 180.0  # a new worker's process start and imports, on a busy node
SUPERVISE_EVERY_S = 0.1  # while a hand-off is awaited, the supervision turns this often (`_supervise`)
ALIVE_TTL_MS = 5000  # the Coordinator's "alive" key: `streamlearn scale` refuses at once without it


class ScaleError(Exception):
    pass


def scale(sup: Supervisor, partitions: list[int], n: int, reason: str, progress: Progress) -> dict[str, Any]:
    """Apply the plan for `n` workers; what was done (assignment, moves, removed workers)."""
    if sup.stopping.is_set():
        raise ScaleError("the app is stopping")
    owners = {w.wid: list(w.partitions) for w in sup.roster.with_role(Role.OWNER)}
    plan = rescale.plan(owners, sorted(set(partitions) | {p for ps in owners.values() for p in ps}), n)
    logs.event(log, logging.WARNING, "rescale_planned", workers=len(plan.target), reason=reason, removed=plan.removed,
               moves=[(m.partition, m.source, m.target) for m in plan.moves])
    who: dict[str, Worker] = {wid: sup.roster.workers[wid] for wid in plan.target if wid in sup.roster.workers}
    if plan.added:
        who.update(_start_new_owners(sup, plan.added, progress))
    moves = [rescale.Move(m.partition, m.source, who[m.target].wid) for m in plan.moves]
    progress(f"moving {len(moves)} partition(s): " + (", ".join(f"p{m.partition} {m.source or '-'}→{m.target}" for m in moves) or "none"))
    for wid, parts in plan.target.items():
        who[wid].partitions = list(parts)
    sources = {m.source: sup.roster.workers[m.source] for m in moves if m.source is not None}
    leaving = [sup.roster.workers[wid] for wid in plan.removed]
    for w in leaving:
        sup.roster.drop(w)
    adds: list[tuple[Worker, list[int], Any]] = []

    def hand_over(group: list[rescale.Move]) -> None:
        for target in sorted({m.target for m in group}):
            w = sup.roster.workers[target]
            parts = sorted(m.partition for m in group if m.target == target)
            adds.append((w, parts, sup.ray.call(w.handle, "add", parts, HANDOFF_TIMEOUT_S)))

    releases = {src: sup.ray.call(w.handle, "release", sorted(m.partition for m in moves if m.source == src), HANDOFF_TIMEOUT_S)
                for src, w in sources.items()}
    hand_over([m for m in moves if m.source is None])
    for src, ref in releases.items():
        out = _await(sup, ref, HANDOFF_TIMEOUT_S + 10)
        mine = [m for m in moves if m.source == src]
        if out.failure is None:
            progress(f"{src} released {_names(out.value.get('released', {}))} in {out.value.get('seconds')} s (checkpoint children {out.value.get('checkpoint_children_s')} s)")
        else:  # the new owner fences it and replays from the last checkpoint, as after any failure
            logs.event(log, logging.WARNING, "handoff_release_failed", worker=src, partitions=[m.partition for m in mine], error=out.describe())
            for m in mine:
                sup.count(m.partition, "recoveries")
        hand_over(mine)
    for w, parts, ref in adds:
        out = _await(sup, ref, HANDOFF_TIMEOUT_S + 10)
        if out.failure is None:
            progress(f"{w.wid} added {_names(parts)} in {out.value.get('seconds')} s (ownership {out.value.get('ownership_s')} s)")
            continue
        logs.event(log, logging.WARNING, "handoff_add_failed", worker=w.wid, partitions=parts, error=out.describe())
        # Only what w still holds: if the supervision saw w die meanwhile, its partitions went on already.
        still = [p for p in parts if p in w.partitions] if sup.roster.workers.get(w.wid) is w else []
        w.partitions = [p for p in w.partitions if p not in parts]
        progress(f"{w.wid} could not add {_names(parts)}: " + (f"given to {sup.to_spare(still).wid}" if still else "already handed on"))
    for w in leaving:
        sup.ray.kill(w.handle)
    sup.fill_standby()
    assignment = {w.wid: list(w.partitions) for w in sup.roster.with_role(Role.OWNER)}
    logs.event(log, logging.WARNING, "rescale_applied", workers=len(assignment), assignment=assignment, reason=reason)
    return {"workers": len(assignment), "assignment": assignment, "removed": plan.removed,
            "moved": [{"partition": m.partition, "from": m.source, "to": m.target} for m in moves]}


def _start_new_owners(sup: Supervisor, placeholders: list[str], progress: Progress) -> dict[str, Worker]:
    """Standbys first, then new actors, each running with no partitions; returns placeholder → worker."""
    got: dict[str, Worker] = {}
    for ph in placeholders:
        w = sup.roster.next_standby(up_only=True) or sup.roster.add(sup.spawn)  # not one Ray is restarting: its run would wait
        w.partitions = []
        sup.launch(w)  # an OWNER now: no longer a standby, so the next placeholder gets another one
        got[ph] = w
    progress("waiting for new worker(s) to run: " + ", ".join(w.wid for w in got.values()))
    deadline = time.monotonic() + READY_TIMEOUT_S
    waiting = list(got.values())
    while waiting:
        if time.monotonic() > deadline:
            raise ScaleError(f"new workers {[w.wid for w in waiting]} not running after {READY_TIMEOUT_S:.0f} s")
        finished = sup.ray.ready([w.run for w in waiting if w.run is not None])
        if finished:
            raise ScaleError(f"a new worker's run ended before it got partitions: {sup.ray.outcome(finished[0]).describe()}")
        waiting = [w for w in waiting if (sup.ping(w.handle, PING_TIMEOUT_S) or {}).get("phase") != "running"]
        if waiting:
            _supervise(sup, 0.2)
            if any(w.run is None for w in waiting):  # its run ended and the supervision settled it
                raise ScaleError(f"a new worker's run ended before it got partitions: {[w.wid for w in waiting if w.run is None]}")
    return got  # the standbys used are replaced after the hand-offs: a process starting meanwhile takes CPU from them


def _supervise(sup: Supervisor, seconds: float) -> None:
    """Wait, settling finished runs meanwhile: a worker that dies during a rescale is replaced now, not after it.

    The rescale runs on the Coordinator's monitor thread, the thread that supervises; so
    the runs are settled here, between the rescale's steps, on that same thread (with the
    Coordinator's lock held: the roster is never changed by two threads at once). Only
    the runs: the lease checks wait for the rescale's end, because a partition in
    hand-off has no lease for a moment and must not be taken for a lost one.
    """
    deadline = time.monotonic() + seconds
    while True:
        if not sup.stopping.is_set():
            sup.check_runs()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(SUPERVISE_EVERY_S, left))


def _await(sup: Supervisor, ref: Any, timeout: float) -> Any:
    """`ray.outcome(ref)`, supervising while it is not ready (see `_supervise`)."""
    deadline = time.monotonic() + timeout
    while not sup.ray.ready([ref]) and time.monotonic() < deadline:
        _supervise(sup, SUPERVISE_EVERY_S)
    return sup.ray.outcome(ref, timeout=max(deadline - time.monotonic(), 0.1))


def _names(parts: Any) -> str:
    return ",".join(f"p{p}" for p in sorted(int(p) for p in parts)) or "nothing"


def serve_request(requests: RescaleStore, applied_seq: int, apply: Callable[[int, str, Progress], dict[str, Any]]) -> int:
    """The Coordinator's monitor: apply the newest scale request above `applied_seq`; the seq now applied."""
    requests.coordinator_alive(ALIVE_TTL_MS)
    pending = requests.pending(applied_seq)
    if pending is None:
        return applied_seq
    seq, n = pending
    requests.report(seq, "applying", f"scaling to {n} worker(s)")
    t0 = time.monotonic()
    try:
        done = apply(n, f"scale request #{seq}", lambda msg: requests.report(seq, "applying", msg))
    except Exception as exc:
        requests.report(seq, "failed", f"{type(exc).__name__}: {exc}"[:500])
        logs.event(log, logging.WARNING, "rescale_failed", seq=seq, workers=n, error=f"{type(exc).__name__}: {exc}"[:300])
        return seq
    requests.report(seq, "applied", f"{done['workers']} worker(s) own the partitions, {len(done['moved'])} moved",
                    seconds=round(time.monotonic() - t0, 2), **done)
    return seq
