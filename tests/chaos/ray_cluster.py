"""A multi-node Ray cluster on this machine, built with Ray's own harness, in a process of its own.

`ray.cluster_utils.Cluster` (what Ray's multi-node tests use): a head with
`num_cpus=0` (it runs the Coordinator, never a worker) and worker nodes with
CPUs of their own. Every node listens on loopback only
(`node_ip_address=127.0.0.1`) and requires a Ray token (`RAY_AUTH_MODE=token`).
The head carries the node-death detection settings, because a driver joining
with `ray.init(address=...)` may not set `_system_config`.

Why a separate process (`python -m tests.chaos.ray_cluster`): the cluster's
token and Ray's global state stay out of the pytest process, whose other
tests start local Ray instances of their own. The test drives it over
stdin/stdout, one JSON line each way:

    → {"cmd": "kill", "node": 2}     ← {"killed": 2, "t": 1764000000.1}
                                     ← {"dead": 2, "dead_at": 1764000001.6} (the GCS saw it)
    → {"cmd": "add", "num_cpus": 3}  ← {"node": {...}}
    → {"cmd": "stop"} (or EOF)       ← {"stopped": true}

The first line it prints is the cluster: {"address": "127.0.0.1:PORT", "nodes": [...]},
each node {"index", "head", "node_id", "raylet_pid"}.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

# Node-death detection, on the head (the GCS health-checks every raylet). 500 ms × 3 failed
# checks: a node that dies is declared dead ~1.5-2 s later, and its actors restart elsewhere.
HEALTH_CHECK = {
    "health_check_initial_delay_ms": 1000,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
    # What the local instance sets too (ray_api.DEATH_INFO_WAIT_MS): an actor error is not
    # held back waiting for the GCS's "why".
    "timeout_ms_task_wait_for_death_info": 100,
}
WORKER_NODE_CPUS = 3


def _node_info(index: int, node: Any, head: bool) -> dict[str, Any]:
    from ray._private import ray_constants

    raylet = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process
    return {"index": index, "head": head, "node_id": node.node_id, "raylet_pid": raylet.pid}


@contextlib.contextmanager
def _keep_ray_address_file() -> Any:
    """Cluster() writes its address to /tmp/ray/ray_current_cluster, where a plain `ray.init()`
    of anyone on this machine would find it: put back what was there."""
    from ray._common.utils import get_ray_address_file

    path = Path(get_ray_address_file(None))
    before = path.read_text() if path.exists() else None
    try:
        yield
    finally:
        if before is not None:
            path.write_text(before)
        else:
            path.unlink(missing_ok=True)


def serve(n_workers: int, temp_dir: str) -> None:
    from ray.cluster_utils import Cluster

    common = {"node_ip_address": "127.0.0.1", "temp_dir": temp_dir, "object_store_memory": 80 * 1024 * 1024}
    with _keep_ray_address_file():
        cluster = Cluster(initialize_head=True, shutdown_at_exit=True, head_node_args={
            **common, "num_cpus": 0, "include_dashboard": False, "_system_config": HEALTH_CHECK})
    nodes: dict[int, Any] = {0: cluster.head_node}
    infos = [_node_info(0, cluster.head_node, True)]
    for i in range(1, n_workers + 1):
        nodes[i] = cluster.add_node(**common, num_cpus=WORKER_NODE_CPUS)
        infos.append(_node_info(i, nodes[i], False))
    cluster.wait_for_nodes()
    _say({"address": cluster.address, "nodes": infos})
    try:
        for line in sys.stdin:
            msg = json.loads(line)
            if msg["cmd"] == "kill":
                node = nodes.pop(msg["node"])
                t = time.time()
                _kill_node(cluster, node)
                _say({"killed": msg["node"], "t": t})
                # Reported on a line of its own later, so the kill's reply is not held back by it.
                threading.Thread(target=lambda n=node, i=msg["node"]: _say({"dead": i, "dead_at": _declared_dead(cluster, n.node_id)}),
                                 daemon=True).start()
            elif msg["cmd"] == "add":
                i = max(nodes) + 1
                nodes[i] = cluster.add_node(**common, num_cpus=msg.get("num_cpus", WORKER_NODE_CPUS))
                _say({"node": _node_info(i, nodes[i], False)})
            elif msg["cmd"] == "stop":
                break
    finally:
        cluster.shutdown()
        _say({"stopped": True})


def _kill_node(cluster: Any, node: Any) -> None:
    """SIGKILL every process of the node at once, as a machine crash would.

    `remove_node(allow_graceful=False)` SIGKILLs the processes Ray tracks for the node
    (raylet, object store, agents); its worker processes would only exit once they notice
    the raylet is gone, and could commit to Kafka meanwhile. So they are killed first.
    """
    from connectors.proctree import descendants

    for pid in descendants(_node_info(0, node, False)["raylet_pid"]):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    cluster.remove_node(node, allow_graceful=False)


def _declared_dead(cluster: Any, node_id: str, timeout_s: float = 60.0) -> float | None:
    """Wall time at which the GCS marks the node dead (polled every 50 ms), None if not within timeout_s.

    A node-table read that fails (the GCS slow to answer on a loaded machine) is retried
    until the deadline: the caller's thread must always report a line, or the test waiting
    for it would wait out its own timeout instead (a CI run lost 90 s and the test that way).
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if any(n["NodeID"] == node_id and not n["Alive"] for n in cluster.global_state.node_table()):
                return time.time()
        except Exception as e:  # reported on stderr, retried until the deadline
            print(f"node table read failed, retrying: {e!r}", file=sys.stderr, flush=True)
        time.sleep(0.05)
    return None


_SAY = threading.Lock()


def _say(obj: dict[str, Any]) -> None:
    with _SAY:
        print(json.dumps(obj), flush=True)


if __name__ == "__main__":
    tmp = sys.argv[2]
    try:
        serve(int(sys.argv[1]), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os._exit(0)
