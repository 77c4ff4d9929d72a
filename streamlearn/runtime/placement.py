"""Which Ray node a new worker should run on, and which standby takes a lost worker's partitions.

Why not leave it all to Ray's `SPREAD`: SPREAD balances actors, not risk. With
two nodes, two owners and one standby, it puts the standby next to an owner,
and when that node dies the standby dies with it: the partitions then wait
for Ray to start a new worker process (about 10 s measured, docs/scale-out.md)
instead of moving to a started standby (about 2 s). So on a cluster of two or
more nodes with CPUs, each new worker is pinned (softly) to the node that
holds the fewest owned partitions, then the fewest workers:

- a standby lands on a node with no owner when there is one, otherwise on the
  least loaded one, and several standbys land on different nodes;
- owners started together (at start, or by a rescale) spread over the nodes;
- a node where a worker was just lost is avoided for `SUSPECT_S`: before the
  GCS declares a dead node dead it still lists it as alive.

The pin is `NodeAffinitySchedulingStrategy(soft=True)` (`ray_api.spawn`): if
the node is gone or full, Ray places the worker elsewhere, so a pin never
delays a start. On a single node (a local instance) nothing is pinned: `SPREAD`
as before.

When a worker is lost, the standby chosen is the oldest one on another node
than the lost worker's: one on the same node may be dying with it.

Node knowledge: what each worker's ping said (`NodeMap`, refreshed every few
seconds) or else the node it was pinned to. Pure logic apart from the two
callables it is given, so every rule is unit-tested.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from streamlearn.runtime.roster import Worker

SUSPECT_S = 30.0  # a node where a worker was lost is not chosen for this long (unless nothing else is left)


def choose_node(nodes: list[str], where: dict[str, str], owned: dict[str, int], avoid: Iterable[str] = ()) -> str | None:
    """The node for a new worker: fewest owned partitions, then fewest workers, then the order given.

    nodes: alive nodes with CPUs; where: worker id → node; owned: worker id → partitions it owns.
    None (no pin) on fewer than two nodes.
    """
    if len(nodes) < 2:
        return None
    avoided = set(avoid)
    candidates = [n for n in nodes if n not in avoided] or list(nodes)
    load = {n: [0, 0] for n in candidates}
    for wid, node in where.items():
        if node in load:
            load[node][0] += owned.get(wid, 0)
            load[node][1] += 1
    return min(candidates, key=lambda n: (load[n][0], load[n][1], candidates.index(n)))


def pick_spare(standbys: list[Worker], node_of: Callable[[str], str | None], lost_node: str | None) -> Worker | None:
    """The oldest standby not on `lost_node` (a standby there may be dying too); else the oldest."""
    if not standbys:
        return None
    if lost_node is not None:
        for w in standbys:
            if node_of(w.wid) != lost_node:
                return w
    return standbys[0]


class Placement:
    """The Coordinator's memory of where workers are, and the choices above made with it."""

    def __init__(self, nodes: Callable[[], list[str]], pinged: Callable[[str], str | None], clock: Callable[[], float]) -> None:
        self.nodes, self.pinged, self.clock = nodes, pinged, clock
        self.pinned: dict[str, str] = {}  # worker id → the node it was pinned to at spawn
        self._suspect: dict[str, float] = {}  # node → until when it is avoided

    def node_of(self, wid: str) -> str | None:
        return self.pinged(wid) or self.pinned.get(wid)

    def node_for_new(self, wid: str, workers: Iterable[Worker]) -> str | None:
        """Where worker `wid` (about to be spawned) should run; remembered as its pin."""
        now = self.clock()
        self._suspect = {n: t for n, t in self._suspect.items() if t > now}
        known = [w for w in workers if w.wid != wid]
        where = {w.wid: n for w in known if (n := self.node_of(w.wid)) is not None}
        try:
            nodes = self.nodes()
        except Exception:  # the GCS is slow to answer: Ray places the worker (SPREAD) rather than no worker
            nodes = []
        node = choose_node(nodes, where, {w.wid: len(w.partitions) for w in known}, avoid=self._suspect)
        if node is not None:
            self.pinned[wid] = node
        return node

    def spare_after_loss(self, lost: str, standbys: list[Worker]) -> Worker | None:
        """The standby to take the partitions of `lost` (dead or hung); its node becomes suspect."""
        lost_node = self.node_of(lost)
        if lost_node is not None:
            self._suspect[lost_node] = self.clock() + SUSPECT_S
        return pick_spare(standbys, self.node_of, lost_node)

    def forget(self, live: Iterable[str]) -> None:
        """Drop the pins of workers no longer in the roster."""
        keep = set(live)
        self.pinned = {wid: n for wid, n in self.pinned.items() if wid in keep}

    def view(self) -> dict[str, Any]:
        return {"pinned": dict(self.pinned), "suspect_nodes": sorted(self._suspect)}
