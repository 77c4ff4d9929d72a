"""Whole-system memory and CPU of one system under test: every process it starts, summed.

Why a tree and not "the worker": a system's cost is everything it runs.
For streamlearn that is the driver, Ray's GCS, raylet, dashboard and log
monitor, the Coordinator, the workers, the standby and the forked
checkpoint children; a peer is usually one process. Counting only the
worker would flatter the system with the most processes.

Which processes: descendants of the system's process, plus any process in
its session (the orchestrator starts each system with `start_new_session`,
so a helper that re-parents itself to init is still found).

CPU: utime+stime per process from /proc/<pid>/stat, last value seen. A
child too short-lived to be sampled (a checkpoint child lives tens of ms)
is still counted once its parent reaps it, through the parent's
cutime+cstime; a sampled child that was reaped is counted once (the
parent's absorbed total minus the child's last sampled value).

Memory: the peak over samples of the summed RSS (overstates: pages shared
between a parent and its forked children, or Ray's shared objects, are
counted per process) and of the summed PSS (`smaps_rollup`, shared pages
split between sharers: the fair figure), plus the largest single process.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _stat(pid: int) -> tuple[int, int, float, float] | None:
    """(ppid, session, own cpu s, reaped children's cpu s), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    f = raw[raw.rfind(b")") + 2:].split()
    # after comm: state(0) ppid(1) pgrp(2) session(3) ... utime(11) stime(12) cutime(13) cstime(14)
    return int(f[1]), int(f[3]), (int(f[11]) + int(f[12])) / _TICK, (int(f[13]) + int(f[14])) / _TICK


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE / 1048576.0
    except (OSError, IndexError, ValueError):
        return 0.0


def _pss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _cmd(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            parts = fh.read().split(b"\0")
    except OSError:
        return "?"
    head = parts[0].decode(errors="replace")
    if head.startswith("ray::"):
        return head  # Ray's process title: ray::PartitionWorker.run, ray::Coordinator, ...
    name = os.path.basename(head)
    if name.startswith("python") and len(parts) > 2:
        return f"{name} {parts[1].decode(errors='replace')} {parts[2].decode(errors='replace')[:40]}"
    return name or "?"


def tree(root: int) -> dict[int, tuple[int, int, float, float]]:
    """The root, its descendants and its session's processes: pid → _stat()."""
    stats: dict[int, tuple[int, int, float, float]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return stats
    for d in entries:
        if d.isdigit():
            s = _stat(int(d))
            if s is not None:
                stats[int(d)] = s
    children: dict[int, list[int]] = {}
    for pid, (ppid, *_r) in stats.items():
        children.setdefault(ppid, []).append(pid)
    keep = {root} if root in stats else set()
    todo = [root]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in keep:
                keep.add(c)
                todo.append(c)
    keep |= {pid for pid, s in stats.items() if s[1] == root}
    return {pid: stats[pid] for pid in keep}


@dataclass
class _Proc:
    ppid: int
    cmd: str
    own_s: float = 0.0
    child_last_s: float = 0.0
    peak_rss_mb: float = 0.0
    alive: bool = True
    series: list[tuple[float, float]] = field(default_factory=list)  # (epoch s, own cpu s): its share of a window


@dataclass
class TreeSampler:
    """Samples a system's process tree in a thread until stopped; `result()` sums it up."""

    root: int
    interval_s: float = 0.25
    pss_every: int = 4  # PSS costs a page-table walk: every 4th sample
    procs: dict[int, _Proc] = field(default_factory=dict)
    cpu_series: list[tuple[float, float]] = field(default_factory=list)  # (epoch s, total cpu s so far)
    peak_rss_total_mb: float = 0.0
    peak_pss_total_mb: float = 0.0
    samples: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="tree-sampler")

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        """One last sample, then stop (call before the system is told to stop: its exit is not its work)."""
        self._stop.set()
        self._thread.join(10)
        self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        now = time.time()
        seen = tree(self.root)
        rss_total = 0.0
        for pid, (ppid, _sid, own, child) in seen.items():
            p = self.procs.get(pid)
            if p is None or (p.ppid != ppid and not p.alive):
                p = self.procs[pid] = _Proc(ppid, _cmd(pid))
            p.alive, p.own_s, p.child_last_s = True, own, child
            p.series.append((now, own))
            if not p.cmd.startswith("ray::") or p.cmd == "ray::IDLE":  # Ray titles a worker (ray::PartitionWorker...) once it hosts an actor
                p.cmd = _cmd(pid)
            rss = _rss_mb(pid)
            p.peak_rss_mb = max(p.peak_rss_mb, rss)
            rss_total += rss
        for pid, p in self.procs.items():
            if pid not in seen:
                p.alive = False
        self.peak_rss_total_mb = max(self.peak_rss_total_mb, rss_total)
        if self.samples % self.pss_every == 0:
            pss = [_pss_mb(pid) for pid in seen]
            self.peak_pss_total_mb = max(self.peak_pss_total_mb, sum(x for x in pss if x is not None))
        self.samples += 1
        self.cpu_series.append((now, self.cpu_s()))

    def _contributions(self) -> dict[int, float]:
        """CPU s per process: its own, plus what it absorbed from reaped children that were never sampled."""
        reaped_seen: dict[int, float] = {}
        for c in self.procs.values():
            if not c.alive:
                reaped_seen[c.ppid] = reaped_seen.get(c.ppid, 0.0) + c.own_s
        return {pid: p.own_s + max(0.0, p.child_last_s - reaped_seen.get(pid, 0.0)) for pid, p in self.procs.items()}

    def cpu_s(self) -> float:
        return sum(self._contributions().values())

    def cpu_between(self, t0: float, t1: float) -> float | None:
        """CPU seconds spent between two epoch times (linear between samples)."""
        if len(self.cpu_series) < 2 or t1 <= t0:
            return None
        return _at(self.cpu_series, t1) - _at(self.cpu_series, t0)

    def by_process_between(self, t0: float, t1: float) -> dict[str, dict[str, float]]:
        """CPU s per command in a window: which process spends a system's CPU while it works (not its start-up)."""
        by: dict[str, dict[str, float]] = {}
        for p in self.procs.values():
            if len(p.series) < 2 or p.series[-1][0] < t0 or p.series[0][0] > t1:
                continue
            cpu = _at(p.series, t1) - _at(p.series, t0)
            agg = by.setdefault(p.cmd, {"processes": 0, "cpu_s": 0.0})
            agg["processes"] += 1
            agg["cpu_s"] = round(agg["cpu_s"] + cpu, 3)
        return dict(sorted(by.items(), key=lambda kv: -kv[1]["cpu_s"]))

    def by_pid_between(self, t0: float, t1: float, top: int = 6) -> list[list[Any]]:
        """[pid, command, CPU s] of the busiest processes in a window (a recovery: the new owner against the
        actor Ray is restarting at the same time), busiest first."""
        rows: list[list[Any]] = [[pid, p.cmd, round(_at(p.series, t1) - _at(p.series, t0), 3)] for pid, p in self.procs.items()
                if len(p.series) >= 2 and p.series[-1][0] >= t0 and p.series[0][0] <= t1]
        return sorted(rows, key=lambda r: -r[2])[:top]

    def result(self, events: int | None = None, window: tuple[float, float] | None = None) -> dict[str, Any]:
        by_cmd: dict[str, dict[str, float]] = {}
        contrib = self._contributions()
        for pid, p in self.procs.items():
            agg = by_cmd.setdefault(p.cmd, {"processes": 0, "cpu_s": 0.0, "peak_rss_mb": 0.0})
            agg["processes"] += 1
            agg["cpu_s"] = round(agg["cpu_s"] + contrib[pid], 3)
            agg["peak_rss_mb"] = round(max(agg["peak_rss_mb"], p.peak_rss_mb), 1)
        total = self.cpu_s()
        win_cpu = self.cpu_between(*window) if window else None
        out: dict[str, Any] = {
            "processes": len(self.procs), "samples": self.samples, "interval_s": self.interval_s,
            "cpu_s_total": round(total, 3), "peak_rss_total_mb": round(self.peak_rss_total_mb, 1),
            "peak_pss_total_mb": round(self.peak_pss_total_mb, 1),
            "peak_rss_largest_process_mb": round(max((p.peak_rss_mb for p in self.procs.values()), default=0.0), 1),
            "by_process": dict(sorted(by_cmd.items(), key=lambda kv: -kv[1]["cpu_s"])),
        }
        if window is not None:
            out["window_s"] = round(window[1] - window[0], 3)
            out["by_process_window"] = self.by_process_between(*window)
            out["cpu_s_window"] = round(win_cpu, 3) if win_cpu is not None else None
            if events and win_cpu is not None:
                out["cpu_s_per_1k_events"] = round(1000.0 * win_cpu / events, 4)
        return out


def _at(series: list[tuple[float, float]], t: float) -> float:
    if t <= series[0][0]:
        return series[0][1]
    for (ta, ca), (tb, cb) in itertools.pairwise(series):
        if ta <= t <= tb:
            return ca + (cb - ca) * ((t - ta) / (tb - ta) if tb > ta else 0.0)
    return series[-1][1]
