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
