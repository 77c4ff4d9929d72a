"""Each worker's Ray node: learned from pings without blocking (runtime/nodes.py), shown by status.

The fake of `ray_api` is the one the Supervisor tests use; a ping is answered
at once unless the test holds it back (a hung worker).
"""

from __future__ import annotations

from typing import Any

from streamlearn.ops.cli import _node_text
from streamlearn.ops.status import worker_nodes
from streamlearn.runtime.nodes import REFRESH_S, NodeMap
from streamlearn.runtime.roster import Roster
from tests.unit.test_supervisor import Actor, Clock, FakeRay, Ref


class HoldingRay(FakeRay):
    """Pings of workers in `hung` never answer."""

    def __init__(self) -> None:
        super().__init__()
        self.hung: set[str] = set()

    def call(self, handle: Actor, method: str, *args: Any) -> Ref:
        ref = super().call(handle, method, *args)
        if handle.wid in self.hung:
            self.done.pop(ref, None)
        return ref


def actor(wid: str, node: str) -> Actor:
    a = Actor(wid)
    a.ping_reply = {"pid": 1, "loop_age_s": 0.0, "node_id": f"id-{node}", "node_ip": f"10.0.0.{node}"}
    return a


def test_nodes_from_pings_refreshed_and_forgotten() -> None:
    ray, clock = HoldingRay(), Clock()
    nodes = NodeMap(ray, clock)
    handles = {"w0": actor("w0", "1"), "w1": actor("w1", "2")}
    nodes.tick(handles)  # asks
    assert nodes.view(["w0", "w1"]) == {"w0": {}, "w1": {}}
    nodes.tick(handles)  # reads the answers
    assert nodes.view(["w0", "w1"]) == {"w0": {"node_id": "id-1", "node_ip": "10.0.0.1"},
                                        "w1": {"node_id": "id-2", "node_ip": "10.0.0.2"}}
    pings = sum(1 for r in ray.calls if r.method == "ping")
    nodes.tick(handles)
    assert sum(1 for r in ray.calls if r.method == "ping") == pings  # not before REFRESH_S
    # Ray restarted w1 on another node: the next refresh shows it.
    handles["w1"].ping_reply = {**handles["w1"].ping_reply, "node_id": "id-3", "node_ip": "10.0.0.3"}  # type: ignore[dict-item]
    clock.now += REFRESH_S
    nodes.tick(handles)
    nodes.tick(handles)
    assert nodes.view(["w1"]) == {"w1": {"node_id": "id-3", "node_ip": "10.0.0.3"}}
    del handles["w0"]  # dropped from the roster
    nodes.tick(handles)
    assert "w0" not in nodes._known


def test_a_hung_worker_gets_one_ping_in_flight_and_blocks_nothing() -> None:
    ray, clock = HoldingRay(), Clock()
    ray.hung.add("w0")
    nodes = NodeMap(ray, clock)
    handles = {"w0": actor("w0", "1"), "w1": actor("w1", "2")}
    for _ in range(5):
        nodes.tick(handles)
        clock.now += REFRESH_S
    assert sum(1 for r in ray.calls if r.method == "ping" and r.actor.wid == "w0") == 1
    assert sum(1 for r in ray.calls if r.method == "ping" and r.actor.wid == "w1") == 5
    assert nodes.view(["w0", "w1"]) == {"w0": {}, "w1": {"node_id": "id-2", "node_ip": "10.0.0.2"}}


def test_outside_ray_a_ping_has_no_node() -> None:
    ray, clock = HoldingRay(), Clock()
    nodes = NodeMap(ray, clock)
    handles = {"w0": Actor("w0")}  # its reply carries no node (a worker driven in-process)
    nodes.tick(handles)
    nodes.tick(handles)
    assert nodes.view(["w0"]) == {"w0": {}}


def test_roster_view_keeps_its_fields() -> None:
    # workers() adds "nodes"; the roster's own view must stay exactly what it was.
    assert set(Roster().view()) == {"assignment", "standby", "zombies", "worker_restarts", "replacements"}


def test_status_groups_partitions_by_worker_with_its_node() -> None:
    rows = [
        {"partition": 0, "worker": "w0", "node_id": "abc", "node_ip": "10.0.0.1"},
        {"partition": 1, "worker": "w1", "node_id": "def", "node_ip": "10.0.0.2"},
        {"partition": 2, "worker": "w0", "node_id": "abc", "node_ip": "10.0.0.1"},
        {"partition": 3, "worker": None, "node_id": None, "node_ip": None},  # unowned
    ]
    assert worker_nodes(rows) == {"w0": {"node_id": "abc", "node_ip": "10.0.0.1", "partitions": [0, 2]},
                                  "w1": {"node_id": "def", "node_ip": "10.0.0.2", "partitions": [1]}}
    assert _node_text({"node_id": "0123456789abcdef", "node_ip": "10.0.0.1"}) == "10.0.0.1 (0123456789ab)"
    assert _node_text({"node_id": None, "node_ip": None}) == "-"
