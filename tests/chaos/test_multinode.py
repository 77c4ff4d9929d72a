"""streamlearn on a real multi-node Ray cluster (Ray's own harness): spread, node loss, joining.

The cluster is `tests/chaos/ray_cluster.py`: a head with num_cpus=0 and two
worker nodes, all on 127.0.0.1, token authentication on. The driver is the
real CLI, `streamlearn run --ray-address 127.0.0.1:PORT`, in a subprocess.
Nodes are told apart by the process tree (each worker process is a child of
its node's raylet), not by anything the engine reports.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_lib

from connectors.proctree import alive
from connectors.rescale_store import RescaleStore
from tests.chaos.checker import I4Sampler, caught_up, finish, scenario_store
from tests.chaos.harness import PARTITIONS, PRODUCE_S, STREAMLEARN, ChaosEnv, Scenario, wait_for
from tests.chaos.multinode import RayTestCluster, Timeline, start_on_cluster

DONE_TIMEOUT_S = 600


@pytest.fixture
def ray_cluster() -> Iterator[RayTestCluster]:
    cluster = RayTestCluster(worker_nodes=2).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def owner_pids(sc: Scenario) -> dict[int, int]:
    """partition → pid of the worker that last published its status (the owner's process)."""
    r = redis_lib.Redis.from_url(sc.env.redis_url)
    out = {}
    for p in range(PARTITIONS):
        pid = r.hget(f"streamlearn:{sc.app}:{sc.topic}:{p}:status", "pid")
        if pid is not None:
            out[p] = int(pid)
    return out


def nodes_of_partitions(sc: Scenario, cluster: RayTestCluster) -> dict[int, int]:
    """partition → node index of its owner, for owners alive on a node of the cluster."""
    out = {}
    for p, pid in owner_pids(sc).items():
        node = cluster.node_of(pid)
        if node is not None:
            out[p] = node
    return out


def _first_half_committed_and_spread(sc: Scenario, cluster: RayTestCluster, recs: list[Any]) -> dict[int, int]:
    """Produce and commit the first half of the input; partition → node of its owner, over more than one node.

    The fault comes only after this, and the second half only after the fault: every moved
    partition then has input its new owner must commit, whatever the machine's speed. (With
    the whole input produced up front, a fast run had committed everything before the fault
    and the moved partitions never committed again: "no commit seen after the kill".)
    """
    half = len(recs) // 2
    sc.produce(recs[:half], over_s=PRODUCE_S / 2)
    wait_for(lambda: caught_up(sc, half), DONE_TIMEOUT_S, "the first half of the input committed")
    spread: dict[int, int] = wait_for(lambda: (lambda m: m if len(m) == PARTITIONS and len(set(m.values())) > 1 else None)(
        nodes_of_partitions(sc, cluster)), 120, "partitions owned on more than one node")
    return spread


def test_node_sigkill_moves_partitions_to_surviving_nodes(chaos_env: ChaosEnv, ray_cluster: RayTestCluster) -> None:
    # Two standbys on two worker nodes: placement (runtime/placement.py) puts them on different
    # nodes, so whichever node dies, a started standby survives it and takes the moved partitions.
    sc = Scenario(chaos_env, "node-kill", processing={"standby_workers": 2})
    recs = sc.events()
    with I4Sampler(sc) as i4:
        d = start_on_cluster(sc, ray_cluster)
        # Partitions owned by workers on more than one node (placement spreads the owners).
        spread = _first_half_committed_and_spread(sc, ray_cluster, recs)
        # The Coordinator lives on the head, so losing a worker node cannot take it down.
        coordinators = ray_cluster.processes("ray::Coordinator")
        assert set(coordinators.values()) == {0}, f"Coordinator not on the head: {coordinators}"
        victim = max(set(spread.values()), key=lambda n: sum(1 for v in spread.values() if v == n))
        moved = sorted(p for p, n in spread.items() if n == victim)
        standbys = wait_for(lambda: (lambda s: s if len(s) == 2 else None)(ray_cluster.idle_workers(set(owner_pids(sc).values()))), 120, "two standbys started")
        assert len(set(standbys.values())) == 2, f"standbys not on different nodes: {standbys}"
        survivor_standby = next(pid for pid, n in standbys.items() if n != victim)
        timeline = Timeline(sc, moved)
        killed_at = ray_cluster.kill_node(victim)
        timeline.armed(killed_at)
        producer = sc.produce_in_background(recs[len(recs) // 2:], over_s=PRODUCE_S / 2)
        wait_for(lambda: (lambda m: m if set(m) >= set(moved) and victim not in m.values() else None)(
            nodes_of_partitions(sc, ray_cluster)), 180, f"partitions {moved} owned on the surviving nodes")
        producer.join()
        wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, "all input committed after the node loss")
        moves = timeline.stop()
        to_first_commit = moves.first_commit
        dead_at = ray_cluster.declared_dead_at()
        after = nodes_of_partitions(sc, ray_cluster)
        owners_after = owner_pids(sc)
        sc.stop(d)
    assert set(to_first_commit) == set(moved), f"no commit seen after the kill for {set(moved) - set(to_first_commit)}"
    # The surviving standby took them (not a worker Ray restarted, nor a fresh one).
    assert {owners_after[p] for p in moved} == {survivor_standby}, f"moved {moved} to {owners_after}, standbys were {standbys}"
    finish(sc, i4, "SIGKILL of a whole worker node (every process, Ray's remove_node without grace)", 1,
           moved=moved, nodes_before=spread, nodes_after=after, standbys_before=standbys,
           kill_to_declared_dead_s=round(dead_at - killed_at, 2) if dead_at else None,
           kill_to_ownership_s={p: round(s, 2) for p, s in moves.ownership.items()},
           kill_to_first_commit_s={p: round(s, 2) for p, s in to_first_commit.items()})


def test_hung_node_is_fenced_when_it_wakes(chaos_env: ChaosEnv, ray_cluster: RayTestCluster) -> None:
    """SIGSTOP a whole worker node (raylet and every process under it), then SIGCONT it.

    Two outcomes are legitimate, and the test says which one it saw: the GCS
    health checks declare the stopped node dead (its actors die, the Coordinator
    moves their partitions at once), or they do not and the leases expire (the
    Coordinator replaces workers that answer no ping). Either way the partitions
    are owned again on the surviving node while the node hangs; and when it wakes,
    its workers must not commit anything: they exit (a raylet declared dead shuts
    down with its workers) or they find themselves fenced and retire. What must
    hold in both: the moved partitions stay with their new owners, no woken worker
    process is left, and I1 (no duplicate, no loss), I2, I4.
    """
    sc = Scenario(chaos_env, "node-hang")
    r = redis_lib.Redis.from_url(chaos_env.redis_url)
    recs = sc.events()
    with I4Sampler(sc) as i4:
        d = start_on_cluster(sc, ray_cluster)
        spread = _first_half_committed_and_spread(sc, ray_cluster, recs)
        victim = max(set(spread.values()), key=lambda n: sum(1 for v in spread.values() if v == n))
        moved = sorted(p for p, n in spread.items() if n == victim)
        hung_parts: dict[int, list[int]] = {}  # owner pid on the hung node → its partitions (idle standbys aside)
        for p, pid in owner_pids(sc).items():
            if p in moved:
                hung_parts.setdefault(pid, []).append(p)
        epochs = {p: int(r.get(f"streamlearn:{sc.app}:{sc.topic}:{p}:epoch") or 0) for p in moved}
        frozen = ray_cluster.freeze_node(victim)
        try:
            producer = sc.produce_in_background(recs[len(recs) // 2:], over_s=PRODUCE_S / 2)
            survivors = {n for n in ray_cluster.nodes if n != victim}

            def moved_on() -> bool:
                owners = owner_pids(sc)
                return all(int(r.get(f"streamlearn:{sc.app}:{sc.topic}:{p}:epoch") or 0) > epochs[p]
                           and ray_cluster.node_of(owners.get(p, 0)) in survivors for p in moved)

            wait_for(moved_on, 180, f"partitions {moved} of the hung node {victim} owned on the surviving nodes")
        finally:
            ray_cluster.thaw(frozen)
        def fenced_or_gone() -> bool:
            """Each woken owner has exited, or logged the loss of every partition it held (fenced)."""
            lines = d.log().splitlines()
            return all(not alive(pid) or all(any(f"pid={pid})" in ln and f"ownership_lost topic={sc.topic} partition={p} " in ln
                                                 for ln in lines) for p in parts) for pid, parts in hung_parts.items())

        # Woken, no worker of the hung node may keep a partition: killed with its node, or fenced.
        wait_for(fenced_or_gone, 180, f"the hung node's workers {hung_parts} to be fenced or gone")
        producer.join()
        wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, "all input committed after the node woke")
        owners_after = owner_pids(sc)
        sc.stop(d)
    raylet_exited = not alive(frozen[0])  # what the GCS decided: a raylet declared dead shuts down when it wakes
    if raylet_exited:
        # A worker of a node declared dead used to outlive its raylet (reparented to init), fenced and
        # idle, for minutes; it now exits by itself once its raylet is gone (runtime/orphan_watch.py).
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not any(alive(pid) for pid in hung_parts), 60, "the woken workers of the dead node to exit")
    lingering = [pid for pid in hung_parts if alive(pid)]
    for pid in lingering:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    log = d.log()
    fenced = sorted({p for pid, parts in hung_parts.items() for p in parts
                     if any(f"pid={pid})" in ln and f"ownership_lost topic={sc.topic} partition={p} " in ln for ln in log.splitlines())})
    finish(sc, i4, "SIGSTOP of a whole worker node (raylet and every process under it) until its partitions move, then SIGCONT", 1,
           moved=moved, nodes_before=spread, hung_workers=sorted(hung_parts), fenced_partitions=fenced,
           raylet_exited_after_wake=raylet_exited, woken_workers_lingering=len(lingering))
    assert not (raylet_exited and lingering), f"workers {lingering} of the dead node outlived their raylet"
    # No woken worker took a moved partition back (its status would name a process of the hung node).
    assert all(ray_cluster.node_of(owners_after[p]) != victim for p in moved), f"owners after the wake: {owners_after}"


def _run_cli(args: list[str], env: dict[str, str], hang_guard_s: float = 180) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it; hang_guard_s only stops a hung test, it measures nothing."""
    return subprocess.run([str(STREAMLEARN), *args], env=env, capture_output=True, text=True, timeout=hang_guard_s)


@pytest.mark.extended(reason="a driver without the token is refused in the default tier by tests/integration/test_ray_security.py")
def test_wrong_token_fails_with_one_line(chaos_env: ChaosEnv, ray_cluster: RayTestCluster) -> None:
    sc = Scenario(chaos_env, "bad-token")
    env = sc.cli_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="not-the-token")
    res = _run_cli(["run", "-c", str(sc.config_path), "--no-metrics", "--ray-address", ray_cluster.address], env)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    assert f"Ray cluster at {ray_cluster.address} cannot be joined: authentication refused" in res.stderr, res.stderr[-2000:]
    assert "hint: set RAY_AUTH_TOKEN" in res.stderr
    assert ray_cluster.token not in res.stderr + res.stdout


def test_unreachable_address_fails_with_one_line(chaos_env: ChaosEnv) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        addr = f"127.0.0.1:{s.getsockname()[1]}"
        sc = Scenario(chaos_env, "no-cluster")
        res = _run_cli(["run", "-c", str(sc.config_path), "--no-metrics", "--ray-address", addr], sc.cli_env())
    assert res.returncode != 0
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("streamlearn:")]
    assert len(lines) == 1 and f"Ray cluster at {addr} cannot be joined" in lines[0], res.stderr[-2000:]



def test_coordinator_killed_restarts_on_the_head_and_moves_nothing(chaos_env: ChaosEnv, ray_cluster: RayTestCluster) -> None:
    sc = Scenario(chaos_env, "coordinator-kill")
    r = redis_lib.Redis.from_url(chaos_env.redis_url)
    recs = sc.events()

    def epochs() -> dict[int, int]:
        return {p: int(r.get(f"streamlearn:{sc.app}:{sc.topic}:{p}:epoch") or 0) for p in range(PARTITIONS)}

    with I4Sampler(sc) as i4:
        d = start_on_cluster(sc, ray_cluster)
        producer = sc.produce_in_background(recs)
        wait_for(lambda: caught_up(sc, len(recs) // 4), DONE_TIMEOUT_S, "a quarter of the input committed")
        owners = wait_for(lambda: (lambda m: m if len(m) == PARTITIONS else None)(owner_pids(sc)), 60, "an owner per partition")
        before = epochs()
        assert all(before.values()), f"every partition has been owned: {before}"
        (coordinator, node), = ray_cluster.processes("ray::Coordinator").items()
        os.kill(coordinator, signal.SIGKILL)
        restarted = wait_for(lambda: {p: n for p, n in ray_cluster.processes("ray::Coordinator").items() if p != coordinator},
                             120, "the Coordinator to be restarted")
        wait_for(lambda: "coordinator_restarted_adopted" in d.log(), 120, "the restarted Coordinator to adopt the workers")
        producer.join()
        wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, "all input committed after the Coordinator restart")
        after = epochs()
        owners_after = owner_pids(sc)
        sc.stop(d)
    assert node == 0 and set(restarted.values()) == {0}, f"Coordinator not on the head: before {node}, after {restarted}"
    # Healthy partitions did not move: same owner process, no new epoch (no take-over happened).
    assert after == before, f"epochs changed across the Coordinator restart: {before} -> {after}"
    assert owners_after == owners, f"owners changed: {owners} -> {owners_after}"
    finish(sc, i4, "SIGKILL of the Coordinator (restarted by Ray on the head, adopts the running workers)", 1)


class Load(threading.Thread):
    """Events produced in half-second chunks at `rate`/s until stopped: the stream flows through every rescale."""

    def __init__(self, sc: Scenario, records: list[tuple[int, bytes | None, bytes | None]], rate: float) -> None:
        super().__init__(daemon=True)
        self.sc, self.records, self.chunk = sc, records, int(rate / 2)
        self.stop, self.sent = threading.Event(), 0

    def run(self) -> None:
        while not self.stop.is_set() and self.sent < len(self.records):
            self.sent += self.sc.produce(self.records[self.sent:self.sent + self.chunk], over_s=0.5)


@pytest.mark.extended(reason="the hand-off guarantees (I1, I2, epochs) are checked in the default tier by tests/integration/test_live_rescale.py on local Ray")
def test_live_rescale_spreads_over_nodes_and_back(chaos_env: ChaosEnv, ray_cluster: RayTestCluster) -> None:
    """`streamlearn scale` 1 → 3 → 1 under load, the app on the multi-node cluster.

    The real CLI for `run --ray-address` and for every `scale` (which reaches the
    Coordinator on the head through Redis only). After each scale: the partitions
    have exactly N distinct lease owners, and N owner processes; scaled up, these
    run on both worker nodes. Unmoved partitions keep their epoch, moved ones are
    taken once (epoch + 1). Then a graceful stop, I1, I2, I4.
    """
    sc = Scenario(chaos_env, "mn-rescale", processing={"workers": 1, "standby_workers": 1})
    store = scenario_store(sc)
    rescale = RescaleStore(store)
    load = Load(sc, sc.events(20_000), rate=100.0)

    def epochs() -> dict[int, int]:
        return {p: store.current_epoch(p) for p in range(PARTITIONS)}

    def owned_by(n: int) -> dict[int, int] | None:
        """partition → node of its owner, once every partition has a lease, n owners hold them and
        n processes (on cluster nodes) publish their status."""
        leases = {store.lease(p)[0] for p in range(PARTITIONS)}
        if None in leases or len({o.split("@", 1)[0] for o in leases if o}) != n:
            return None
        nodes, pids = nodes_of_partitions(sc, ray_cluster), set(owner_pids(sc).values())
        return nodes if len(nodes) == PARTITIONS and len(pids) == n else None

    def scale(n: int) -> list[int]:
        """`streamlearn scale --workers n` while events flow; the partitions it moved."""
        before, sent = epochs(), load.sent
        res = _run_cli(["scale", "-c", str(sc.config_path), "--workers", str(n), "--timeout", "300"], sc.cli_env(), 360)
        assert res.returncode == 0 and f"scaled to {n} worker(s)" in res.stdout, res.stdout + res.stderr[-3000:]
        assert load.sent > sent and load.is_alive(), "no events produced during the rescale: not under load"
        state = rescale.state()
        assert state["phase"] == "applied" and state["workers"] == n, state
        moved = sorted(m["partition"] for m in state["moved"])
        after = epochs()
        assert all(after[p] == before[p] + (p in moved) for p in before), (before, after, moved)
        return moved

    with I4Sampler(sc) as i4:
        d = start_on_cluster(sc, ray_cluster)
        load.start()
        try:
            wait_for(lambda: caught_up(sc, 200), DONE_TIMEOUT_S, "the first events committed")
            wait_for(lambda: owned_by(1), 120, "every partition owned by the one worker")
            moved_up = scale(3)
            nodes_up = wait_for(lambda: owned_by(3), 120, "3 distinct owners after scaling up")
            assert len(set(nodes_up.values())) > 1, f"3 owners on one node: {nodes_up}"
            moved_down = scale(1)
            nodes_down = wait_for(lambda: owned_by(1), 120, "1 owner after scaling down")
        finally:
            load.stop.set()
            load.join(60)
        wait_for(lambda: caught_up(sc, sc.produced), DONE_TIMEOUT_S, "all input committed after the rescales")
        # Every moved partition committed again under its new owner: each hand-off counted once.
        wait_for(lambda: rescale.handoffs()["count"] == len(moved_up) + len(moved_down), 60, "every hand-off recorded")
        sc.stop(d)
    assert len(moved_up) == 2 and len(moved_down) == 2, (moved_up, moved_down)  # 4 partitions: 4/0/0 → 2/1/1 → 4
    finish(sc, i4, "live rescale 1 → 3 → 1 workers under load (streamlearn scale) on the multi-node cluster", 2,
           moved_up=moved_up, moved_down=moved_down, nodes_after_up=nodes_up, nodes_after_down=nodes_down,
           pauses_s=[round(x["pause_s"], 3) for x in rescale.pauses()])
