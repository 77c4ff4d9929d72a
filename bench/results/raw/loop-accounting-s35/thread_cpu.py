"""CPU per thread of a process over a window: `python thread_cpu.py PID WINDOW_S` (from /proc/PID/task/*/stat)."""

from __future__ import annotations

import os
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def snapshot(pid: int) -> dict[str, tuple[str, float]]:
    """Thread id → (name, user + system CPU seconds so far)."""
    out: dict[str, tuple[str, float]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def main() -> None:
    pid, window = int(sys.argv[1]), float(sys.argv[2])
    before = snapshot(pid)
    t0 = time.time()
    time.sleep(window)  # the measuring window itself, not a synchronisation
    after = snapshot(pid)
    dt = time.time() - t0
    rows = sorted(((cpu - before.get(tid, (name, 0.0))[1], name, tid) for tid, (name, cpu) in after.items()), reverse=True)
    total = sum(r[0] for r in rows)
    print(f"window {dt:.2f}s total {total:.2f} cpu-s = {total / dt:.2f} cores")
    for cpu, name, tid in rows[:8]:
        print(f"{name:20s} {tid:>8s} {cpu / dt:.3f}")


if __name__ == "__main__":
    main()
