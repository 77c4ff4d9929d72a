"""A due checkpoint round waits for the children still writing, so split rounds meet again.

`Run._dispatch_checkpoints` with fake tasks and a fake forker (no fork, no broker): what is
under test is only the decision which partitions go into the next child, and when. The
real-broker side is `tests/integration/test_checkpoint_rounds.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamlearn.runtime.checkpoint_rounds import CHECKPOINT_JOIN_SHARE
from streamlearn.runtime.run_loop import Run

EVERY_S = 0.5


@dataclass
class FakeTask:
    partition_id: int
    started: float  # when its last checkpoint's state was taken

    def checkpoint_due(self, now: float, share: float = 1.0) -> bool:
        return now - self.started >= EVERY_S * share

    def checkpoint_near(self, now: float, share: float) -> bool:
        return self.checkpoint_due(now, share)

    def checkpoint_snapshot(self) -> int:
        return self.partition_id


@dataclass
class FakeForker:
    in_flight: set[int] = field(default_factory=set)
    children: list[list[int]] = field(default_factory=list)

    def poll(self) -> list[Any]:
        return []

    def take_inline(self, partition_id: int) -> bool:
        return False

    def start(self, snapshots: list[int]) -> None:
        self.children.append(sorted(snapshots))


def make_run(started: dict[int, float], in_flight: set[int]) -> tuple[Run, FakeForker]:
    run = object.__new__(Run)
    forker = FakeForker(in_flight=set(in_flight))
    run.forker = forker  # type: ignore[assignment]
    run.tasks = {p: FakeTask(p, t) for p, t in started.items()}  # type: ignore[misc]
    run._commit_together = lambda tasks: None  # type: ignore[method-assign]  # the fakes have no open batch
    return run, forker


def test_a_due_round_waits_while_another_partitions_child_is_still_writing() -> None:
    # Partition 0 is due; 1-3 were snapshotted 0.3 s ago (stale `started`: their child has not landed).
    run, forker = make_run({0: 0.0, 1: -0.5, 2: -0.5, 3: -0.5}, in_flight={1, 2, 3})
    assert run._dispatch_checkpoints(0.55) == []
    assert forker.children == [] and run.round_waiting  # the loop asks again next turn, commits or not


def test_the_waiting_round_goes_when_the_child_lands_without_another_commit() -> None:
    # An idle stream: no partition commits again, so only the loop's next turns can end the wait.
    run, forker = make_run({0: 0.0, 1: -0.5, 2: -0.5, 3: -0.5}, in_flight={1, 2, 3})
    run._dispatch_checkpoints(0.55)
    forker.in_flight.clear()
    for t in (1, 2, 3):
        run.tasks[t].started = 0.25  # their child landed: each counts from its snapshot
    assert run._dispatch_checkpoints(0.56) == [] and not run.round_waiting
    assert forker.children == [[0, 1, 2, 3]]


def test_once_the_child_landed_its_partitions_join_the_waiting_round() -> None:
    run, forker = make_run({0: 0.0, 1: 0.25, 2: 0.25, 3: 0.25}, in_flight=set())
    assert run._dispatch_checkpoints(0.6) == []
    assert forker.children == [[0, 1, 2, 3]]


def test_the_wait_ends_at_the_join_share_past_due() -> None:
    # A child that never seems to land (hung until its timeout) must not hold the others' checkpoints back.
    late = EVERY_S * (1 + CHECKPOINT_JOIN_SHARE)
    run, forker = make_run({0: 0.0, 1: -0.5, 2: -0.5, 3: -0.5}, in_flight={1, 2, 3})
    assert run._dispatch_checkpoints(late) == []
    assert forker.children == [[0]]


def test_a_child_of_a_partition_no_longer_owned_is_not_waited_for() -> None:
    run, forker = make_run({0: 0.0}, in_flight={7})
    run._dispatch_checkpoints(0.55)
    assert forker.children == [[0]]


def test_without_a_child_in_flight_the_round_goes_at_once_and_far_partitions_stay_out() -> None:
    run, forker = make_run({0: 0.0, 1: 0.4}, in_flight=set())
    run._dispatch_checkpoints(0.55)
    assert forker.children == [[0]]  # 1 is 0.15 s into its 0.5 s: under the join share
