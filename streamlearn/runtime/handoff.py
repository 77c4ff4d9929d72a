"""Planned hand-off of partitions between running workers (live rescale), on the worker's side.

`PartitionWorker.release` and `.add` are called from other threads of the
actor; they queue a `Request` here and wait. The run's loop thread serves the
queue between commit cycles (`Handoffs.serve`), so a hand-off never races the
loop over a task, the shared consumer or an open transaction.

Release (old owner), per partition: commit the open batch; wait for the
forked checkpoint children, so that none lands after the final one; write the
final checkpoint at the committed offset, publish status and release the
lease (`PartitionTask.stop`, as a graceful stop does); record in Redis the
wall time of that last commit; drop the task and `incremental_unassign`.

Add (new owner): take ownership of all added partitions at once (epoch bump,
`init_transactions`, which fences the old producer for good), restore (the
replay is empty: the checkpoint is at the committed offset; a non-empty one
is logged, it only costs time), `incremental_assign`. At its first commit
of a handed-off partition the new owner records the pause (old owner's last
commit → this commit, wall clock) and counts the hand-off.

A run left with no partitions by a release (or started with none) waits for
`add` or `stop`; only a run whose partitions were all taken by other owners
ends ("retired").
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from confluent_kafka import TopicPartition

from connectors.rescale_store import RescaleStore
from streamlearn import logs
from streamlearn.eos.task import PartitionTask

log = logs.get("worker")


class RunPort(Protocol):
    """What a hand-off uses of the run (`run_loop.Run`)."""

    tasks: dict[int, PartitionTask]
    consumer: Any
    forker: Any
    rescale: RescaleStore

    def each(self, tasks: Iterable[PartitionTask], action: Callable[[PartitionTask], object]) -> None: ...
    def with_redis(self, tasks: list[PartitionTask], fn: Callable[..., Any], *args: Any) -> Any: ...
    def take_ownership(self, tasks: list[PartitionTask], *, restore: bool = False) -> list[TopicPartition]: ...
    def new_task(self, partition_id: int) -> PartitionTask: ...
    def apply_forked(self, outcomes: list[Any]) -> None: ...
    def drop(self, task: PartitionTask) -> None: ...
    def adopt_tasks(self, tasks: list[PartitionTask], assignment: list[TopicPartition]) -> None: ...


@dataclass
class Request:
    kind: str  # release | add
    partitions: list[int]
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def wait(self, timeout_s: float) -> dict[str, Any]:
        if not self.done.wait(timeout_s):
            raise TimeoutError(f"{self.kind} {self.partitions} not served within {timeout_s} s")
        if self.error is not None:
            raise RuntimeError(self.error)
        return self.result


class Handoffs:
    """The requests waiting for the loop thread, and the added partitions waiting for their first commit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Request] = []
        self._first_commit: dict[int, tuple[int, int]] = {}  # partition → (committed offset at add, released_ms)

    def submit(self, kind: str, partitions: list[int]) -> Request:
        req = Request(kind, sorted(set(partitions)))
        with self._lock:
            self._queue.append(req)
        return req

    def serve(self, run: RunPort) -> None:
        """Loop thread, between commit cycles: every queued release, then every queued add as one.

        Adds queued together (a scale-down hands a survivor partitions from several workers)
        take ownership in parallel: served one by one, each would wait for the previous
        one's init_transactions. A worker never has a release and an add of one partition
        queued at once (the Coordinator applies one rescale at a time), so the order is free.
        """
        with self._lock:
            queue, self._queue = self._queue, []
        for req in [r for r in queue if r.kind == "release"]:
            self._serve([req], functools.partial(release, run, req.partitions))
        adds = [r for r in queue if r.kind == "add"]
        if adds:
            self._serve(adds, lambda: self._add(run, sorted({p for r in adds for p in r.partitions})))

    def _serve(self, reqs: list[Request], fn: Callable[[], dict[str, Any]]) -> None:
        t0 = time.monotonic()
        result: dict[str, Any] = {}
        error = None
        try:
            result = fn()
        except Exception as exc:  # the caller (the Coordinator) decides what follows
            error = f"{type(exc).__name__}: {exc}"[:500]
            logs.event(log, logging.WARNING, f"handoff_{reqs[0].kind}_failed", partitions=[r.partitions for r in reqs], error=error)
        for req in reqs:
            req.result, req.error = {**result, "seconds": round(time.monotonic() - t0, 3)}, error
            req.done.set()

    def cancel(self, reason: str) -> None:
        """The run ended: nobody will serve what is queued."""
        with self._lock:
            queue, self._queue = self._queue, []
        for req in queue:
            req.error = reason
            req.done.set()

    def _add(self, run: RunPort, partitions: list[int]) -> dict[str, Any]:
        new = [run.new_task(p) for p in partitions if p not in run.tasks]
        if not new:
            return {"added": {}}
        t0 = time.monotonic()
        run.take_ownership(new)  # in parallel; closes them all if one fails
        took = round(time.monotonic() - t0, 3)
        assignment: list[TopicPartition] = []
        added = {}
        try:
            for t in new:
                offset = run.with_redis([t], t.restore)
                replay = t.replay_until - offset
                logs.event(log, logging.WARNING if replay else logging.INFO, "handoff_added",
                           **t.ownership.ctx(checkpoint_offset=offset, committed_offset=t.committed_offset, replay=replay))
                assignment += t.assignment(offset)
                added[t.partition_id] = {"epoch": t.epoch, "committed_offset": t.committed_offset, "replay": replay}
        except BaseException:
            for t in new:
                t.close()
            raise
        run.adopt_tasks(new, assignment)
        for t in new:
            released_ms = _quiet(functools.partial(run.rescale.release_of, t.partition_id))
            if released_ms is not None:
                self._first_commit[t.partition_id] = (t.committed_offset, released_ms)
        return {"added": added, "ownership_s": took}

    def after_commits(self, run: RunPort) -> None:
        """After a commit cycle: an added partition's first commit ends its hand-off (pause recorded)."""
        if not self._first_commit:
            return
        now_ms = int(time.time() * 1000)
        for p, (k0, released_ms) in list(self._first_commit.items()):
            task = run.tasks.get(p)
            if task is None or task.committed_offset > k0:
                del self._first_commit[p]
            if task is not None and task.committed_offset > k0:
                pause_s = max(now_ms - released_ms, 0) / 1000
                _quiet(functools.partial(run.rescale.record_pause, p, pause_s))
                logs.event(log, logging.INFO, "handoff_done", **task.ownership.ctx(pause_s=pause_s))


def release(run: RunPort, partitions: list[int]) -> dict[str, Any]:
    """Commit, wait for checkpoint children, final checkpoint + status + lease release, record, drop."""
    tasks = [run.tasks[p] for p in partitions if p in run.tasks]
    run.each(tasks, PartitionTask.commit)
    released_ms = int(time.time() * 1000)  # nothing of these partitions is committed after this
    t0 = time.monotonic()
    if run.forker is not None:
        run.apply_forked(run.forker.poll(wait=True))
    forks_s = round(time.monotonic() - t0, 3)
    run.with_redis(tasks, run.each, tasks, PartitionTask.stop)
    out: dict[int, int] = {}
    for t in tasks:
        if run.tasks.get(t.partition_id) is not t:
            continue  # fenced meanwhile: the partition is someone else's already
        run.with_redis([t], run.rescale.record_release, t.partition_id, released_ms, t.ownership.owner, t.epoch,
                       t.committed_offset)
        out[t.partition_id] = t.committed_offset
        logs.event(log, logging.INFO, "handoff_released", **t.ownership.ctx(committed_offset=t.committed_offset,
                                                                           checkpoint_offset=t.checkpoints.offset))
        run.drop(t)
    return {"released": out, "not_held": sorted(set(partitions) - set(out)), "checkpoint_children_s": forks_s}


def _quiet(fn: Callable[[], Any]) -> Any:
    """A measurement only: Redis away must not fail the run for it."""
    try:
        return fn()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        logs.event(log, logging.WARNING, "handoff_measure_failed", error=type(exc).__name__)
        return None
