"""The process tree from /proc: descendants, command lines, liveness.

The one walker of the project: the chaos harness finds and kills the Ray
processes of its own driver with it, the benchmark samples the memory of
its workers, the service launchers check a pid's command line. Linux only;
elsewhere every answer is empty (no descendants, no command line, not alive).
"""

from __future__ import annotations

import os


def _stat_fields(pid: int | str) -> list[bytes] | None:
    """Fields after the command name of /proc/<pid>/stat (state first), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # pid (comm) state ppid ... ; comm may hold spaces and parens
    return stat[stat.rfind(b")") + 2:].split()


def _parents() -> dict[int, int]:
    out: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for d in entries:
        fields = _stat_fields(d) if d.isdigit() else None
        if fields and len(fields) > 1:
            out[int(d)] = int(fields[1])
    return out


def descendants(pid: int) -> list[int]:
    """Every live descendant of pid, parents before their children."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def cmdline(pid: int) -> str:
    """The process's command line, arguments space-separated ("" if unknown)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    fields = _stat_fields(pid)
    return fields is not None and len(fields) > 0 and fields[0] not in (b"Z", b"X")


def descendants_matching(pid: int, needle: str) -> list[int]:
    """Descendants whose command line contains `needle` (e.g. Ray's `ray::PartitionWorker` titles)."""
    return [p for p in descendants(pid) if needle in cmdline(p)]
