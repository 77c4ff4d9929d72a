"""Which process a recovery measurement SIGKILLs: a worker that owns partitions, by the pid it publishes.

The first version killed the `PartitionWorker` with the most CPU used so far. Once the
standbys and the killed owners were restarting, that was often a process Ray was still
restarting (importing river and friends is CPU too), which owns nothing: the kill then
measured a restart's restart, not an owner's loss (in a bounce A/B, 3-4 real deaths for
5 kills). Every owner publishes its pid in its partitions' status hash in Redis
(`eos/status.py`), so the kill goes to the owner of partition `kill_no % partitions`, or
the next one that is alive; only if no live owner is found does it fall back to CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.proctree import descendants_matching
from connectors.redis_store import open_store

WORKER_TITLE = "ray::PartitionWorker"


def owner_pids(spec: dict[str, Any], partitions: int) -> dict[int, int]:
    """partition → the pid its owner last published (missing: none yet, or unreadable)."""
    from bench.sysproc import streamlearn_config
    from streamlearn.config import AppConfig

    cfg = AppConfig.model_validate(streamlearn_config(spec))
    store = open_store(cfg.redis, cfg.app, cfg.kafka.input_topic)
    out = {}
    for p in range(partitions):
        pid = store.read_status(p).get("pid")
        if pid and pid.isdigit():
            out[p] = int(pid)
    return out


def pick_owner(owners: dict[int, int], live: set[int], kill_no: int, partitions: int) -> int | None:
    """The live owner of partition kill_no % partitions, else of the next partition that has one."""
    for k in range(partitions):
        pid = owners.get((kill_no + k) % partitions)
        if pid is not None and pid in live:
            return pid
    return None


def busiest_worker(root: int) -> list[int]:
    """The `PartitionWorker` process under `root` that has used the most CPU (the fallback).

    Not by process title: Ray names the running task in the title only from the actor's main thread, and
    `run` executes on one of the actor's concurrency threads, so every worker's title keeps `__init__`.
    """
    def cpu_ticks(pid: int) -> int:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return -1
        return int(fields[11]) + int(fields[12])  # utime + stime

    return sorted(descendants_matching(root, WORKER_TITLE), key=cpu_ticks, reverse=True)[:1]


def worker_to_kill(root: int, spec: dict[str, Any], kill_no: int, partitions: int) -> tuple[list[int], str]:
    """([pid], how it was chosen): "owner" (published in Redis), or "busiest" (fallback)."""
    live = set(descendants_matching(root, WORKER_TITLE))
    try:
        pid = pick_owner(owner_pids(spec, partitions), live, kill_no, partitions)
    except Exception:  # Redis unreachable mid-benchmark: fall back rather than skip the kill
        pid = None
    if pid is not None:
        return [pid], "owner"
    return busiest_worker(root), "busiest"
