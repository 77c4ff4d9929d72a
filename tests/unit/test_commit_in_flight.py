"""A partition whose commit is in flight waits, with what was fetched for it; the others go on (`eos.inflight`)."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from streamlearn.eos.commit import CommitCadence, Verdict, commit_bound_s
from streamlearn.eos.inflight import Committer, InFlight
from streamlearn.runtime.intake import Backlog
from streamlearn.runtime.run_loop import Run, poll_wait


class Rec:
    def __init__(self, partition: int, offset: int) -> None:
        self._p, self._o = partition, offset

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def error(self) -> None:
        return None


class Consumer:
    def __init__(self, fetched: list[Rec]) -> None:
        self.fetched = fetched
        self.polls = 0

    def poll(self, timeout: float) -> Rec | None:
        self.polls += 1
        return self.fetched.pop(0) if self.fetched else None

    def consume(self, num_messages: int, timeout: float) -> list[Rec]:
        out, self.fetched = self.fetched, []
        return out


class Task:
    def __init__(self, p: int, in_flight: InFlight | None = None) -> None:
        self.partition_id, self.restores, self.in_flight = p, 0, in_flight
        self.processed: list[int] = []

    def process(self, records: list[Rec], until: float, defer_commit: bool = False) -> list[Rec]:
        self.processed += [r.offset() for r in records]
        return []


def run_with(tasks: dict[int, Task], consumer: Consumer) -> Any:
    return SimpleNamespace(tasks=tasks, backlog=Backlog(), consumer=consumer, topic="in",
                           cfg=SimpleNamespace(processing=SimpleNamespace(max_batch=100)),
                           _guarded=lambda task, fn, *args: fn(*args))


def test_the_partition_in_flight_keeps_its_records_and_the_others_are_processed() -> None:
    flight = InFlight(concurrent.futures.Future(), 3, time.perf_counter())
    tasks = {0: Task(0, flight), 1: Task(1)}
    run = run_with(tasks, Consumer([Rec(0, 3), Rec(1, 7), Rec(0, 4), Rec(1, 8)]))
    Run._poll_and_process(run, 0.0, time.monotonic() + 1)
    assert tasks[1].processed == [7, 8] and tasks[0].processed == []
    assert run.backlog.partitions() == {0}

    # The poll goes on while it is in flight: the others' records are processed, its own appended in order.
    run.consumer.fetched = [Rec(0, 5), Rec(1, 9)]
    Run._poll_and_process(run, 10.0, time.monotonic() + 1)
    assert tasks[1].processed == [7, 8, 9] and tasks[0].processed == [] and run.backlog.count() == 3

    # max_batch records held, all for the partition in flight: the loop waits for its commit instead of polling.
    run.cfg.processing.max_batch = 3
    polls = run.consumer.polls
    threading.Timer(0.05, flight.future.set_result, (Verdict.COMMITTED,)).start()
    Run._poll_and_process(run, 10.0, time.monotonic() + 1)
    assert flight.done() and run.consumer.polls == polls and tasks[0].processed == []

    # Applied (finish_commit clears in_flight): its held records are processed, in fetch order.
    tasks[0].in_flight = None
    Run._poll_and_process(run, 0.0, time.monotonic() + 1)
    assert tasks[0].processed == [3, 4, 5] and not run.backlog


def test_a_poll_after_a_restore_replaces_the_stale_records_held() -> None:
    backlog = Backlog()
    backlog.fill(Consumer([Rec(0, 3), Rec(0, 4), Rec(1, 7)]), 100, 0.0, {0: 0, 1: 0}, "in")
    backlog.fill(Consumer([Rec(0, 1), Rec(1, 8)]), 100, 0.0, {0: 1, 1: 0}, "in")  # partition 0 restored: read again from 1
    assert sorted((p, [r.offset() for r in recs]) for p, recs in backlog.take({0: 1, 1: 0})) == [(0, [1]), (1, [7, 8])]


def test_finish_commits_applies_only_the_commits_that_ended() -> None:
    ended: concurrent.futures.Future[Verdict] = concurrent.futures.Future()
    ended.set_result(Verdict.COMMITTED)
    running: concurrent.futures.Future[Verdict] = concurrent.futures.Future()
    applied: list[int] = []

    given_up: list[int] = []

    class Finishing(Task):
        overdue = False

        def finish_commit(self) -> bool:
            applied.append(self.partition_id)
            self.in_flight = None
            return True

        def overdue_commit(self, now: float) -> bool:
            return self.in_flight is not None and not self.in_flight.done() and self.overdue

        def give_up_commit(self) -> bool:
            given_up.append(self.partition_id)
            self.in_flight = None
            return False

    tasks = {0: Finishing(0, InFlight(ended, 1, 0.0)), 1: Finishing(1, InFlight(running, 1, 0.0)), 2: Finishing(2)}
    # Run.each calls PartitionTask's methods on each; the fake's own methods stand in for them.
    run: Any = SimpleNamespace(tasks=tasks, each=lambda ts, action: [getattr(t, action.__name__)() for t in list(ts)])
    assert Run._finish_commits(run) == 1 and applied == [0] and tasks[1].in_flight is not None and not given_up

    # Past its bound a commit still running is given up (REOWN), so the partition cannot wait for good.
    tasks[1].overdue = True
    assert Run._finish_commits(run) == 1 and given_up == [1] and tasks[1].in_flight is None


def test_the_commit_bound_is_every_attempt_of_both_calls_waited_out() -> None:
    # 5 attempts x (send_offsets + commit) x (the call's 10 s timeout + the 5 s grace of `bounded`)
    assert commit_bound_s(10_000) == 150.0
    assert commit_bound_s(900_000) == 5 * 2 * (30 + 5)  # a call's timeout is capped at TXN_TIMEOUT_S


def test_a_committer_runs_the_commit_off_the_calling_thread() -> None:
    committer, seen = Committer(), []

    def commit() -> Verdict:
        seen.append(threading.current_thread().name)
        return Verdict.COMMITTED

    flight = committer.start(commit, 9)
    assert flight.future.result(5) is Verdict.COMMITTED and flight.next_offset == 9
    assert seen and seen[0] != threading.current_thread().name and seen[0].startswith("txn-commit")
    committer.close()


def test_the_real_overdue_check_and_give_up_reown_the_partition() -> None:
    # PartitionTask's own methods (not a fake's): overdue only while still running past its bound;
    # giving up marks the producer stuck (never flushed or called again) and concludes REOWN.
    from streamlearn.eos.task import PartitionTask

    running: concurrent.futures.Future[Verdict] = concurrent.futures.Future()
    ended: concurrent.futures.Future[Verdict] = concurrent.futures.Future()
    ended.set_result(Verdict.COMMITTED)
    concluded: list[tuple[Verdict, int]] = []

    def conclude(verdict: Verdict, next_offset: int, t0: float) -> bool:
        concluded.append((verdict, next_offset))
        return False

    task: Any = SimpleNamespace(
        in_flight=InFlight(running, 42, 100.0), commit_bound_s=160.0,
        ownership=SimpleNamespace(calls=SimpleNamespace(stuck=False), ctx=lambda **kw: {"partition": 3, **kw}),
        _conclude=conclude)
    assert not PartitionTask.overdue_commit(task, 100.0 + 159.0)
    assert PartitionTask.overdue_commit(task, 100.0 + 161.0)
    settled: Any = SimpleNamespace(in_flight=InFlight(ended, 42, 100.0), commit_bound_s=160.0)
    idle: Any = SimpleNamespace(in_flight=None, commit_bound_s=160.0)
    assert not PartitionTask.overdue_commit(settled, 1e9)
    assert not PartitionTask.overdue_commit(idle, 1e9)

    assert PartitionTask.give_up_commit(task) is False
    assert concluded == [(Verdict.REOWN, 42)] and task.ownership.calls.stuck and task.in_flight is None


def test_a_partition_in_flight_past_its_deadline_does_not_make_the_poll_wait_zero() -> None:
    """Its deadline cannot be acted on before its commit lands: counting it spun the loop (empty turns)."""
    cadence = CommitCadence([0, 1], 0.1, 100, now=0.0)  # deadlines 0.05 and 0.1
    flight = InFlight(concurrent.futures.Future(), 3, time.perf_counter())
    tasks: Any = {0: Task(0, flight), 1: Task(1)}
    assert poll_wait(cadence, tasks, 0.05, now=0.08) == pytest.approx(0.02)  # partition 1's deadline, not 0
    tasks[1].in_flight = flight
    assert poll_wait(cadence, tasks, 0.05, now=0.08) == 0.05  # all in flight: the poll's own bound
    tasks[0].in_flight = tasks[1].in_flight = None
    assert poll_wait(cadence, tasks, 0.05, now=0.08) == 0.0  # partition 0 is due: no wait
