"""A hung checkpoint child is killed at its deadline, counted, and its partition goes inline (finding 7).

Real fork(), real hang: the child's store factory never returns, as a child
deadlocked on a lock a parent thread held at the fork would.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from river import linear_model, metrics

from streamlearn.state.checkpoint import ModelState
from streamlearn.state.forked import ForkedCheckpointer, Snapshot

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")


def _hang() -> Any:
    threading.Event().wait()  # never set: the child blocks for ever


def _snapshot(p: int) -> Snapshot:
    state = ModelState(linear_model.LogisticRegression(), metrics.Accuracy(), offset=10, model_version=10, events=10)
    return Snapshot(p, 1, 10, 10, state, b"k" * 32)


def test_a_hung_child_is_killed_at_its_deadline_counted_and_its_partition_goes_inline() -> None:
    forker = ForkedCheckpointer(_hang, timeout_s=0.5)
    forker.start([_snapshot(3)])
    pid = next(iter(forker._children))
    assert forker.rss_bytes() > 0  # the child's memory is part of the worker's footprint
    outcomes = forker.poll(wait=True)  # a graceful stop: must return, not wait for ever
    assert [(o.job.partition_id, o.result, o.timed_out) for o in outcomes] == [(3, None, True)]
    assert "killed" in outcomes[0].error
    assert (forker.started, forker.timeouts, forker.busy) == (1, 1, False)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no zombie left behind
    assert forker.take_inline(3) is True and forker.take_inline(3) is False


def test_a_second_child_for_a_busy_partition_is_refused_explicitly() -> None:
    forker = ForkedCheckpointer(_hang, timeout_s=0.5)
    forker.start([_snapshot(1)])
    try:
        with pytest.raises(RuntimeError, match="already in flight for partitions \\[1\\]"):
            forker.start([_snapshot(1)])  # an explicit check, still there under python -O
    finally:
        forker.close()
    assert not forker.busy


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ForkedCheckpointer(_hang, timeout_s=0)
