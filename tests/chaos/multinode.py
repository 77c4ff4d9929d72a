"""The test's side of the multi-node cluster (`tests/chaos/ray_cluster.py`) and the driver joining it.

`RayTestCluster` starts the cluster process, reads its address and nodes,
and kills or adds nodes on request. Which node a process runs on is read
from the process tree: every Ray worker process is a child of its node's
raylet, so a PartitionWorker's pid (published per partition in Redis)
names its node with no help from the engine under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.proctree import cmdline, descendants
from tests.chaos.harness import REPO, STREAMLEARN, Driver, Scenario, wait_for

CLUSTER_START_TIMEOUT_S = 240


def parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(stat[stat.rfind(b")") + 2:].split()[1])


@dataclass
class RayTestCluster:
    """A head (num_cpus=0) and worker nodes, on 127.0.0.1, with a token: see ray_cluster.py."""

    worker_nodes: int = 2
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    address: str = ""
    nodes: dict[int, dict[str, Any]] = field(default_factory=dict)

    def auth(self) -> dict[str, str]:
        """What a process needs to join: the token, from the environment (never a config file)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    def start(self) -> RayTestCluster:
        self._tmp = tempfile.mkdtemp(prefix="slray-", dir="/tmp")  # short: Ray's unix sockets live in it
        self._log = open(Path(self._tmp).with_suffix(".log"), "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.ray_cluster", str(self.worker_nodes), self._tmp],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env={**os.environ, **self.auth()}, cwd=REPO,
            start_new_session=True, text=True,
        )
        self._reader = _LineReader(self.proc)
        first = self._read(CLUSTER_START_TIMEOUT_S)
        self.address = first["address"]
        self.nodes = {n["index"]: n for n in first["nodes"]}
        return self

    def _read(self, timeout_s: float) -> dict[str, Any]:
        while True:
            line = self._reader.readline(timeout_s)
            if line.startswith("{"):
                return dict(json.loads(line))

    def _send(self, msg: dict[str, Any], timeout_s: float = 120) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return self._read(timeout_s)

    def kill_node(self, index: int) -> float:
        """SIGKILL every process of a worker node (Ray's remove_node, no grace); the kill's wall time."""
        reply = self._send({"cmd": "kill", "node": index})
        self.nodes.pop(index)
        return float(reply["t"])

    def freeze_node(self, index: int) -> list[int]:
        """SIGSTOP a worker node: its raylet first (so it starts nothing new), then every process under it.

        The node hangs as a whole (a VM paused, a machine swapping to death): nothing
        of it answers, nothing of it dies. Returns the frozen pids, for `thaw`.
        """
        raylet = self.nodes[index]["raylet_pid"]
        os.kill(raylet, signal.SIGSTOP)
        frozen = [raylet]
        for pid in descendants(raylet):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                frozen.append(pid)
        return frozen

    def thaw(self, pids: list[int]) -> None:
        """SIGCONT what `freeze_node` stopped, the raylet first."""
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def declared_dead_at(self, timeout_s: float = 90) -> float | None:
        """When the GCS declared the last killed node dead (None: not within 60 s). Read it before the next command.

        The figure is reported, not asserted on: if the cluster process gives no line in
        time, this says None (and the reason on stderr) rather than failing the test.
        """
        try:
            return self._read(timeout_s).get("dead_at")
        except AssertionError as e:
            print(f"declared_dead_at: {e}", file=sys.stderr)
            return None

    def node_of(self, pid: int) -> int | None:
        """The index of the node whose raylet is an ancestor of pid."""
        raylets = {n["raylet_pid"]: i for i, n in self.nodes.items()}
        p: int | None = pid
        while p is not None and p > 1:
            if p in raylets:
                return raylets[p]
            p = parent(p)
        return None

    def processes(self, prefix: str) -> dict[int, int]:
        """pid → node index of every process whose command line starts with prefix (e.g. ray::PartitionWorker)."""
        out = {}
        for i, n in self.nodes.items():
            for pid in descendants(n["raylet_pid"]):
                if cmdline(pid).startswith(prefix):
                    out[pid] = i
        return out

    def idle_workers(self, owners: set[int]) -> dict[int, int]:
        """pid → node of each PartitionWorker owning nothing (a standby): a child of a raylet (not a
        forked checkpoint child) whose pid is not among `owners` (the pids published per partition)."""
        raylets = {n["raylet_pid"] for n in self.nodes.values()}
        return {pid: node for pid, node in self.processes("ray::PartitionWorker").items()
                if pid not in owners and parent(pid) in raylets}

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self._send({"cmd": "stop"}, timeout_s=120)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(60)
        if self.proc.poll() is None:  # our own process group only
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()

    def log(self) -> str:
        return Path(self._tmp).with_suffix(".log").read_text(errors="replace")


class _LineReader:
    """The cluster process's stdout as a queue of lines, filled by a thread.

    Why not `select` on the pipe: when two lines arrive in one read (the kill's reply and,
    soon after, the node's death), `readline` returns the first and keeps the second in
    Python's buffer, where `select` on the descriptor cannot see it; the next read then
    waited out its whole timeout with the answer already received (a CI failure, 90 s).
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True, name="ray-cluster-stdout").start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put("")  # end of stream: the process exited

    def readline(self, timeout_s: float) -> str:
        """One line, or a failure naming the process's exit (never a hang)."""
        try:
            line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no answer from the Ray test cluster within {timeout_s:.0f}s") from None
        if not line:
            self.lines.put("")  # every later read sees the exit too
            raise AssertionError(f"the Ray test cluster exited (code {self.proc.wait(10)})")
        return line


def start_on_cluster(sc: Scenario, cluster: RayTestCluster, **extra_env: str) -> Driver:
    """`streamlearn run --ray-address` for the scenario; returns once a PartitionWorker runs on the cluster."""
    log_path = sc.dir / f"driver-{len(sc.drivers)}.log"
    with log_path.open("wb") as fh:
        proc = subprocess.Popen(
            [str(STREAMLEARN), "run", "-c", str(sc.config_path), "--quiet", "--no-metrics", "--ray-address", cluster.address],
            stdout=fh, stderr=subprocess.STDOUT, env=sc.cli_env(**{**cluster.auth(), **extra_env}),
            cwd=sc.dir, start_new_session=True,
        )
    d = Driver(proc, log_path)
    sc.drivers.append(d)
    wait_for(lambda: cluster.processes("ray::PartitionWorker") or proc.poll() is not None, 180, "a PartitionWorker on the cluster")
    assert proc.poll() is None, f"driver exited early:\n{d.log()[-3000:]}"
    return d



@dataclass
class Moves:
    """Seconds from a kill to each moved partition's new epoch (ownership taken) and first new commit."""

    ownership: dict[int, float] = field(default_factory=dict)
    first_commit: dict[int, float] = field(default_factory=dict)


class Timeline:
    """After a kill: when each partition's Redis epoch is bumped, and when its committed offset moves on.

    Sampled every 0.1 s from outside the engine (Redis and Kafka only); the epochs are read
    before the kill (only a new owner bumps an epoch).
    """

    def __init__(self, sc: Scenario, partitions: list[int]) -> None:
        """Before the kill: the epochs (only a new owner can bump them, never the killed one)."""
        import redis as redis_lib

        from tests.chaos.checker import committed_offsets

        self._committed = lambda: committed_offsets(sc)
        self._r = redis_lib.Redis.from_url(sc.env.redis_url)
        self._epoch_key = lambda p: f"streamlearn:{sc.app}:{sc.topic}:{p}:epoch"
        self.partitions, self.since = partitions, 0.0
        self.start_epochs = self._epochs()
        self.moves = Moves()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def armed(self, killed_at: float) -> Timeline:
        """Right after the kill: start sampling."""
        self.since = killed_at
        self._thread.start()
        return self

    def _epochs(self) -> dict[int, int]:
        return {p: int(self._r.get(self._epoch_key(p)) or 0) for p in self.partitions}

    def _run(self) -> None:
        """A first commit counts once the new owner holds the partition (its epoch is bumped) and the
        offset moves past where it stood before: a commit of the old owner is not taken for it (the
        first read is after the kill, when the killed owner's last transaction has ended).

        Each sample reads the offsets before the epochs, and the baseline is the offsets of the last
        sample that saw no bump: those were read before an epoch read that found the new owner not
        yet there, so they hold none of its commits. (The baseline used to be the offsets read just
        after the bump was seen; a new owner that committed its whole backlog before that read, as
        when the takeover outlasted the producer or a sample stalled on a busy machine, had no
        commit counted: a CI run failed on it.)"""
        m = self.moves
        at_ownership: dict[int, int] = {}
        before: dict[int, int | None] | None = None
        with contextlib.suppress(Exception):
            before = self._committed()  # after the kill: the old owner is gone
        while not self._stop.wait(0.1) and len(m.first_commit) < len(self.partitions):
            with contextlib.suppress(Exception):  # a sample lost to a slow service: the next one counts
                offsets = self._committed()
                epochs, t = self._epochs(), time.time() - self.since
                for p in self.partitions:
                    if p not in m.ownership and epochs[p] > self.start_epochs[p]:
                        m.ownership[p] = t
                        # No earlier sample (the first read failed): this one's offsets, as a floor.
                        at_ownership[p] = (before if before is not None else offsets).get(p) or 0
                    if p in at_ownership and p not in m.first_commit and (offsets.get(p) or 0) > at_ownership[p]:
                        m.first_commit[p] = t
                before = offsets

    def stop(self) -> Moves:
        self._stop.set()
        self._thread.join(10)
        return self.moves
