"""Which partitions go into the next forked checkpoint child, and when (a checkpoint round).

A child's fixed cost (the fork, its copy-on-write faults, tearing down its copy of the address
space) is about the whole 5 % budget of a checkpoint a second (bench/results/raw/ckpt-profile-s27/);
with staggered commits every partition used to find its own turn, about two children a second for
four partitions. So when one partition is due, the others at least CHECKPOINT_JOIN_SHARE of the way
there commit now and join it: one child writes them all, and since each partition's schedule counts
from the checkpoint just taken, the next round is due for all at once.

A partition whose child is still writing cannot join, and a child can outlive half an interval (the
fork and exit of a large worker on a busy machine: 0.3-1.0 s measured for a process with 6 GB
resident beside two busy cores, bench/results/raw/ckpt-rounds-s31/). Rounds once split then stayed
split: each group was due while the other's child was in flight. So a due round waits for the
children in flight to land, and their partitions, close to due by then, join it; it waits at most
CHECKPOINT_JOIN_SHARE of an interval past due.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

#: How far to its own checkpoint (a share of `processing.checkpoint_every_s` or `_events`) a partition
#: must be to join another partition's checkpoint round; also how long past due a round waits.
CHECKPOINT_JOIN_SHARE = 0.5


class Member(Protocol):
    partition_id: int

    def checkpoint_due(self, now: float, share: float = 1.0) -> bool: ...

    def checkpoint_near(self, now: float, share: float) -> bool: ...


T = TypeVar("T", bound=Member)


@dataclass(frozen=True)
class Round(Generic[T]):
    due: list[T]  # due now, no child of theirs in flight
    joining: list[T]  # close to due: to commit now, then checkpointed with the due ones if due by the share
    waiting: bool  # the round waits for a child in flight of an owned partition (nothing starts now)


def plan(tasks: Sequence[T], in_flight: Collection[int], now: float) -> Round[T]:
    """The round due now among `tasks` (a worker's owned partitions)."""
    free = [t for t in tasks if t.checkpoint_due(now) and t.partition_id not in in_flight]
    owned_in_flight = any(t.partition_id in in_flight for t in tasks)
    if not free:
        return Round([], [], False)
    if owned_in_flight and not any(t.checkpoint_due(now, 1 + CHECKPOINT_JOIN_SHARE) for t in free):
        return Round([], [], True)
    joining = [t for t in tasks if t not in free and t.partition_id not in in_flight
               and t.checkpoint_near(now, CHECKPOINT_JOIN_SHARE)]
    return Round(free, joining, False)
