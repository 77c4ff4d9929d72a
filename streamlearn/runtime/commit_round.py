"""Committing several partitions' transactions at once (exactly_once).

Each partition has its own transactional producer, and a commit is mostly a
wait on the broker (offsets into the transaction, then EndTxn: a few round
trips). One after another, a worker with n partitions waited n of those per
commit interval with its only loop thread idle, which is throughput the
partitions never got back. librdkafka releases the GIL while it waits, so in
threads n commits cost about one wait.

Only the broker half runs in the threads (`PartitionTask.end_batch`: the
task's own producer and delivery reports, nothing shared but the consumer's
group metadata, which librdkafka reads under its own lock). Every thread is
waited for before any verdict is acted on, and the verdicts are then acted
on (`PartitionTask.settle`) on the loop's thread in partition order, as a
sequential commit would: halts, restores (seeks on the shared consumer),
Redis pauses and dropped tasks never run concurrently, and a task that
raises cannot leave another's commit running behind the run's cleanup.
at_least_once shares one producer and writes offsets through the Redis pause,
so it keeps committing one partition after another.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from streamlearn.eos.commit import Verdict
from streamlearn.eos.task import PartitionTask

Guarded = Callable[..., Any]  # Run._guarded: (task, fn, *args) with ownership loss turned into a dropped task


class CommitRound:
    """Commits a list of partitions: in parallel threads when each has its own transactional producer."""

    def __init__(self, parallel: bool) -> None:
        self.parallel = parallel
        self._pool: ThreadPoolExecutor | None = None

    def commit(self, tasks: list[PartitionTask], guarded: Guarded, owned: Callable[[PartitionTask], bool]) -> None:
        ending = [t for t in tasks if t.batch.open]
        if not self.parallel or len(ending) <= 1:
            for t in tasks:
                if owned(t):
                    guarded(t, t.commit)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="commit")  # threads start as needed
        futures = [(t, self._pool.submit(t.end_batch)) for t in ending]
        wait([f for _, f in futures])
        for t, fut in futures:
            if owned(t):
                guarded(t, _settle, t, fut)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _settle(task: PartitionTask, fut: Future[tuple[Verdict, int, float]]) -> bool:
    return task.settle(fut.result())  # the thread's exception, if any, is raised here, on the loop's thread
