"""`serving.nice`: the CPU priority `streamlearn serve`'s own Ray runs at.

On a machine shared with the learner, the Kafka broker and the feeder, a
request that arrives while the cores are busy waits in the kernel's run
queue behind them: on 2 cores that wait, not Serve's code, is the serving
p99 (docs/serving-latency.md). A lower nice value than theirs puts the
replica (and HAProxy or the Python proxy in front of it) ahead of them.

Set once, on the `serve` process before it starts its local Ray: Ray's GCS,
raylet and every worker it starts (controller, proxy, HAProxy, replicas)
inherit it, because the raylet starts workers at its own priority plus
`RAY_worker_niceness` (0 in `ray_api.init`). Linux keeps a nice value per
thread and new threads and processes copy their creator's, so every thread
of this process is set, not only the caller.

Kernels with autogroups (CONFIG_SCHED_AUTOGROUP and `kernel.sched_autogroup_enabled
= 1`, as on this machine) first share the CPU between sessions, and only then by
nice value inside each: measured on this machine, `serve`'s replica at nice
-10 waited in the run queue as long as at 0, because the broker, the learner
and the feeder are each in a session of their own. So the value is also set
on this process's autogroup (/proc/self/autogroup), which weighs the whole
session against the others: run `serve` in a session of its own (a systemd
service, `setsid`, or as bench/serving.py starts it).

A negative value raises priority, which Linux allows only with
CAP_SYS_NICE (root) or a high enough RLIMIT_NICE: refused at start,
naming the key, rather than silently serving at the old priority.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from streamlearn import logs
from streamlearn.errors import ConfigError

log = logs.get("serving")


def _threads() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: the process-wide call is all there is
        return [0]


AUTOGROUP = Path("/proc/self/autogroup")
AUTOGROUP_ENABLED = Path("/proc/sys/kernel/sched_autogroup_enabled")


def _refused(nice: int, before: int) -> ConfigError:
    return ConfigError(
        f"serving.nice: {nice} needs the right to raise CPU priority (this process runs at nice {before})",
        hint="run `streamlearn serve` as root or with CAP_SYS_NICE (e.g. systemd AmbientCapabilities=CAP_SYS_NICE "
             f"or LimitNICE={20 - nice}), or set serving.nice to {max(nice, before)} or more, or remove it",
    )


def _autogroup_on() -> bool:
    try:
        return AUTOGROUP_ENABLED.read_text().strip() == "1" and AUTOGROUP.exists()
    except OSError:
        return False


def _set_autogroup(nice: int, before: int) -> str | None:
    """This session's autogroup at `nice` (None where the kernel has no autogroups)."""
    if not _autogroup_on():
        return None
    try:
        AUTOGROUP.write_text(str(nice))
        return AUTOGROUP.read_text().split()[0]
    except PermissionError:
        raise _refused(nice, before) from None
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise _refused(nice, before) from None
        raise


def apply(nice: int | None) -> None:
    """Run this process (and what it starts from now on) at `nice`; None leaves the inherited priority."""
    if nice is None:
        return
    before = os.getpriority(os.PRIO_PROCESS, 0)
    group = _set_autogroup(nice, before)  # first: refused there, nothing has changed yet
    try:
        for tid in _threads():
            try:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            except ProcessLookupError:  # the thread ended meanwhile
                continue
    except PermissionError:
        raise _refused(nice, before) from None
    logs.event(log, logging.INFO, "serving_priority", nice=nice, was=before, autogroup=group)
