"""The README's "Scaling out to a Ray cluster" recipe, run as written with separate `ray start` processes.

The block is read from README.md (the one marked `readme-test: cluster (...)`)
and run by bash with only its placeholders filled in: the token, the
checkpoint secret, `<head-host>` (127.0.0.1) and the head's port (a free one:
6380 may be someone else's on this machine). Three things are added around
the commands, not written into them, through bash functions of the same name:

- `ray start` gets `--node-ip-address=127.0.0.1`, a temp dir of this test,
  free ports for the agents (the defaults are taken on a shared machine) and
  no dashboard or usage stats;
- `streamlearn run` gets `--until-idle` and `--no-metrics`, so the block ends
  once the input is processed.

The nodes are stopped by `tests/chaos/ray_start.stop` (their own temp dir,
never a global `ray stop`). Ray's servers still listen on every interface
(see ray_start.py): the random token keeps others out while the test runs.
Checked: the run exits 0, every partition was processed on the worker node
(by the node its status publishes, matched to the raylets of this test), and
exactly once (I1, I2: `checker`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from connectors.proctree import cmdline
from tests.chaos import ray_start
from tests.chaos.checker import assert_exactly_once, audit, caught_up
from tests.chaos.harness import PARTITIONS, ChaosEnv, Scenario, record_result
from tests.readme_blocks import cluster_recipe

# Every record is produced before the run: caught up (every partition running, lag 0) means done,
# so a short idle stop is enough (the final caught_up and I1/I2 checks would fail an early one).
IDLE_S = 3
HANG_GUARD_S = 900  # stops a hung test only; measures nothing

WRAPPERS = r"""
_slrc_node=0
ray() {
  if [ "${1:-}" = start ]; then
    shift
    _slrc_node=$((_slrc_node + 1))
    local ports=(${SLRC_PORTS})
    local extra=(--node-ip-address=127.0.0.1 --temp-dir="${SLRC_TMP}" --disable-usage-stats
                 --dashboard-agent-listen-port="${ports[$((_slrc_node * 2))]}")
    case " $* " in
      *" --head "*) extra+=(--include-dashboard=false --ray-client-server-port="${ports[$((_slrc_node * 2 + 1))]}") ;;
    esac
    command ray start "${extra[@]}" "$@"
  else
    command ray "$@"
  fi
}
streamlearn() {
  if [ "${1:-}" = run ]; then
    command streamlearn "$@" --until-idle "${SLRC_IDLE}" --no-metrics
  else
    command streamlearn "$@"
  fi
}
"""


def fill(body: str, *, token: str, secret: str, port: int) -> str:
    """The block with its placeholders filled; fails if the README gained one this test does not know."""
    out = (body.replace("RAY_AUTH_TOKEN=...", f"RAY_AUTH_TOKEN={token}")
           .replace("STREAMLEARN_CHECKPOINT_SECRET=...", f"STREAMLEARN_CHECKPOINT_SECRET={secret}")
           .replace("<head-host>", "127.0.0.1")
           .replace("6380", str(port)))
    code = "\n".join(line.split("#", 1)[0] for line in out.splitlines())
    assert "..." not in code and not re.search(r"<[a-z-]+>", code), f"unfilled placeholder in the README recipe:\n{out}"
    return out


def raylets(temp_dir: str) -> dict[str, bool]:
    """node id → is the head, for the raylets of this test's nodes (from their command lines)."""
    out = {}
    for pid in ray_start.processes(temp_dir):
        args = cmdline(pid).split()
        if args and args[0].endswith("/raylet"):
            node_id = next(a.split("=", 1)[1] for a in args if a.startswith("--node_id="))
            out[node_id] = "--head" in args
    return out


def test_readme_cluster_recipe_runs_as_written(chaos_env: ChaosEnv) -> None:
    block = cluster_recipe()
    # The worker node's CPUs are Ray's count of this machine's (the recipe sets none): no standby
    # actor waiting for a CPU that never frees.
    sc = Scenario(chaos_env, "readme-cluster", processing={"standby_workers": 0})
    recs = sc.events()
    sc.produce(recs)
    tmp = tempfile.mkdtemp(prefix="slrc-", dir="/tmp")  # short: Ray's unix sockets live in it
    token, port = secrets.token_hex(16), ray_start.free_port()
    script = fill(block.body, token=token, secret=chaos_env.checkpoint_secret, port=port)
    env = {k: v for k, v in sc.cli_env().items() if not k.startswith(("RAY_", "STREAMLEARN_CHECKPOINT"))}
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", "SLRC_TMP": tmp,
                "SLRC_PORTS": " ".join(str(ray_start.free_port()) for _ in range(8)), "SLRC_IDLE": str(IDLE_S),
                "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", WRAPPERS + script], cwd=sc.dir, env=env,
                              capture_output=True, text=True, timeout=HANG_GUARD_S)
        assert proc.returncode == 0, f"README.md:{block.line} failed:\n{script}\n--- stderr ---\n{proc.stderr[-4000:]}"
        assert "stopped cleanly" in proc.stderr, proc.stderr[-2000:]
        nodes = raylets(tmp)
        status = subprocess.run(["streamlearn", "status", "-c", str(sc.config_path), "--json"], cwd=sc.dir, env=env,
                                capture_output=True, text=True, timeout=120)
    finally:
        killed = ray_start.stop(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    assert token not in proc.stdout + proc.stderr  # the token never reaches the output
    assert killed, "no Ray process of the test was found to stop"
    assert sorted(nodes.values()) == [False, True], f"expected a head and one worker node: {nodes}"
    assert status.returncode == 0, status.stderr[-2000:]
    rows = json.loads(status.stdout)["partitions"]
    worker_node = next(n for n, head in nodes.items() if not head)
    # Every partition was processed on the worker node (the head has no CPU), as its status says. Its IP
    # is the one the node registered in the GCS: Ray 2.60 registers a node started with
    # --node-ip-address=127.0.0.1 under the machine's address (seen: 192.0.2.2), so only its form is checked.
    assert [r["node_id"] for r in rows] == [worker_node] * PARTITIONS, rows
    assert len({r["node_ip"] for r in rows}) == 1 and ipaddress.ip_address(rows[0]["node_ip"]), rows
    assert caught_up(sc, len(recs))
    v = audit(sc)
    record_result({"scenario": sc.name, "fault": "none (README cluster recipe, separate ray start processes)", "injected": 0,
                   **v.row()})
    assert_exactly_once(v)
