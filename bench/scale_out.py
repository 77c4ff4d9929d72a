"""Scale-out measurements on the multi-node test cluster: node-loss timeline, throughput per worker count.

    .venv/bin/python -m bench.scale_out --node-loss 3 --throughput 1,2,4

Uses the same cluster as the multi-node chaos tests (`tests/chaos/ray_cluster.py`:
Ray's `Cluster`, a head with num_cpus=0 and two worker nodes on 127.0.0.1,
token auth, node-death detection set on the head) and the running Kafka and
Redis (`streamlearn services up`; `KAFKA_BOOTSTRAP` / `REDIS_URL` override).
Every simulated node shares this machine's cores: the numbers say what the
cluster path costs, not what more machines would add.

- node loss: stream events, SIGKILL the worker node owning the most
  partitions; per moved partition, seconds from the kill to the GCS declaring
  the node dead, to the new owner's epoch (ownership), and to its first commit.
  I1 is checked on every run.
- throughput: a backlog of events is processed with W workers; events/s from
  the first committed offset to the last (start-up excluded).

Raw JSON goes to bench/results/raw/scale_out-<time>.json; docs/scale-out.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.chaos.checker import audit, caught_up, committed_offsets
from tests.chaos.harness import PARTITIONS, Scenario, wait_for
from tests.chaos.multinode import RayTestCluster, Timeline, start_on_cluster

RAW = Path(__file__).parent / "results" / "raw"


def _env(root: Path) -> Any:
    """A ChaosEnv-shaped view of the running services (the harness reads only these fields)."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    return SimpleNamespace(bootstrap=bootstrap, redis_url=redis_url, root=root, checkpoint_secret="cs-" + secrets.token_hex(8))


def node_loss(env: Any, cluster: RayTestCluster, events: int, standby: int) -> dict[str, Any]:
    sc = Scenario(env, "bench-node-loss", n_events=events, processing={"standby_workers": standby})
    recs = sc.events()
    d = start_on_cluster(sc, cluster)
    # The second half is produced only after the kill (as tests/chaos/test_multinode.py does): with
    # everything produced up front, a slow start let the owners commit all of a partition before
    # the kill, and its new owner had nothing left to commit (no first commit to measure).
    half = len(recs) // 2
    producer = sc.produce_in_background(recs[:half], over_s=10)
    wait_for(lambda: caught_up(sc, len(recs) // 4), 600, "a quarter committed")
    r_pids = _owner_nodes(sc, cluster)
    victim = max(set(r_pids.values()), key=lambda n: sum(1 for v in r_pids.values() if v == n))
    moved = sorted(p for p, n in r_pids.items() if n == victim)
    standbys = cluster.idle_workers(_owner_pids(sc))  # may miss one still starting: recorded as seen
    timeline = Timeline(sc, moved)
    killed_at = cluster.kill_node(victim)
    timeline.armed(killed_at)
    producer.join()
    producer = sc.produce_in_background(recs[half:], over_s=10)
    producer.join()
    wait_for(lambda: caught_up(sc, len(recs)), 600, "all committed")
    moves = timeline.stop()
    dead_at = cluster.declared_dead_at()
    sc.stop(d)
    v = audit(sc)
    return {"moved": moved, "standby_workers": standby, "victim": victim, "standby_nodes": sorted(standbys.values()),
            "standby_survived": any(n != victim for n in standbys.values()), "detected_s": round(dead_at - killed_at, 3) if dead_at else None,
            "ownership_s": {p: round(t, 3) for p, t in moves.ownership.items()},
            "first_commit_s": {p: round(t, 3) for p, t in moves.first_commit.items()},
            "lost": len(v.i1.missing), "duplicated": len(v.i1.duplicated), "i1_ok": v.i1.ok}


def _owner_pids(sc: Scenario) -> set[int]:
    import redis as redis_lib

    r = redis_lib.Redis.from_url(sc.env.redis_url)
    pids = (r.hget(f"streamlearn:{sc.app}:{sc.topic}:{p}:status", "pid") for p in range(PARTITIONS))
    return {int(pid) for pid in pids if pid is not None}


def _owner_nodes(sc: Scenario, cluster: RayTestCluster) -> dict[int, int]:
    import redis as redis_lib

    r = redis_lib.Redis.from_url(sc.env.redis_url)

    def owners() -> dict[int, int] | None:
        out = {}
        for p in range(PARTITIONS):
            pid = r.hget(f"streamlearn:{sc.app}:{sc.topic}:{p}:status", "pid")
            node = cluster.node_of(int(pid)) if pid is not None else None
            if node is not None:
                out[p] = node
        return out if len(out) == PARTITIONS else None

    return dict(wait_for(owners, 120, "an owner on the cluster for every partition"))


def throughput(env: Any, cluster: RayTestCluster, workers: int, events: int) -> dict[str, Any]:
    sc = Scenario(env, f"bench-tput-{workers}", n_events=events, processing={"workers": workers})
    sc.produce(sc.events())
    d = start_on_cluster(sc, cluster)
    wait_for(lambda: sum(v or 0 for v in committed_offsets(sc).values()) > 0, 600, "a first commit", every_s=0.05)
    t0, c0 = time.monotonic(), sum(v or 0 for v in committed_offsets(sc).values())
    wait_for(lambda: caught_up(sc, events), 900, "the backlog committed", every_s=0.1)
    elapsed = time.monotonic() - t0
    sc.stop(d)
    eps = (events - c0) / elapsed
    return {"workers": workers, "events": events, "measured_events": events - c0, "seconds": round(elapsed, 2),
            "events_per_s": round(eps, 1), "events_per_s_per_worker": round(eps / workers, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--node-loss", type=int, default=3, help="node-loss runs (a fresh cluster each)")
    ap.add_argument("--throughput", default="1,2,4", help="worker counts to measure ('' for none)")
    ap.add_argument("--events", type=int, default=8000)
    ap.add_argument("--standby", type=int, default=1, help="processing.standby_workers of the node-loss runs")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sl-scale-out-"))
    env = _env(root)
    out: dict[str, Any] = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
                           "load_avg_at_start": os.getloadavg(), "node_loss": [], "throughput": []}
    for _ in range(args.node_loss):
        cluster = RayTestCluster(worker_nodes=2).start()
        try:
            out["node_loss"].append(node_loss(env, cluster, args.events, args.standby))
        finally:
            cluster.stop()
        print(json.dumps(out["node_loss"][-1]), flush=True)
    counts = [int(x) for x in args.throughput.split(",") if x]
    if counts:
        cluster = RayTestCluster(worker_nodes=2).start()
        try:
            for w in counts:
                out["throughput"].append(throughput(env, cluster, w, args.events * 2))
                print(json.dumps(out["throughput"][-1]), flush=True)
        finally:
            cluster.stop()
    firsts = [t for run in out["node_loss"] for t in run["first_commit_s"].values()]
    if firsts:
        out["first_commit_s_summary"] = {"n": len(firsts), "median": round(statistics.median(firsts), 2), "max": round(max(firsts), 2)}
    RAW.mkdir(parents=True, exist_ok=True)
    path = RAW / f"scale_out-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
