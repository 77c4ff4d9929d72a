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
