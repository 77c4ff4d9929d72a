"""PartitionTask: one owned partition, running the protocol's steps in their order.

The steps and the invariants they keep are listed in `streamlearn.eos`; each
step lives in its own module and this class only sequences them and holds the
partition's position (phase, open batch, committed offset). The runtime calls
in from above, one partition at a time; the task calls down into the steps,
and no step calls back up: a step that needs the task to act (a failed commit
that must restore) returns a verdict and the task acts on it.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from connectors import kafka_io
from connectors.kafka_delivery import DeliveryReports, Failure
from connectors.redis_store import CheckpointStore
from streamlearn import faults, logs
from streamlearn.config import AppConfig
from streamlearn.eos.checkpointing import Checkpoints
from streamlearn.eos.commit import (
    COMMIT_BUCKETS_MS,
    CommitStats,
    OpenBatch,
    Verdict,
    batch_verdict,
    commit_bound_s,
    commit_transaction,
    verdict_after_commit,
    verdict_before_commit,
)
from streamlearn.eos.emitter import input_offset
from streamlearn.eos.halting import halt
from streamlearn.eos.heartbeat import Heartbeat
from streamlearn.eos.inflight import Committer, InFlight
from streamlearn.eos.joined_step import partition_step
from streamlearn.eos.ownership import Ownership, RedisCall, direct
from streamlearn.eos.phase import Phase
from streamlearn.eos.restore import restore_state, seek_to
from streamlearn.eos.status import StatusPublisher
from streamlearn.eos.takeover import Timeline
from streamlearn.errors import DeliveryFailedError
from streamlearn.model.codec import EventDecoder
from streamlearn.state.checkpoint import ModelState
from streamlearn.state.forked import Outcome, Snapshot

__all__ = ["COMMIT_BUCKETS_MS", "PartitionTask"]  # COMMIT_BUCKETS_MS: ops.metrics reads the bounds from here

#: How long closing a partition waits for its in-flight commit: a send_offsets + commit that honour
#: their timeouts (kafka.transaction_timeout_ms each, 10 s by default) end within it. Past it the
#: producer is given up like one whose call is stuck (`bounded`): not flushed; its thread ends on its own.
CLOSE_WAIT_S = 25.0
#: Beyond `commit_bound_s` before an in-flight commit is given up (`give_up_commit`).
OVERDUE_MARGIN_S = 10.0

log = logs.get("protocol")


class PartitionTask:
    """One owned partition: its ownership, model state and protocol position."""

    def __init__(self, cfg: AppConfig, store: CheckpointStore, consumer: Consumer, partition_id: int, owner: str,
                 ckpt_key: bytes, decoder: EventDecoder, is_classifier: bool, out_partitions: int,
                 shared_producer: Producer | None = None, heartbeat: Heartbeat | None = None,
                 redis_call: RedisCall = direct, dlq_limit: int = kafka_io.LARGE_MESSAGE_BYTES) -> None:
        self.heartbeat = heartbeat if heartbeat is not None else Heartbeat()
        self.takeover = Timeline()  # from being handed the partition to its first commit (logged then)
        # Redis calls made inside a step (recovery, the at_least_once offset write) wait out an outage through it.
        self.redis_call = redis_call
        self.ownership = Ownership(cfg, store, partition_id, owner, self.heartbeat, shared_producer, redis_call)
        self.cfg, self.store, self.consumer = cfg, store, consumer
        self.partition_id, self.topic = partition_id, self.ownership.topic
        self.ckpt_key = ckpt_key
        self.checkpoints = Checkpoints.of(cfg, store, partition_id, ckpt_key, is_classifier, self.ownership.ctx)
        self.commit_stats = CommitStats()
        self.batch = OpenBatch()
        self.committer = Committer()
        self.in_flight: InFlight | None = None  # exactly_once: the open batch's commit, started and not yet applied
        # The open batch used its time budget and `process` was told not to wait for its commit: the loop
        # starts it (in flight) at the end of its turn. Cleared when a commit starts.
        self.commit_wanted = False
        self.commit_bound_s = commit_bound_s(cfg.kafka.transaction_timeout_ms) + OVERDUE_MARGIN_S
        self.state: ModelState | None = None
        self.replay_until = 0  # K at the last restore: below it, records are replayed silently
        self.committed_offset = 0
        self.phase = Phase.STARTING
        self.restores = 0  # bumped by every restore: records fetched before it are stale (runtime.intake)
        self.deliveries = DeliveryReports(input_offset)  # failed deliveries of the open batch (commit.py reads them)
        self.error: DeliveryFailedError | None = None  # why the partition halted (phase FAILED)
        self.status = StatusPublisher(store, consumer, self.ownership)
        # labels.source: topic: events and labels joined (joined_step); otherwise inline labels (inline_step).
        self.mode = partition_step(cfg, self.ownership, consumer, decoder, is_classifier, partition_id % max(out_partitions, 1),
                                   self.heartbeat, self.checkpoints.publisher, self.deliveries, dlq_limit)

    @property
    def epoch(self) -> int:
        return self.ownership.epoch

    # ---- 1. take ownership (ownership.py) ----------------------------------------
    def take_ownership(self, *, retake: bool = False) -> None:
        self.ownership.take(retake=retake, mark=self.takeover.mark)
        self.batch.reset()

    # ---- 2. restore (restore.py; label mode: joined_step.py) ---------------------------
    def restore(self) -> int:
        """Load checkpoint R and committed K; returns R, the offset to start reading at."""
        self.heartbeat.beat()
        self.restores += 1
        restored = self.redis_call(lambda: restore_state(
            self.cfg, self.store, self.consumer, self.partition_id, self.ckpt_key, self.epoch, self.ownership.ctx,
            self.takeover.mark))
        self.takeover.mark("restored")
        self.state = restored.state
        self.replay_until = self.committed_offset = restored.committed
        self.checkpoints.restored(restored.state)
        self.phase = self.mode.restored(restored.state, restored.committed)
        return restored.state.offset

    def assignment(self, offset: int) -> list[TopicPartition]:
        """What the shared consumer reads for this partition after a restore returned `offset`."""
        return [TopicPartition(self.topic, self.partition_id, offset), *self.mode.assignment(self.state)]

    # ---- 3. process (inline_step.py or joined_step.py) ---------------------------------
    def process(self, records: Sequence[Any], until: float | None = None, defer_commit: bool = False) -> Sequence[Any]:
        """Replay or process fetched records; returns those left for later once `until` (monotonic) passes.

        Commits early when the open transaction has used its time budget; with `defer_commit`
        (the run loop, exactly_once) it stops there instead, returns the rest and sets
        `commit_wanted`, so the commit goes in flight at the end of the loop's turn while the
        other partitions are processed, rather than the whole loop waiting for the broker's
        round trips. A producer failing fatally mid-batch restores the partition (nothing is
        left then: the seek fetches again).
        """
        try:
            return self._process(records, until, defer_commit)
        except KafkaException as exc:
            self.ownership.producer_failed(exc)  # raises again unless the producer failed fatally
            # Aborts the batch; raises OwnershipLostError if another owner holds the partition now.
            self.recover(fatal=True)
            return []

    def _process(self, records: Sequence[Any], until: float | None, defer_commit: bool) -> Sequence[Any]:
        state, producer = self.state, self.ownership.producer
        assert state is not None
        if not records or self.phase is Phase.FAILED:
            return []
        self.takeover.mark("first_fetch")
        records, replayed = self.mode.live(state, records, self.replay_until)
        if replayed:
            self.takeover.mark("replay_done")
            self.phase = Phase.RUNNING
        while records:
            assert producer is not None
            ran = self.mode.run(state, records, until, producer, self.batch)
            if ran.commit_now:
                self.commit_stats.budget += 1
            if ran.commit_now and defer_commit:
                self.commit_wanted = True
                return ran.rest
            if ran.commit_now and (not self.commit() or self.phase is Phase.FAILED):
                return []  # aborted (restored, the seek fetches again) or halted: nothing here is still valid
            if ran.deadline_passed:
                return ran.rest
            records = ran.rest
        return []

    # ---- 4. commit (commit.py, inflight.py, halting.py) -----------------------------------
    def commit(self) -> bool:
        """Commit the open batch and wait; False if it was aborted and the partition restored (or halted).

        A commit already in flight (`start_commit`) is the open batch's: it is waited for."""
        if self.in_flight is None:
            concluded = self.start_commit()
            if concluded is not None:
                return concluded
        return self.finish_commit()

    def start_commit(self) -> bool | None:
        """Start committing the open batch; None while it is in flight (exactly_once, `finish_commit` ends it).

        Otherwise the outcome as `commit` gives it: nothing open, at_least_once (flush + offset
        write, here), or a verdict known before any transactional call (a failed producer, a
        refused message). In flight, the partition must not be processed or checkpointed."""
        if self.in_flight is not None:
            return None
        self.commit_wanted = False
        if not self.batch.open:
            return True
        state, producer = self.state, self.ownership.producer
        assert state is not None and producer is not None
        if faults.ENABLED:
            faults.point("after_produce_before_commit")
        t0 = time.perf_counter()
        next_offset = state.offset
        if not self.ownership.eos:
            return self._conclude(batch_verdict(producer, self.consumer, self.store, self.deliveries, self.ownership,
                                                next_offset, self.cfg.kafka.transaction_timeout_ms, self.heartbeat,
                                                self.mode.commit_offsets(state), self.redis_call), next_offset, t0)
        early = verdict_before_commit(producer, self.deliveries, self.ownership)
        if early is not None:
            return self._conclude(verdict_after_commit(producer, self.deliveries, self.ownership, early,
                                                       served_failed=early is Verdict.REOWN), next_offset, t0)
        self.in_flight = self.committer.start(functools.partial(
            commit_transaction, producer, self.consumer, self.topic, self.partition_id, next_offset,
            self.cfg.kafka.transaction_timeout_ms, self.heartbeat, self.ownership.ctx, self.mode.commit_offsets(state),
            self.ownership.calls), next_offset)
        return None

    def finish_commit(self) -> bool:
        """The in-flight commit's verdict, applied on the loop's thread (waits for it if still running).

        The wait is bounded: each transactional call is (`bounded`), so a stuck one is a REOWN."""
        flight, self.in_flight = self.in_flight, None
        assert flight is not None and self.ownership.producer is not None
        verdict = flight.future.result()
        return self._conclude(verdict_after_commit(self.ownership.producer, self.deliveries, self.ownership, verdict,
                                                   served_failed=False), flight.next_offset, flight.started)

    def overdue_commit(self, now: float) -> bool:
        """An in-flight commit running past what its bounded calls allow (`commit_bound_s`)."""
        flight = self.in_flight
        return flight is not None and not flight.done() and now - flight.started > self.commit_bound_s

    def give_up_commit(self) -> bool:
        """An overdue in-flight commit: its producer is given up as after a stuck call (REOWN; `bounded`).

        The backstop for a commit blocked outside its bounded calls: the loop keeps turning while a
        commit is in flight, so the stuck-loop kill would never see it; without this the partition
        would wait for good. The new producer's init_transactions fences the old one, and the
        restore reads Kafka's committed offset, so either outcome of that transaction is handled."""
        flight, self.in_flight = self.in_flight, None
        assert flight is not None
        self.ownership.calls.stuck = True  # neither flushed nor called again
        logs.event(log, logging.WARNING, "commit_in_flight_stuck", **self.ownership.ctx(
            offset=flight.next_offset, running_s=round(time.perf_counter() - flight.started, 1),
            bound_s=self.commit_bound_s))
        return self._conclude(Verdict.REOWN, flight.next_offset, flight.started)

    def _conclude(self, verdict: Verdict, next_offset: int, t0: float) -> bool:
        if verdict is Verdict.HALT:
            self.halt(self.deliveries.permanent)
            return False
        if verdict is not Verdict.COMMITTED:
            self.recover(fatal=verdict is Verdict.REOWN)
            return False
        self.commit_stats.observe((time.perf_counter() - t0) * 1000)
        self.batch.reset()
        self.deliveries.clear()
        self.committed_offset = next_offset
        self.takeover.finish("first_commit", self.ownership.ctx(offset=next_offset))
        if faults.ENABLED:
            faults.point("after_commit_before_checkpoint")
        return True

    def recover(self, *, fatal: bool) -> None:
        """Abort the open batch and rebuild the model from checkpoint + replay (keeps I2)."""
        self.heartbeat.beat()
        if not fatal and not self.ownership.abort():
            # Fenced or failed: the epoch check below tells a zombie (stop) from a
            # broker-side abort of a timed-out transaction (re-own with a new producer).
            fatal = True
        self.batch.reset()
        self.deliveries.clear()
        # A zombie must never re-take ownership (that would fence the rightful owner): the
        # re-take is a compare-and-increment on our epoch, so one that wakes up between
        # this check and the re-take is refused there.
        self.ownership.ensure_owner()
        if fatal:
            if faults.ENABLED:
                faults.point("recover_before_take")
            self.take_ownership(retake=True)
        for tp in self.assignment(self.restore()):
            seek_to(self.consumer, tp.topic, tp.partition, tp.offset)

    def halt(self, failure: Failure | None) -> None:
        """Stop reading the partition: Kafka refuses one of its outputs for good (halting.py)."""
        self.error = halt(self.ownership, self.batch, self.deliveries, self.consumer, failure, self.assignment(0),
                          self.committed_offset)
        self.phase = Phase.FAILED

    # ---- 5. checkpoint (checkpointing.py) ------------------------------------------------
    def checkpoint_due(self, now: float, share: float = 1.0) -> bool:
        """A checkpoint can be taken now (between commits, running) and is due (`share`: see `Checkpoints.due`)."""
        return not self.batch.open and self.checkpoint_near(now, share)

    def checkpoint_near(self, now: float, share: float) -> bool:
        """Running and `share` of the way to a checkpoint, whether or not a batch is open: worth committing
        now to join a checkpoint round (`runtime.run_loop`)."""
        assert self.state is not None
        return self.phase is Phase.RUNNING and self.checkpoints.due(self.state, now, share)

    def write_checkpoint(self, *, final: bool = False) -> None:
        """Only after commit: the blob reflects exactly the committed offset (I4). `final`: a graceful stop."""
        assert self.state is not None
        if self.batch.open or self.phase not in (Phase.RUNNING, Phase.STOPPED):
            return
        self.mode.before_checkpoint(self.state)
        self.checkpoints.write(self.state, self.epoch, final=final)

    def checkpoint_snapshot(self) -> Snapshot:
        """For a forked writer: only between commits, like an inline checkpoint."""
        assert self.state is not None and not self.batch.open
        self.mode.before_checkpoint(self.state)
        return self.checkpoints.snapshot(self.state, self.epoch)

    def apply_forked_checkpoint(self, outcome: Outcome) -> None:
        self.checkpoints.apply(outcome, self.epoch)

    # ---- lease, status (status.py), stop ------------------------------------------------
    def renew_lease(self) -> None:
        self.ownership.renew_lease()

    def publish_status(self, elapsed_s: float) -> None:
        """Status with events per second over `elapsed_s`, the time since the last publish (0: none)."""
        assert self.state is not None
        self.status.publish(elapsed_s, phase=self.phase, committed_offset=self.committed_offset, state=self.state,
                            checkpoints=self.checkpoints, commits=self.commit_stats,
                            error=self.error.message if self.error is not None else None)

    def stop(self) -> None:
        """Graceful stop, after the last commit: final checkpoint (and model version), last status, lease released."""
        self.write_checkpoint(final=True)
        if self.phase is not Phase.FAILED:  # a halted partition says so until someone fixes it
            self.phase = Phase.STOPPED
        self.publish_status(0.0)
        self.ownership.release_lease()

    def close(self) -> None:
        """The producer is closed only once no commit of it is running (a dropped partition's may be)."""
        if self.in_flight is not None:
            # Bounded by its calls' own bounds; past this, closing goes on and the thread ends on its own.
            done, _ = concurrent.futures.wait([self.in_flight.future], timeout=CLOSE_WAIT_S)
            if not done:  # given up like a stuck call: not flushed, not waited for again
                self.ownership.calls.stuck = True
            self.in_flight = None
        self.committer.close()
        self.ownership.close()
