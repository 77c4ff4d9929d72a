"""`serving.nice` (and, where the test may use it, `serving.realtime_priority`) reaches the processes that answer
requests: the replica and the ingress `serve` starts in its own Ray.

A value above the inherited one (no privilege needed) proves the path: the replica is a
worker of the raylet `serve` started, not a child of `serve` itself, so it
gets the value only if the raylet inherited it and started workers at it.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from streamlearn.serving import priority
from tests.integration.engine_helpers import REPO, stop_run, write_config
from tests.integration.serving_helpers import free_port, wait_serving
from tests.polling import poll

#: One step below the test's own priority: enough to prove the path, not enough to starve Ray's start-up on a
#: busy machine (at +6 its node timed out during start-up twice at a load average of 50).
NICE = min(os.getpriority(os.PRIO_PROCESS, 0) + 1, 19)
#: SCHED_RR needs root or RLIMIT_RTPRIO: checked only where the test runs with either.
REALTIME = 1 if os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 1 else None


def _descendants(root: int) -> dict[int, str]:
    """pid → command line of every live process below root."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        ppid = int(raw[raw.rfind(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: dict[int, str] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                out[pid] = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        todo.extend(children.get(pid, []))
    return out


def test_replica_and_proxy_run_at_serving_nice(tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: object,
                                               services_env: dict[str, str]) -> None:
    topic = unique_topic(partitions=1)  # type: ignore[operator]
    path = write_config(tmp_path, kafka_bootstrap, redis_url, topic, serving={"nice": NICE, "realtime_priority": REALTIME})
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlearn", "serve", "-c", str(path), "--port", str(port)],
                            env={**services_env, "PYTHONUNBUFFERED": "1"}, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)  # its own autogroup, as documented
    try:
        wait_serving(port, proc)
        found = poll(lambda: {pid: cmd for pid, cmd in _descendants(proc.pid).items()
                              if "ServeReplica" in cmd or "ProxyActor" in cmd} or None,
                     60, "the replica and proxy processes under serve")
        assert any("ServeReplica" in cmd for cmd in found.values()), found
        for pid in found:
            assert os.getpriority(os.PRIO_PROCESS, pid) == NICE, (pid, found[pid])
            if REALTIME is not None:
                assert os.sched_getscheduler(pid) == os.SCHED_RR, (pid, found[pid])
                assert os.sched_getparam(pid).sched_priority == REALTIME, (pid, found[pid])
        if priority._autogroup_on():
            with open(f"/proc/{proc.pid}/autogroup") as fh:
                assert fh.read().split()[-1] == str(NICE)
    finally:
        code, out = stop_run(proc, signal.SIGTERM, timeout=120)
        assert code == 0, out[-3000:]
