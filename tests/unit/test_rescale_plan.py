"""The live-rescale plan: balanced, fewest moves, untouched partitions stay put."""

from __future__ import annotations

import itertools
import random

import pytest

from streamlearn.runtime.rescale import NEW_PREFIX, plan


def _check(current: dict[str, list[int]], parts: list[int], n: int) -> None:
    p = plan(current, parts, n)
    k = min(n, len(parts))
    sizes = [len(v) for v in p.target.values()]
    assert len(p.target) == k and max(sizes) - min(sizes) <= 1
    assert sorted(x for v in p.target.values() for x in v) == sorted(parts)  # each partition exactly once
    moved = {m.partition for m in p.moves}
    for wid, ps in p.target.items():
        for x in ps:
            # A partition that did not move is where it was; one that moved was somewhere else (or nowhere).
            assert (x in moved) != (x in current.get(wid, []))
    # The lower bound: surplus of kept workers + everything of removed ones + unowned.
    owned = {x for v in current.values() for x in v}
    kept_surplus = sum(max(len(current[w]) - len(p.target[w]), 0) for w in current if w in p.target)
    lower = kept_surplus + sum(len(current[w]) for w in p.removed) + len(set(parts) - owned)
    assert len(p.moves) == lower


def test_scale_up_one_to_three_moves_only_what_the_new_workers_get() -> None:
    p = plan({"w0": [0, 1, 2, 3]}, [0, 1, 2, 3], 3)
    assert p.removed == [] and p.added == [f"{NEW_PREFIX}0", f"{NEW_PREFIX}1"]
    assert p.target["w0"] == [0, 1]
    assert sorted((m.partition, m.source) for m in p.moves) == [(2, "w0"), (3, "w0")]
    assert {m.target for m in p.moves} == set(p.added)


def test_scale_down_three_to_one_keeps_the_fullest_worker() -> None:
    p = plan({"w0": [0, 1], "w1": [2], "w2": [3]}, [0, 1, 2, 3], 1)
    assert p.target == {"w0": [0, 1, 2, 3]}
    assert sorted(p.removed) == ["w1", "w2"]
    assert p.incoming("w0") == [2, 3] and p.outgoing("w1") == [2] and p.outgoing("w2") == [3]


def test_same_count_moves_nothing() -> None:
    p = plan({"w0": [0, 2], "w1": [1, 3]}, [0, 1, 2, 3], 2)
    assert p.moves == [] and p.removed == [] and p.added == []


def test_more_workers_than_partitions_is_capped() -> None:
    p = plan({"w0": [0, 1]}, [0, 1], 5)
    assert len(p.target) == 2 and len(p.moves) == 1


def test_unowned_partitions_are_assigned() -> None:
    p = plan({"w0": [0, 1]}, [0, 1, 2], 1)
    assert p.target == {"w0": [0, 1, 2]} and [(m.partition, m.source) for m in p.moves] == [(2, None)]


def test_scale_down_removes_the_emptiest_then_newest() -> None:
    p = plan({"w0": [0], "w1": [1], "w3": [2, 3]}, [0, 1, 2, 3], 2)
    assert p.removed == ["w1"]  # w0 and w1 hold one each; w1 is newer


def test_zero_workers_refused() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        plan({"w0": [0]}, [0], 0)


def test_random_assignments_are_balanced_and_minimal() -> None:
    rng = random.Random(7)
    for _ in range(300):
        parts = list(range(rng.randint(1, 12)))
        owners = rng.randint(1, 5)
        current: dict[str, list[int]] = {f"w{i}": [] for i in range(owners)}
        for x in parts:
            if rng.random() < 0.95:
                current[f"w{rng.randrange(owners)}"].append(x)
        current = {w: ps for w, ps in current.items() if ps}
        _check(current, parts, rng.randint(1, 8))


@pytest.mark.parametrize(("start", "n"), list(itertools.product([1, 2, 3, 4], [1, 2, 3, 4])))
def test_round_robin_starts(start: int, n: int) -> None:
    current = {f"w{i}": [p for p in range(8) if p % start == i] for i in range(start)}
    _check(current, list(range(8)), n)
