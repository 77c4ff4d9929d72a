"""A live rescale carried out against the fake `ray_api` of test_supervisor: order of calls, roster, failures."""

from __future__ import annotations

from typing import Any

from ray.exceptions import ActorDiedError

from streamlearn.runtime import scaler
from streamlearn.runtime.ray_api import Outcome
from tests.unit.test_supervisor import Actor, FakeRay, Harness, Ref, failed


class HandoffRay(FakeRay):
    """Every release/add answers at once (or fails for the workers listed); pings say the run is running."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: dict[tuple[str, str], Outcome] = {}

    def call(self, handle: Actor, method: str, *args: Any) -> Ref:
        if method == "ping" and handle.ping_reply is not None:
            handle.ping_reply = {**handle.ping_reply, "phase": "running"}
        ref = super().call(handle, method, *args)
        if method in ("release", "add"):
            parts = list(args[0])
            ok = Outcome(value={"released": {p: 10 for p in parts}} if method == "release" else {"added": {}})
            self.done[ref] = self.failing.get((handle.wid, method), ok)
        return ref

    def order(self) -> list[tuple[str, str, list[int]]]:
        return [(r.method, r.actor.wid, list(r.args[0])) for r in self.calls if r.method in ("release", "add", "run")]


def harness(workers: int, partitions: int = 4) -> Harness:
    h = Harness.__new__(Harness)
    Harness.__init__(h, partitions=partitions, workers=workers, standby=1)
    ray = HandoffRay()
    ray.calls, ray.done = h.ray.calls, h.ray.done
    h.ray = h.sup.ray = ray
    return h


def scale(h: Harness, n: int) -> dict[str, Any]:
    return scaler.scale(h.sup, list(range(4)), n, "test", lambda _msg: None)


def test_scale_up_starts_empty_runs_then_releases_before_adding() -> None:
    h = harness(1)
    out = scale(h, 3)
    assert out["workers"] == 3 and h.view()["assignment"] == {"w0": [0, 1], "w1": [2], "w2": [3]}
    order = [c for c in h.ray.order() if c != ("run", "w0", [0, 1, 2, 3])]
    assert order[:2] == [("run", "w1", []), ("run", "w2", [])]  # the standby first, then a new actor
    assert order[2] == ("release", "w0", [2, 3])
    assert sorted(order[3:]) == [("add", "w1", [2]), ("add", "w2", [3])]
    assert h.view()["standby"] == ["w3"] and h.ray.killed == []


def test_scale_down_releases_everything_then_kills_the_removed() -> None:
    h = harness(3)
    assert h.view()["assignment"] == {"w0": [0, 3], "w1": [1], "w2": [2]}
    out = scale(h, 1)
    assert h.view()["assignment"] == {"w0": [0, 1, 2, 3]} and sorted(out["removed"]) == ["w1", "w2"]
    order = h.ray.order()[3:]
    assert sorted(order[:2]) == [("release", "w1", [1]), ("release", "w2", [2])]
    assert sorted(order[2:]) == [("add", "w0", [1]), ("add", "w0", [2])]
    assert sorted(w for w, _ in h.ray.killed) == ["w1", "w2"] and "w1" not in h.sup.roster.workers
    assert h.view()["standby"] == ["w3"]  # the standby count is kept


def test_same_count_touches_nothing() -> None:
    h = harness(2)
    before = list(h.ray.calls)
    scale(h, 2)
    assert [c for c in h.ray.calls if c not in before and c.method != "ping"] == []


def test_a_failed_release_still_hands_over_and_counts_a_recovery() -> None:
    h = harness(3)
    h.ray.failing[("w2", "release")] = failed(ActorDiedError())
    scale(h, 1)
    assert ("add", "w0", [2]) in h.ray.order() and (2, "recoveries") in h.counted
    assert h.view()["assignment"] == {"w0": [0, 1, 2, 3]}


def test_a_failed_add_gives_the_partitions_to_a_standby() -> None:
    h = harness(1)
    h.ray.failing[("w2", "add")] = failed(ActorDiedError())
    scale(h, 3)
    assignment = h.view()["assignment"]
    assert 3 not in assignment["w2"] and any(ps == [3] for wid, ps in assignment.items() if wid not in ("w0", "w1", "w2"))


class SlowHandoff(HandoffRay):
    """A release (or add) that is not done at the first look; meanwhile `dies`'s run fails (its process is gone)."""

    def __init__(self, h: Harness, dies: str, method: str = "release") -> None:
        super().__init__()
        self.calls, self.done, self.failing = h.ray.calls, h.ray.done, getattr(h.ray, "failing", {})
        self.dies, self.method, self.looked = dies, method, False
        h.ray = h.sup.ray = self

    def ready(self, refs: list[Any]) -> list[Any]:
        slow = next((r for r in refs if r.method == self.method), None)
        if slow is not None and not self.looked:
            self.looked = True
            run = next(r for r in reversed(self.calls) if r.method == "run" and r.actor.wid == self.dies)
            self.done[run] = failed(ActorDiedError())
            return [r for r in super().ready(refs) if r is not slow]
        return super().ready(refs)


def test_a_worker_dying_during_a_rescale_is_replaced_before_the_rescale_ends() -> None:
    h = harness(3)
    assert h.view()["assignment"] == {"w0": [0, 3], "w1": [1], "w2": [2]}
    SlowHandoff(h, dies="w0")  # w0 keeps its partitions in this rescale: a bystander
    scale(h, 2)
    order = h.ray.order()
    # The standby took w0's partitions while w2's release was awaited, before the hand-off's add.
    assert order.index(("run", "w3", [0, 3])) < order.index(("add", "w1", [2])), order
    assert h.view()["assignment"] == {"w1": [1, 2], "w3": [0, 3]}
    assert "w0" not in h.sup.roster.workers and h.view()["standby"] == ["w4"]


def test_an_add_to_a_worker_that_died_meanwhile_is_not_handed_out_twice() -> None:
    h = harness(1)
    h.ray.failing[("w2", "add")] = failed(ActorDiedError())
    SlowHandoff(h, dies="w2", method="add")  # w2 dies while its add is awaited: the supervision re-homes p3
    runs_before = len(h.ray.order())
    scale(h, 3)
    # The failed add then finds p3 handed on already: one new run holds it, not two.
    new_runs = [c for c in h.ray.order()[runs_before:] if c[0] == "run" and 3 in c[2]]
    assert len(new_runs) == 1, h.ray.order()
    assert sum(ps.count(3) for ps in h.view()["assignment"].values()) == 1
