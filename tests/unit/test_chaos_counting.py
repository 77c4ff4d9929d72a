"""The chaos harness counts only kills of partition owners, and the report says where it comes from (finding 13)."""

from __future__ import annotations

import random
import subprocess
import threading
from typing import Any

from tests.chaos import report
from tests.chaos.harness import random_kills
from tests.polling import poll


def test_only_processes_that_own_partitions_are_killed_and_counted() -> None:
    owner = subprocess.Popen(["sleep", "120"])
    standby = subprocess.Popen(["sleep", "120"])  # a PartitionWorker-titled process owning nothing
    kills: list[dict[str, Any]] = []
    stop = threading.Event()

    def owners() -> dict[int, list[int]]:
        return {owner.pid: [0, 2]} if owner.poll() is None else {}

    killer = threading.Thread(target=random_kills, args=(owners, stop, random.Random(1), kills),
                              kwargs={"min_gap_s": 0.01, "max_gap_s": 0.02}, daemon=True)
    try:
        killer.start()
        poll(lambda: owner.poll() is not None, 30, "the owner to be killed")
        stop.set()
        killer.join(30)
        assert standby.poll() is None, "a process that owned no partition was killed"
        assert [(k["pid"], k["partitions"]) for k in kills] == [(owner.pid, [0, 2])]
    finally:
        stop.set()
        for proc in (owner, standby):
            proc.kill()
            proc.wait()


def test_the_report_is_stamped_with_commits_and_commands() -> None:
    row = {"scenario": "baseline", "fault": "none", "injected": 0, "events": 1, "predictions": 1, "dead_letters": 0, "lost": 0,
           "duplicated": 0, "order_ok": True, "model_equal": True, "i4_samples": 1, "i4_violations": 0, "ts": "t",
           "chaos_events": 4000, "commit": "abc123def456", "command": "pytest tests/chaos/test_baseline.py"}
    text = report.render({"baseline@4000": row}, "python -m tests.chaos.report --write docs/reliability.md", "fedcba654321")
    assert "Rendered at commit `fedcba654321` by `python -m tests.chaos.report --write docs/reliability.md`" in text
    assert "- commit `abc123def456`: `pytest tests/chaos/test_baseline.py`" in text
