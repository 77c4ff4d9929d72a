"""Standbys away from the owners' nodes, and the surviving standby first (`runtime/placement.py`).

The Supervisor is driven through the same fake Ray as tests/unit/test_supervisor.py;
spawning goes through a `Placement` fed with a fake list of nodes, so the test
sees which node each worker was pinned to and which standby a node's loss picks.
"""

from __future__ import annotations

from typing import Any

from ray.exceptions import ActorUnavailableError

from streamlearn.runtime.placement import SUSPECT_S, Placement, choose_node, pick_spare
from streamlearn.runtime.roster import Worker
from streamlearn.runtime.supervisor import Supervisor
from tests.unit.test_supervisor import LEASE_S, Actor, Clock, FakeRay, failed


def test_single_node_pins_nothing() -> None:
    assert choose_node(["A"], {"w0": "A"}, {"w0": 2}) is None
    assert choose_node([], {}, {}) is None


def test_new_worker_goes_to_the_node_with_fewest_owned_partitions_then_fewest_workers() -> None:
    where = {"w0": "A", "w1": "B", "w2": "C"}
    assert choose_node(["A", "B", "C"], where, {"w0": 2, "w1": 2, "w2": 0}) == "C"  # no owner there
    assert choose_node(["A", "B"], {"w0": "A", "w1": "B", "w2": "A"}, {"w0": 2, "w1": 2}) == "B"  # A has a standby already
    assert choose_node(["A", "B"], {"w0": "A"}, {"w0": 0}) == "B"  # owners started together spread


def test_suspect_nodes_are_avoided_unless_nothing_else_is_left() -> None:
    assert choose_node(["A", "B"], {"w1": "B"}, {"w1": 4}, avoid=["A"]) == "B"
    assert choose_node(["A", "B"], {}, {}, avoid=["A", "B"]) == "A"


def test_pick_spare_skips_a_standby_on_the_lost_workers_node() -> None:
    s1, s2 = Worker("w2", None), Worker("w3", None)
    nodes = {"w2": "A", "w3": "B"}
    assert pick_spare([s1, s2], nodes.get, "A") is s2
    assert pick_spare([s1, s2], nodes.get, "B") is s1
    assert pick_spare([s1], nodes.get, "A") is s1  # the only one: better than none
    assert pick_spare([s1, s2], nodes.get, None) is s1
    assert pick_spare([], nodes.get, "A") is None


class Cluster:
    """A Supervisor whose spawns are placed on fake nodes; pings are not needed (the pins count)."""

    def __init__(self, nodes: list[str], workers: int, standby: int, partitions: int = 4) -> None:
        self.nodes, self.clock, self.ray = list(nodes), Clock(), FakeRay()
        self.placement = Placement(lambda: list(self.nodes), lambda _wid: None, self.clock)
        self.sup = Supervisor(self.ray, self.spawn, lambda _p: None, lambda _p, _n: None,
                              lease_s=LEASE_S, standby_workers=standby, clock=self.clock, placement=self.placement)
        self.sup.start(list(range(partitions)), workers)

    def spawn(self, wid: str) -> Any:
        self.placement.node_for_new(wid, self.sup.roster.workers.values())
        return Actor(wid)

    def node(self, wid: str) -> str | None:
        return self.placement.node_of(wid)

    def kill_node(self, node: str) -> None:
        """Every run on the node fails (Ray restarting the actors elsewhere), in roster order."""
        self.nodes.remove(node)
        for w in list(self.sup.roster.workers.values()):
            if w.run is not None and self.node(w.wid) == node:
                self.ray.done[w.run] = failed(ActorUnavailableError("The actor is temporarily unavailable", None))
        self.sup.check_runs()


def test_owners_spread_and_the_standby_goes_to_the_node_without_owners() -> None:
    c = Cluster(["A", "B", "C"], workers=2, standby=1)
    assert {c.node("w0"), c.node("w1")} == {"A", "B"}
    assert c.node("w2") == "C"


def test_two_standbys_on_two_nodes_sit_on_different_nodes() -> None:
    c = Cluster(["A", "B"], workers=2, standby=2)
    assert {c.node("w0"), c.node("w1")} == {"A", "B"}
    assert {c.node("w2"), c.node("w3")} == {"A", "B"}


def test_node_loss_moves_partitions_to_the_standby_on_the_surviving_node() -> None:
    c = Cluster(["A", "B"], workers=2, standby=2)
    on_a = next(w for w in ("w0", "w1") if c.node(w) == "A")
    on_b = next(w for w in ("w0", "w1") if c.node(w) == "B")
    parts_a = list(c.sup.roster.workers[on_a].partitions)
    spare_b = next(w for w in ("w2", "w3") if c.node(w) == "B")
    c.kill_node("A")
    assignment = c.sup.roster.view()["assignment"]
    assert assignment[spare_b] == parts_a, assignment  # the standby on B, not the older one dying on A
    assert on_b in assignment and on_a not in assignment


def test_replacements_after_a_loss_avoid_the_lost_node_for_a_while() -> None:
    c = Cluster(["A", "B"], workers=2, standby=1)
    standby = c.sup.roster.standby()[0]
    owner_elsewhere = next(w for w in ("w0", "w1") if c.node(w) != c.node(standby.wid))
    lost_node = c.node(owner_elsewhere)
    c.sup.spare_after_loss(c.sup.roster.workers[owner_elsewhere])
    assert c.placement.node_for_new("w9", c.sup.roster.workers.values()) != lost_node
    c.clock.now += SUSPECT_S + 1
    c.placement.node_for_new("w10", c.sup.roster.workers.values())
    assert c.placement.view()["suspect_nodes"] == []
