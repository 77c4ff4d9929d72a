"""Separate `ray start` processes on this machine, found and stopped by their own temp dir.

`ray stop` stops every Ray process of the user on the machine, other
engineers' clusters included, so it is never used here. Every process a
`ray start --temp-dir=DIR` launches (GCS, raylet, monitors, dashboard) carries
DIR in its command line, and the rest (worker processes, agents) are
descendants of those: `stop(DIR)` SIGKILLs exactly that set.

`ray start` cannot be confined to loopback: with `--node-ip-address=127.0.0.1`
the GCS and the raylets still listen on every interface, and the GCS's node
table lists the nodes under the machine's network address (Ray 2.60; checked
with `ss -ltnp` and `ray.nodes()`). What keeps others out meanwhile is Ray's token
authentication, with a random token made for the test and never written to
disk by it, and the short life of the cluster.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from pathlib import Path

from connectors.proctree import alive, cmdline, descendants
from tests.polling import poll


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def processes(temp_dir: str | Path) -> list[int]:
    """Every live process of the Ray nodes started with --temp-dir=temp_dir, and their descendants."""
    mark = str(temp_dir)
    roots = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid() and mark in cmdline(int(p))]
    out: list[int] = []
    for r in roots:
        for p in [r, *descendants(r)]:
            if p not in out:
                out.append(p)
    return out


def stop(temp_dir: str | Path) -> list[int]:
    """SIGKILL the nodes of temp_dir (never anyone else's); the pids killed."""
    killed = processes(temp_dir)
    for p in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    poll(lambda: not any(alive(p) for p in killed), 30, "the Ray processes of the test to exit")
    return killed
