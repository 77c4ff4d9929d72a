"""Checkpoint rounds (`runtime.run_loop.Run._dispatch_checkpoints`) on the real broker and Redis.

Partitions commit at staggered moments, so each used to find its own turn for a
checkpoint: about two forked children a second for four partitions checkpointed
once a second, and a partition whose child had just landed was checkpointed
again at once (its due check ran before the child's report was applied). A
child's fixed cost is most of the checkpoint budget, so the loop now lets the
partitions close to due commit and join a due one: one child for all.

The worker runs in-process (no Ray: what is under test is its loop) on a steady
load spread over four partitions; every child it forks is recorded. A round due
while a child is still writing waits for it (tests/unit/test_checkpoint_round_wait.py;
child lifetimes and the split rounds it prevents: bench/results/raw/ckpt-rounds-s31/).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from streamlearn.runtime import checkpoint_rounds
from streamlearn.state import forked
from streamlearn.state.forked import ForkedCheckpointer, Snapshot
from streamlearn.tools.datasets import synthetic_events
from tests.integration.engine_helpers import (
    SteadyLoad,
    all_committed,
    assert_exactly_once_and_models_equal,
    in_process_config,
    wait_for,
    worker_in_process,
)

pytestmark = pytest.mark.skipif(not forked.AVAILABLE, reason="needs fork()")

PARTITIONS = 4
EVERY_S = 0.5
EVENTS = 8_000
RATE = 2_000.0  # events/s over all partitions: every partition has something new at each round


def test_partitions_close_to_due_share_one_checkpoint_child(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = in_process_config(tmp_path, kafka_bootstrap, redis_url, unique_topic, PARTITIONS,
                            checkpoint_every_s=EVERY_S, checkpoint_every_events=0)

    children: list[tuple[float, list[int]]] = []
    start = ForkedCheckpointer.start

    def recorded(self: ForkedCheckpointer, snapshots: list[Snapshot]) -> Any:
        children.append((time.monotonic(), [s.partition_id for s in snapshots]))
        return start(self, snapshots)

    monkeypatch.setattr(ForkedCheckpointer, "start", recorded)

    feed = SteadyLoad(cfg, list(synthetic_events(EVENTS, seed=11)), RATE)
    with worker_in_process(cfg, PARTITIONS, "rounds-test"):
        feed.start()
        try:
            feed.join(120)
            wait_for(lambda: feed.produced == EVENTS and all_committed(cfg), 120, "every partition committed to its end")
        finally:
            feed.stop.set()

    # The rounds changed when partitions commit, not what they commit: I1 and I2 as ever.
    assert_exactly_once_and_models_equal(cfg, PARTITIONS, EVENTS)

    assert len(children) >= 3, children
    # Never again right after its last child: at least a share of the interval between two of a partition's.
    for p in range(PARTITIONS):
        times = [t for t, parts in children if p in parts]
        gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
        assert all(g >= EVERY_S * checkpoint_rounds.CHECKPOINT_JOIN_SHARE for g in gaps), (p, gaps)
    # Together: on average at least three of the four partitions per child (about two without rounds).
    per_child = [len(parts) for _t, parts in children]
    assert sum(per_child) >= 3 * len(per_child), per_child
