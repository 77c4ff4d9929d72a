"""A restarted Coordinator keeps the owners it finds and hands out only what nobody owns."""

from __future__ import annotations

from typing import Any

from streamlearn.runtime import adoption
from streamlearn.runtime.roster import Role
from streamlearn.runtime.supervisor import Supervisor
from tests.unit.test_supervisor import LEASE_S, Actor, Clock, FakeRay


def test_plan_keeps_owners_makes_standbys_and_finds_orphans() -> None:
    got = adoption.plan([0, 1, 2, 3, 4], {
        "w0": {"partitions": [0, 2]}, "w1": {"partitions": []}, "w3": None, "w4": {"partitions": [1]},
    })
    assert got.owners == {"w0": [0, 2], "w4": [1]}
    assert got.standby == ["w1"] and got.unreachable == ["w3"] and got.orphans == [3, 4]


def test_plan_gives_a_double_claim_to_the_later_worker() -> None:
    # Ids compare as numbers: w10 was started after w2 (although "w10" < "w2" as text).
    got = adoption.plan([0, 1], {"w2": {"partitions": [0, 1]}, "w10": {"partitions": [0]}})
    assert got.owners == {"w2": [1], "w10": [0]} and got.orphans == []


class Adopting:
    def __init__(self, found: dict[str, list[int] | None], partitions: int = 4, standby: int = 1) -> None:
        self.ray = FakeRay()
        self.counted: list[tuple[int, str]] = []
        self.sup = Supervisor(self.ray, Actor, lambda p: None, lambda p, name: self.counted.append((p, name)),
                              lease_s=LEASE_S, standby_workers=standby, clock=Clock())
        self.actors = {}
        for wid, parts in found.items():
            a = Actor(wid)
            a.ping_reply = None if parts is None else {"pid": 1, "loop_age_s": 0.1, "partitions": parts}
            self.actors[wid] = a
        self.result = self.sup.adopt(list(range(partitions)), dict(self.actors))

    def calls(self, method: str) -> list[tuple[str, list[Any]]]:
        return [(r.actor.wid, list(r.args[0]) if r.args else []) for r in self.ray.calls if r.method == method]


def test_healthy_owners_keep_their_partitions_and_nothing_is_relaunched() -> None:
    h = Adopting({"w0": [0, 2], "w1": [1, 3], "w2": []})
    assert h.result == {"w0": [0, 2], "w1": [1, 3], "w2": []}
    assert h.calls("run") == []  # no hand-off: the runs in flight go on
    assert sorted(w for w, _ in h.calls("join_run")) == ["w0", "w1"]
    assert h.sup.roster.view()["standby"] == ["w2"] and h.counted == [] and h.ray.killed == []


def test_orphans_go_to_the_standby_and_a_new_standby_is_started_with_a_fresh_id() -> None:
    h = Adopting({"w0": [0, 2], "w5": []})
    assert h.calls("run") == [("w5", [1, 3])]
    assert h.sup.roster.workers["w5"].role is Role.OWNER
    assert h.sup.roster.view()["standby"] == ["w6"]  # after the highest id found, never a clash
    assert sorted(p for p, name in h.counted if name == "recoveries") == [1, 3]


def test_a_worker_that_does_not_answer_is_killed_and_its_partitions_handed_out() -> None:
    h = Adopting({"w0": [0, 1], "w1": None})
    assert ("w1", False) in h.ray.killed and "w1" not in h.sup.roster.workers
    assert h.calls("run") == [("w2", [2, 3])]
