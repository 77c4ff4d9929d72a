"""A worker process whose parent (its node's raylet) exits, exits too (`runtime.orphan_watch`)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.polling import poll

# The middle process starts the "worker" (which watches its parent), waits until it is watching,
# prints its pid and exits, as a raylet does when its node is declared dead: the worker is
# reparented and must notice. (The worker closes its output, or it would hold open the pipe
# this test reads.)
GRANDCHILD = (
    "import os, sys, time; from streamlearn.runtime import orphan_watch; "
    "orphan_watch.watch_parent('w9', check_every_s=0.05); print('watching', flush=True); "
    "os.close(1); os.close(2); time.sleep(120)"
)
MIDDLE = (
    "import subprocess, sys; "
    f"p = subprocess.Popen([sys.executable, '-c', {GRANDCHILD!r}], stdout=subprocess.PIPE, text=True); "
    "assert p.stdout.readline().strip() == 'watching'; print(p.pid, flush=True)"
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_worker_exits_once_its_parent_is_gone() -> None:
    out = subprocess.run([sys.executable, "-c", MIDDLE], capture_output=True, text=True, timeout=60, check=True,
                         cwd=os.getcwd())
    worker = int(out.stdout.split()[0])
    try:
        poll(lambda: not _alive(worker), 30, "the orphaned worker to exit")
    finally:
        if _alive(worker):
            os.kill(worker, 9)


def test_exit_only_after_the_parent_changes() -> None:
    from streamlearn.runtime import orphan_watch

    parents = iter([100, 100, 100, 1])  # the raylet's pid at start and twice after, then init's
    exited: list[int] = []
    orphan_watch.watch_parent("w9", exit_process=exited.append, check_every_s=0.01, getppid=lambda: next(parents, 1))
    poll(lambda: exited, 10, "the watcher to exit the process")
    assert exited == [1]
