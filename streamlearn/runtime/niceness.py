"""Does this Ray worker process run at the niceness the config asks for (`ray.worker_niceness`)?

Why a check rather than a setting made here: a process may raise its own
nice value but lowering it needs CAP_SYS_NICE, which a cluster's pods rarely
have, so the niceness of a worker is decided where its raylet starts: by
`ray_api.init` for a local instance, by the node's `RAY_worker_niceness` on a
cluster. A worker left at Ray's default (15) loses the CPU to every busy
process of its machine, the broker included, and that shows only as a
latency tail; so a worker that runs at another value says so once, at start,
with the fix.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from streamlearn import logs

log = logs.get("worker")


def current() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def check(configured: int, **context: Any) -> bool:
    """True when this process runs at `configured`; else logs worker_niceness_differs (WARNING) and returns False."""
    have = current()
    if have == configured:
        return True
    logs.event(log, logging.WARNING, "worker_niceness_differs", niceness=have, configured=configured, **context,
               hint="on a cluster, start each node's raylet with RAY_worker_niceness=<ray.worker_niceness> in its "
                    "environment (`ray start`, the KubeRay container env; docs/scale-out.md)")
    return False
