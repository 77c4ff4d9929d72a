"""Step 4 for several partitions: common deadlines, overlapping commits, verdicts acted on by the loop's thread."""

from __future__ import annotations

import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from streamlearn.config import AppConfig
from streamlearn.eos.commit import CommitCadence
from streamlearn.eos.task import PartitionTask
from streamlearn.runtime.commit_round import CommitRound
from streamlearn.state.checkpoint import ModelState


class MeetingProducer:
    """commit_transaction waits at a barrier: it only returns if the other partitions' commits run at the same time."""

    def __init__(self, barrier: threading.Barrier, fail: KafkaError | None = None) -> None:
        self.barrier, self.fail = barrier, fail
        self.committed_on: str | None = None

    def send_offsets_to_transaction(self, offsets: Any, meta: Any, timeout: float) -> None:
        pass

    def commit_transaction(self, timeout: float) -> None:
        self.barrier.wait()  # BrokenBarrierError (not a Kafka error) when commits run one after another
        self.committed_on = threading.current_thread().name
        if self.fail is not None:
            raise KafkaException(self.fail)

    def poll(self, timeout: float) -> int:
        return 0


class Consumer:
    def consumer_group_metadata(self) -> object:
        return object()


def open_task(p: int, producer: MeetingProducer) -> PartitionTask:
    task = PartitionTask(AppConfig(), None, Consumer(), p, "w0", b"k", None, True, 1)  # type: ignore[arg-type]
    task.ownership.producer = producer  # type: ignore[assignment]
    task.state = ModelState(None, None, offset=100 + p, model_version=0, events=0)
    task.batch.transaction = True
    task.batch.records = 10
    return task


def guarded(task: PartitionTask, fn: Any, *args: Any) -> Any:
    return fn(*args)


def test_partitions_commit_together_and_each_moves_its_committed_offset() -> None:
    barrier = threading.Barrier(3, timeout=10)
    producers = [MeetingProducer(barrier) for _ in range(3)]
    tasks = [open_task(p, producers[p]) for p in range(3)]
    rnd = CommitRound(parallel=True)
    try:
        rnd.commit(tasks, guarded, lambda t: True)
    finally:
        rnd.close()
    assert [t.committed_offset for t in tasks] == [100, 101, 102]
    assert not any(t.batch.open for t in tasks)
    assert all(p.committed_on is not None and p.committed_on.startswith("commit") for p in producers)


def test_a_failed_commit_is_recovered_on_the_loop_thread_and_the_others_still_commit() -> None:
    barrier = threading.Barrier(2, timeout=10)
    abort = KafkaError(KafkaError._INCONSISTENT, "failed delivery", txn_requires_abort=True)
    tasks = [open_task(0, MeetingProducer(barrier, fail=abort)), open_task(1, MeetingProducer(barrier))]
    recovered_on: list[str] = []
    tasks[0].recover = lambda *, fatal: recovered_on.append(threading.current_thread().name)  # type: ignore[method-assign]
    rnd = CommitRound(parallel=True)
    try:
        rnd.commit(tasks, guarded, lambda t: True)
    finally:
        rnd.close()
    assert recovered_on == [threading.current_thread().name]
    assert tasks[0].committed_offset == 0 and tasks[1].committed_offset == 101


def test_sequential_round_for_a_shared_producer() -> None:
    """at_least_once: one producer for every partition, so no overlap (the barrier of one never waits)."""
    tasks = [open_task(p, MeetingProducer(threading.Barrier(1))) for p in range(2)]
    tasks[1].ownership.producer = tasks[0].ownership.producer
    CommitRound(parallel=False).commit(tasks, guarded, lambda t: t.partition_id == 0)
    assert tasks[0].committed_offset == 100 and tasks[1].committed_offset == 0  # a task no longer owned is skipped


def test_deadlines_are_common_and_keep_their_phase() -> None:
    c = CommitCadence([0, 1, 2, 3], interval_s=0.1, max_batch=1000, now=10.0)
    records = {p: 5 for p in range(4)}
    assert c.due(records, 10.05) == []
    assert c.due(records, 10.1) == [0, 1, 2, 3]
    assert abs(c.soonest(range(4)) - 10.2) < 1e-9
    # A full batch commits early on its own; it skips to the deadline after the next, in phase.
    assert c.due({**records, 2: 1000}, 10.15) == [2]
    assert c.due(records, 10.2) == [0, 1, 3]
    # A late loop: the next deadline is the first common one after now, not now + interval.
    assert c.due(records, 10.37) == [0, 1, 2, 3]
    assert abs(c.soonest([0]) - 10.4) < 1e-9
    # A partition handed over mid-run joins at the next common deadline.
    assert c.due({**records, 7: 1}, 10.38) == []
    assert abs(c.soonest([7]) - 10.4) < 1e-9
