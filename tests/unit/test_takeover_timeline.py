"""The takeover timeline: step marks relative to the hand-over, logged once at the first commit."""

from __future__ import annotations

import logging

import pytest

from streamlearn.eos.takeover import Timeline


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_marks_are_ms_since_the_start_and_a_step_keeps_its_first_mark() -> None:
    clock = Clock()
    tl = Timeline(clock=clock, wall=lambda: 1_000.0)
    clock.now += 0.015
    tl.mark("epoch")
    clock.now += 0.5
    tl.mark("init_transactions")
    tl.mark("epoch")  # a re-take after a failed commit does not move the first takeover's mark
    assert tl.marks == {"epoch": 15.0, "init_transactions": 515.0}


def test_finish_logs_one_line_with_every_step_then_stops_marking(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    tl = Timeline(clock=clock, wall=lambda: 1_000.0)
    clock.now += 0.2
    tl.mark("restored")
    clock.now += 0.1
    logger = logging.getLogger("streamlearn")
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        with caplog.at_level(logging.INFO, logger="streamlearn.protocol"):
            marks = tl.finish("first_commit", {"topic": "t", "partition": 3, "epoch": 7})
            clock.now += 1.0
            again = tl.finish("first_commit", {"topic": "t", "partition": 3, "epoch": 7})
            tl.mark("later")
    finally:
        logger.setLevel(old)
    assert marks == {"restored": 200.0, "first_commit": 300.0}
    assert again is None and "later" not in tl.marks
    lines = [r.getMessage() for r in caplog.records if "takeover_timeline" in r.getMessage()]
    assert len(lines) == 1
    assert "partition=3" in lines[0] and "epoch=7" in lines[0]
    assert "restored_ms=200.0" in lines[0] and "first_commit_ms=300.0" in lines[0] and "started_at=1000.000" in lines[0]
