"""The deferred early commit (`PartitionTask.process(defer_commit=True)`) on the real broker and Redis.

A batch that has been open for its time budget (`min(commit_interval_ms, transaction_timeout/3)`)
mid-turn is not committed inside `process` (the loop would wait for the broker's round trips
with every other partition's records held): processing stops, the rest goes back to the
backlog, and the loop commits in flight at the end of its turn. The unit test
(`tests/unit/test_delivery_and_pacing.py`) fixes the task's side with a fake producer; here a
1-ms budget and a backlog produced before the start make the deferral happen many times in an
exactly_once run, and the output and models must be as if it never had (I1, I2).

The worker runs in-process (no Ray: what is under test is its loop), as in test_checkpoint_rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from streamlearn.eos.task import PartitionTask
from streamlearn.tools.datasets import synthetic_events
from tests.integration.engine_helpers import (
    all_committed,
    assert_exactly_once_and_models_equal,
    in_process_config,
    keyed,
    produce,
    store_of,
    wait_for,
    worker_in_process,
)

PARTITIONS = 4
EVENTS = 4_000
BUDGET_MS = 1  # a fetched batch of a few hundred events takes longer than this to process


def test_batches_stopped_at_their_budget_commit_in_flight_exactly_once(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = in_process_config(tmp_path, kafka_bootstrap, redis_url, unique_topic, PARTITIONS, guarantee="exactly_once",
                            commit_interval_ms=BUDGET_MS, checkpoint_every_s=0.5, checkpoint_every_events=0)
    assert produce(cfg, keyed(synthetic_events(EVENTS, seed=5))) == EVENTS  # a backlog: full fetches from the start

    deferred: list[tuple[int, int]] = []  # (partition, offset) where a batch stopped for the loop to commit
    process = PartitionTask.process

    def counted(self: PartitionTask, records: Sequence[Any], until: float | None = None, defer_commit: bool = False) -> Sequence[Any]:
        rest = process(self, records, until, defer_commit)
        if self.commit_wanted:
            assert defer_commit and self.state is not None
            deferred.append((self.partition_id, self.state.offset))
        return rest

    monkeypatch.setattr(PartitionTask, "process", counted)

    with worker_in_process(cfg, PARTITIONS, "early-commit-test"):
        wait_for(lambda: all_committed(cfg), 180, "every partition committed to its end")

    # The path under test was taken, on every partition, many times (not once by luck).
    per_partition = {p: sum(1 for q, _ in deferred if q == p) for p in range(PARTITIONS)}
    assert all(n >= 5 for n in per_partition.values()), per_partition
    # Each deferral stopped mid-backlog: records were handed back, not dropped (I1 below counts them all).
    assert all(0 < offset < EVENTS for _, offset in deferred)
    # And an operator sees them: the status (and streamlearn_budget_commits_total) counts every batch cut at its budget.
    store = store_of(cfg)
    assert all(int(store.read_status(p)["budget_commits"]) >= n for p, n in per_partition.items()), per_partition

    assert_exactly_once_and_models_equal(cfg, PARTITIONS, EVENTS)
