"""bench.resources counts the CPU of every process a system starts, short-lived children included.

A checkpoint child lives tens of milliseconds: the sampler never sees it, and
its CPU must still be counted (through the parent's cutime once reaped).
A child that was seen and then reaped must be counted once, not twice.
"""

from __future__ import annotations

import subprocess
import sys

from bench.resources import TreeSampler
from tests.polling import poll

# Forks two children that each burn 0.3 s of CPU (one short, one held alive long enough to be
# sampled), reaps both, then waits for stdin to close: the sampler reads the tree meanwhile.
_SCRIPT = r"""
import os, sys, time
def burn(s):
    t = time.process_time()
    while time.process_time() - t < s:
        pass
for hold in (0.0, 3.0):
    pid = os.fork()
    if pid == 0:
        burn(0.3)
        time.sleep(hold)
        os._exit(0)
    os.waitpid(pid, 0)
print("reaped", flush=True)
sys.stdin.read()
"""


def test_reaped_children_count_once() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    sampler = TreeSampler(proc.pid, interval_s=0.1).start()
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "reaped"
        poll(lambda: sampler.samples >= 2, 30, "two samples after the children were reaped")
        sampler.stop()
        res = sampler.result()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)
    # 0.6 s burnt by the children + the interpreter's own start-up; counting the sampled child twice would give ≥ 0.9.
    assert 0.6 <= res["cpu_s_total"] < 0.9, res
    assert res["processes"] >= 2  # the parent and at least the child held alive long enough to be seen


def test_cpu_by_process_in_a_window_ranks_the_busiest() -> None:
    from bench.resources import _Proc

    s = TreeSampler(root=0)
    owner, restarting, idle = _Proc(1, "ray::PartitionWorker"), _Proc(1, "ray::IDLE"), _Proc(1, "raylet")
    owner.series = [(100.0, 5.0), (110.0, 9.0)]  # 0.4 of a core
    restarting.series = [(104.0, 0.0), (110.0, 4.5)]  # born in the window: 0.75 of a core from then on
    idle.series = [(100.0, 1.0), (110.0, 1.1)]
    s.procs = {10: owner, 11: restarting, 12: idle}
    assert s.by_pid_between(105.0, 110.0, top=2) == [[11, "ray::IDLE", 3.75], [10, "ray::PartitionWorker", 2.0]]
