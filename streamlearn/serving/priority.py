"""`serving.nice` and `serving.realtime_priority`: the CPU priority `streamlearn serve`'s own Ray runs at.

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

A nice value, even with its autogroup, only weighs serve's share: on a
machine busy ~90 % of the time a request still waits for the process on
the core to be preempted, and the replica's threads waited 0.11-0.21 s per
second at -10 (docs/serving-latency.md, session 36). `serving.realtime_priority`
puts serve's threads in SCHED_RR, the kernel's real-time class, which
preempts every normal process at once. Same inheritance (threads, Ray's
processes), same privilege rule (CAP_SYS_NICE or RLIMIT_RTPRIO). The kernel
keeps 5 % of each core for normal processes (kernel.sched_rt_runtime_us),
so a runaway replica slows the machine rather than locking it.
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


def _refused_realtime(rt: int) -> ConfigError:
    return ConfigError(
        f"serving.realtime_priority: {rt} needs the right to use real-time scheduling (RLIMIT_RTPRIO here is "
        f"{_rtprio_limit()})",
        hint="run `streamlearn serve` as root or with CAP_SYS_NICE (e.g. systemd AmbientCapabilities=CAP_SYS_NICE "
             f"or LimitRTPRIO={rt}), or remove serving.realtime_priority",
    )


def _rtprio_limit() -> int:
    import resource

    return int(resource.getrlimit(resource.RLIMIT_RTPRIO)[0])


def apply(nice: int | None, realtime: int | None = None) -> None:
    """Run this process (and what it starts from now on) at `nice`, and in SCHED_RR at `realtime`; None leaves each alone."""
    if nice is not None:
        _set_nice(nice)
    if realtime is not None:
        _set_realtime(realtime)


def _set_nice(nice: int) -> None:
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


def _set_realtime(rt: int) -> None:
    """Every thread in SCHED_RR at `rt`: threads and processes started later inherit it (no SCHED_RESET_ON_FORK)."""
    if not hasattr(os, "sched_setscheduler"):
        raise ConfigError("serving.realtime_priority needs Linux real-time scheduling, which this system lacks",
                          hint="remove serving.realtime_priority")
    try:
        for tid in _threads():
            try:
                os.sched_setscheduler(tid, os.SCHED_RR, os.sched_param(rt))
            except ProcessLookupError:  # the thread ended meanwhile
                continue
    except PermissionError:
        raise _refused_realtime(rt) from None
    logs.event(log, logging.INFO, "serving_realtime_priority", policy="SCHED_RR", priority=rt)
