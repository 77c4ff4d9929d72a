"""TurnTimer: a slow loop turn is logged once with its phases; a fast one is not."""

from __future__ import annotations

import time

import pytest

from streamlearn.runtime import loop_timing
from streamlearn.runtime.loop_timing import TurnTimer


def test_a_turn_over_the_threshold_is_logged_with_each_phase(caplog: pytest.LogCaptureFixture) -> None:
    timer = TurnTimer(slow_ms=0.0, topic="t", partition_count=4)
    with caplog.at_level("INFO", logger=loop_timing.log.name):
        timer.start()
        sum(range(10_000))
        timer.mark("commit")
        timer.mark("commit")  # a phase met twice in one turn adds up
        timer.mark("redis")
        total = timer.end()
    [record] = caplog.records
    message = record.getMessage()
    assert message.startswith("slow_loop_turn topic=t partition_count=4 ")
    for key in ("ms=", "cpu_ms=", "commit_ms=", "redis_ms="):
        assert f" {key}" in message
    assert total > 0 and timer.slow_turns == 1
    if loop_timing.RunQueueClock().read() is not None:  # Linux: the run-queue wait is reported too
        assert " runqueue_ms=" in message
    timer.close()


def test_a_fast_turn_is_not_logged_and_phases_reset_each_turn(caplog: pytest.LogCaptureFixture) -> None:
    timer = TurnTimer(slow_ms=60_000.0)
    with caplog.at_level("INFO", logger=loop_timing.log.name):
        timer.start()
        timer.mark("poll_process")
        timer.end()
        timer.start()
        timer.slow_ms = 0.0
        timer.mark("redis")
        timer.end()
    [record] = caplog.records
    assert "redis_ms=" in record.getMessage() and "poll_process_ms=" not in record.getMessage()
    assert timer.slow_turns == 1


def test_the_run_queue_clock_rereads_its_open_file_and_closes() -> None:
    clock = loop_timing.RunQueueClock()
    before = clock.fields()
    if before is None:
        pytest.skip("no /proc/thread-self/schedstat here")
    deadline = time.thread_time() + 0.05
    while time.thread_time() < deadline:  # 50 ms on a CPU: the thread's own count must move
        pass
    after = clock.fields()
    assert after is not None and after[0] >= before[0] + 40_000_000, (before, after)  # read again, not the first content
    assert after[1] >= before[1] and clock.read() is not None
    clock.close()
    assert clock.read() is None
