"""The recovery benchmark kills a partition owner, not whichever process used the most CPU."""

from __future__ import annotations

from bench.kill_target import pick_owner


def test_kills_rotate_over_the_partitions_owners() -> None:
    owners = {0: 10, 1: 10, 2: 20, 3: 20}
    assert [pick_owner(owners, {10, 20, 30}, k, 4) for k in range(4)] == [10, 10, 20, 20]


def test_a_dead_or_foreign_pid_is_skipped_for_the_next_partitions_owner() -> None:
    # 10 died (Ray restarts it as a new process); 99 is not a worker of this run.
    owners = {0: 10, 1: 99, 2: 20}
    assert pick_owner(owners, {20, 30}, 0, 4) == 20


def test_no_live_owner_gives_none_so_the_caller_falls_back() -> None:
    assert pick_owner({0: 10}, {30}, 0, 4) is None
    assert pick_owner({}, {30}, 0, 4) is None
