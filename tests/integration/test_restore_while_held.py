"""An aborted in-flight commit restores its partition while records fetched for it are held.

Since the loop polls while commits are in flight (`Backlog.fill` appends, session 33), a
partition whose commit is in flight can have records fetched *after* its open batch waiting
in the backlog. If that commit fails, the partition restores (checkpoint + replay, seek back
to the checkpoint's offset): the records held were fetched for a position it no longer has.
`take` drops them and `fill` replaces them (`runtime.intake`, generation = the task's restore
count); processing them would learn past a gap and emit predictions the replay emits again.

Here the worker runs in-process on the real broker and Redis (what is under test is its loop),
four partitions and a 1-ms commit budget, so commits are in flight most of the time. Some of partition 0's commits are made to fail in flight, on its
own commit thread: the verdict is held back until the loop has fetched more of partition 0
while its commit is in flight and another partition's commit is in flight too, then the
transaction is left to abort (ABORT: aborted by the same producer) or its producer given up
(REOWN: a new producer fences it and the broker aborts it). The output and the models must be
as if no commit had ever failed: I1 over every record, I2 on every partition.

Two loads: a backlog produced before the start (polls fill the backlog to `max_batch`; when a
restore finds it full, the next turn does not poll and `take` drops the stale records) and a
steady load below the worker's throughput (the first poll after a restore is repeated until it
brings the victim's re-fetched records while the stale ones are held, so `fill` must replace
them; asserted to have happened).

Seen while writing this (librdkafka 2.12.1, Kafka 4.1.1): an ABORT injected before any
transactional call of the batch is sometimes refused by the broker (`abort_transaction` fails
with INVALID_TXN_STATE, in about 1 run in 3; not investigated further, presumably the
transaction coordinator has not yet registered the transaction).
`Ownership.abort` returns False and the partition is re-owned with a new producer, the designed
fallback; I1 and I2 hold either way. A real ABORT verdict comes after the commit's own calls.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from streamlearn.eos import task as task_module
from streamlearn.eos.commit import Verdict
from streamlearn.runtime.intake import Backlog
from streamlearn.runtime.run_loop import Run
from streamlearn.tools.datasets import synthetic_events
from tests.integration.engine_helpers import (
    SteadyLoad,
    all_committed,
    assert_exactly_once_and_models_equal,
    in_process_config,
    keyed,
    produce,
    wait_for,
    worker_in_process,
)
from tests.polling import poll

PARTITIONS = 4
EVENTS = 6_000
RATE = 2_000.0  # events/s of the steady load: below the worker's throughput, so the backlog is not full
VICTIM = 0
FAIL_EVERY = 3  # every third commit of partition 0 fails...
VERDICTS = (Verdict.ABORT, Verdict.REOWN, Verdict.ABORT, Verdict.REOWN)  # ...this many times, in this order
REFILL_S = 2.0  # how long the first poll after a restore is repeated for the victim's re-fetched records
CONDITIONS_S = 10.0  # how long a failing commit waits for the interleaving before it fails anyway


@pytest.mark.parametrize("load", ["backlog", "steady"])
def test_a_restore_while_records_are_held_for_the_partition_keeps_exactly_once(
    load: str, tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = in_process_config(tmp_path, kafka_bootstrap, redis_url, unique_topic, PARTITIONS, guarantee="exactly_once",
                            commit_interval_ms=1, checkpoint_every_s=0.5, checkpoint_every_events=0)
    events = list(synthetic_events(EVENTS, seed=11))
    steady = SteadyLoad(cfg, events, RATE)
    if load == "backlog":  # produced before the start: every poll fills the backlog to max_batch
        assert produce(cfg, keyed(events)) == EVENTS

    runs: list[Run] = []
    run_init = Run.__init__

    def kept(self: Run, *args: Any, **kwargs: Any) -> None:
        run_init(self, *args, **kwargs)
        runs.append(self)

    monkeypatch.setattr(Run, "__init__", kept)

    lock = threading.Lock()
    victim_commits = 0
    failed: list[dict[str, Any]] = []  # what was held and in flight when each failure was returned
    commit_transaction = task_module.commit_transaction

    def held_beyond(run: Run, next_offset: int) -> list[int]:
        """Offsets held for the victim that were fetched after its in-flight batch (its current generation)."""
        held = dict(run.backlog._held).get(VICTIM)
        task = run.tasks.get(VICTIM)
        if held is None or task is None or held[0] != task.restores:
            return []
        return [m.offset() for m in list(held[1]) if m.offset() >= next_offset]

    def others_in_flight(run: Run) -> list[int]:
        return [p for p, t in list(run.tasks.items()) if p != VICTIM and (f := t.in_flight) is not None and not f.done()]

    def failing(producer: Any, consumer: Any, topic: str, partition_id: int, next_offset: int, *args: Any, **kw: Any) -> Verdict:
        nonlocal victim_commits
        if partition_id != VICTIM:
            return commit_transaction(producer, consumer, topic, partition_id, next_offset, *args, **kw)
        with lock:
            victim_commits += 1
            k = len(failed)
            fail = k < len(VERDICTS) and victim_commits % FAIL_EVERY == 0
        if not fail:
            return commit_transaction(producer, consumer, topic, partition_id, next_offset, *args, **kw)
        run = runs[-1]
        seen: dict[str, list[int]] = {}

        def interleaved() -> bool:
            seen["held"], seen["flying"] = held_beyond(run, next_offset), others_in_flight(run)
            return bool(seen["held"] and seen["flying"])

        # Fails anyway at the deadline; the assertions below count only the failures that met the interleaving.
        with contextlib.suppress(AssertionError):
            poll(interleaved, CONDITIONS_S, "records held for the victim and another commit in flight", every_s=0.0005)
        with lock:
            failed.append({"next_offset": next_offset, "verdict": VERDICTS[k], "restores": run.tasks[VICTIM].restores, **seen})
        return VERDICTS[k]

    monkeypatch.setattr(task_module, "commit_transaction", failing)

    # After a failure, the loop's next poll may fetch the victim again (from its restored position) while
    # the stale records are still held: `fill` must replace them. A poll returns the re-fetched records
    # only once the seek's fetch has come back, so the first poll after a restore is repeated (a longer
    # poll, as on a slower turn) until it brings them, within REFILL_S; how often they came is counted.
    replaced: list[int] = []
    fill = Backlog.fill

    def refilled(self: Backlog, consumer: Any, max_batch: int, wait_s: float, restores: dict[int, int], topic: str) -> None:
        held = self._held.get(VICTIM)
        stale = held is not None and held[0] != restores.get(VICTIM)
        fill(self, consumer, max_batch, wait_s, restores, topic)
        deadline = time.monotonic() + REFILL_S
        while stale and self._held[VICTIM][0] != restores.get(VICTIM) and self.count() < max_batch and time.monotonic() < deadline:
            fill(self, consumer, max_batch, 0.01, restores, topic)
        if stale and self._held[VICTIM][0] == restores.get(VICTIM):
            replaced.append(self._held[VICTIM][1][0].offset())

    monkeypatch.setattr(Backlog, "fill", refilled)

    with worker_in_process(cfg, PARTITIONS, "restore-while-held-test"):
        if load == "steady":
            steady.start()
        wait_for(lambda: len(failed) == len(VERDICTS) and (load == "backlog" or steady.produced == EVENTS) and all_committed(cfg),
                 240, f"{len(VERDICTS)} failed commits of partition {VICTIM}, then every partition committed to its end")
        victim_restores = runs[-1].tasks[VICTIM].restores

    # Each failure came with records fetched past its batch held for the victim, while another partition
    # was committing in flight: the interleaving under test, not a quiet moment.
    assert [f["verdict"] for f in failed] == list(VERDICTS)
    met = [f for f in failed if f["held"] and f["flying"]]
    assert len(met) == len(VERDICTS), failed
    # And each was applied as a restore (one at the start, one per failure): the held records became stale.
    assert victim_restores == 1 + len(VERDICTS), victim_restores
    if load == "steady":
        # Below max_batch, a poll fetched the victim again while its stale records were held: `fill` replaced them.
        # (With a backlog, max_batch is often held when a restore comes, stale records included: no poll then,
        # and `take` drops them.)
        assert replaced, "no poll after a restore brought the victim's records while stale ones were held"

    assert_exactly_once_and_models_equal(cfg, PARTITIONS, EVENTS)
