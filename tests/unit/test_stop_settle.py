"""A graceful stop waits for takeovers in flight before it stops the workers (runtime/stop_settle.py)."""

from __future__ import annotations

from typing import Any

from streamlearn.runtime import stop_settle


def test_a_partition_counts_as_held_only_when_its_owner_runs_it() -> None:
    replies: dict[str, dict[str, Any] | None] = {
        "running": {"phase": "running", "partitions": [0, 2]},
        "restoring": {"phase": "restoring", "partitions": [1]},
        "down": None,
    }
    owners = [([0, 2], True, "running"), ([1], True, "restoring"), ([3], True, "down"), ([4], False, "running"), ([], False, "down")]
    assert stop_settle.unsettled(owners, lambda h, _t: replies[h]) == [1, 3, 4]


def test_waits_until_the_moved_partitions_run_then_returns_nothing() -> None:
    looks = {"n": 0}

    def snapshot() -> list[tuple[list[int], bool, Any]]:
        looks["n"] += 1
        return [([0, 1], looks["n"] >= 3, "standby")]  # the standby's run starts at the third look

    out = stop_settle.wait_for_owners(snapshot, lambda _h, _t: {"phase": "running", "partitions": [0, 1]}, settle_s=30)
    assert out == [] and looks["n"] == 3


def test_gives_up_at_its_deadline_and_names_what_is_still_in_transit() -> None:
    now = {"t": 0.0}

    def clock() -> float:
        now["t"] += 1.0
        return now["t"]

    out = stop_settle.wait_for_owners(lambda: [([2], False, "w")], lambda _h, _t: None, settle_s=5, clock=clock)
    assert out == [2]
