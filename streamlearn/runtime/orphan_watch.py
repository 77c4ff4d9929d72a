"""A worker whose node was declared dead exits instead of lingering as an orphan.

Seen in the hung-node chaos scenario: a node SIGSTOPped long enough for the
GCS to declare it dead has its partitions moved; when it is SIGCONTed its
raylet shuts down, but a PartitionWorker process of that node outlives it,
reparented to init, fenced and idle, for minutes (Ray's own clean-up never
reaches it, and the Coordinator's `ray.kill` addressed a dead node). It
holds no partition, so exactly-once is not at stake, but its memory, its
connections and its Kafka consumer are. A Ray worker's parent is its node's
raylet, so a changed parent pid means the raylet is gone: exit then.

Exiting is always safe here: whatever the process still held was already
fenced (the Redis epoch, the transactional id) by the partitions' new owners.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from streamlearn import logs

log = logs.get("worker")
CHECK_EVERY_S = 1.0


def watch_parent(worker_id: str, exit_process: Callable[[int], None] = os._exit,
                 check_every_s: float = CHECK_EVERY_S, getppid: Callable[[], int] = os.getppid) -> threading.Thread:
    """Start a daemon thread that exits the process once its parent (the raylet) is gone."""
    parent = getppid()

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(check_every_s):
            if getppid() != parent:
                logs.event(log, logging.WARNING, "raylet_gone_exiting", worker=worker_id, raylet_pid=parent,
                           reason="this worker's node is gone (its raylet exited): its partitions were moved and fenced")
                exit_process(1)
                return

    t = threading.Thread(target=watch, name="orphan-watch", daemon=True)
    t.start()
    return t
