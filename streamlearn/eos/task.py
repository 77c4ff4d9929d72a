"""The exactly-once protocol for one input partition, top to bottom.

A reviewer should be able to read this file alone and check the invariants:

  I1  every input offset has exactly one prediction visible to read_committed
  I2  a recovered model equals the model of a fault-free run
  I3  a fenced zombie can neither commit output nor overwrite a checkpoint
  I4  the Redis checkpoint offset never exceeds Kafka's committed offset

Steps, in the order they happen:

1. take_ownership: INCR the partition's epoch in Redis, then create the
   transactional producer `{app}-{topic}-{p}` and init_transactions(). The
   broker bumps the producer epoch, which fences any older owner and aborts
   its open transaction (I3 for output). The Redis epoch fences its
   checkpoints (I3 for state: the CAS refuses a stale epoch).
2. restore: load the checkpoint (R, model) — HMAC verified before unpickling —
   and Kafka's committed offset K for the group. R <= K by I4. Records in
   [R, K) are replayed through the same predict → learn sequence with no
   output (their predictions are already committed), then live processing
   starts at K. This is what makes I1 and I2 hold together.
3. process: live records go decode → predict → produce → learn inside the
   open transaction (partition.process).
4. commit: send_offsets_to_transaction(next offset) + commit_transaction():
   outputs, DLQ records and the input offset become visible atomically (I1).
5. checkpoint: only after a successful commit, so the blob reflects exactly
   the committed offset K; written by a Lua compare-and-set on (epoch,
   offset), so it never moves backwards and never comes from a zombie (I4).

at_least_once replaces 1's fencing and 4's transaction with a flush and a
Redis offset write; a crash between the two re-emits predictions.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from connectors import kafka_io
from connectors.redis_store import CAS_STALE_EPOCH, CasResult, CheckpointStore
from streamlearn import faults, logs
from streamlearn.config import AppConfig
from streamlearn.errors import CheckpointError, OwnershipLostError
from streamlearn.model import step
from streamlearn.model.codec import EventDecoder
from streamlearn.model.spec import build_metric, build_model
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState
from streamlearn.state.forked import Outcome

log = logs.get("protocol")

COMMIT_BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
_COMMIT_RETRIES = 5
_TXN_TIMEOUT_S = 30.0


class PartitionTask:
    """One owned partition: its producer, model state and protocol position."""

    def __init__(
        self,
        cfg: AppConfig,
        store: CheckpointStore,
        consumer: Consumer,
        partition_id: int,
        owner: str,
        ckpt_key: bytes,
        decoder: EventDecoder,
        is_classifier: bool,
        out_partitions: int,
        shared_producer: Producer | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.consumer = consumer
        self.p = partition_id
        self.topic = cfg.kafka.input_topic
        self.owner = owner
        self.ckpt_key = ckpt_key
        self.decoder = decoder
        self.is_classifier = is_classifier
        self.eos = cfg.processing.guarantee == "exactly_once"
        self.out_partition = partition_id % max(out_partitions, 1)
        self.producer: Producer | None = shared_producer
        self.epoch = 0
        self.state: ModelState | None = None
        self.replay_until = 0
        self.committed_offset = 0
        self.in_txn = False
        self.pending = 0
        self.ckpt_offset = -1
        self.ckpt_events = 0
        self.ckpt_time = time.monotonic()
        self.ckpt_bytes = 0
        self.ckpt_ts_ms = 0
        self.commit_hist = [0] * (len(COMMIT_BUCKETS_MS) + 1)
        self.commit_sum_ms = 0.0
        self.commits = 0
        self.phase = "starting"
        # Called on every retry of a slow step, so the worker's liveness check tells
        # "retrying within bounded timeouts" from "stuck in a client library".
        self.heartbeat: Callable[[], None] = _no_heartbeat

    def _ctx(self, **more: Any) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.p, "epoch": self.epoch, **more}

    # ---- 1. take ownership ---------------------------------------------------
    def take_ownership(self) -> None:
        self.epoch = self.store.next_epoch(self.p)
        self.store.renew_lease(self.p, self.epoch, self.owner, int(self.cfg.processing.owner_lease_s * 1000))
        if faults.ENABLED:
            faults.point("take_ownership")
        if self.eos:
            if self.producer is not None:
                self._close_producer()
            self.producer = kafka_io.make_transactional_producer(
                self.cfg.kafka.bootstrap,
                f"{self.cfg.app}-{self.topic}-{self.p}",
                self.cfg.kafka.transaction_timeout_ms,
                self.cfg.kafka.producer,
            )
            # Fences the previous owner and aborts its open transaction.
            self.heartbeat()
            self.producer.init_transactions(_TXN_TIMEOUT_S)
        self.in_txn = False
        self.pending = 0
        logs.event(log, logging.INFO, "ownership_taken", **self._ctx(owner=self.owner))

    # ---- 2. restore ------------------------------------------------------------
    def restore(self) -> int:
        """Load checkpoint R and committed K; returns R, the offset to start reading at."""
        self.heartbeat()
        low, _high = kafka_io.watermarks(self.consumer, self.topic, self.p)
        if self.eos:
            committed = kafka_io.committed_offsets(self.consumer, self.topic, [self.p])[self.p]
        else:
            committed = self.store.committed_offset(self.p)
        state = self._load_checkpoint(committed)
        if state is None:
            state = ModelState(build_model(self.cfg.model), build_metric(self.cfg.model), offset=low, model_version=0, events=0)
        if state.offset < low:
            logs.event(
                log, logging.WARNING, "retention_gap",
                **self._ctx(checkpoint_offset=state.offset, earliest_retained=low,
                            note="records before the earliest retained offset are gone; the model cannot include them"),
            )
            state.offset = low
        k = committed if committed is not None else state.offset
        k = max(k, state.offset)
        self.state = state
        self.replay_until = k
        self.committed_offset = k
        self.ckpt_offset = state.offset
        self.ckpt_events = state.events
        self.ckpt_time = time.monotonic()
        self.phase = "replaying" if k > state.offset else "running"
        logs.event(log, logging.INFO, "restored", **self._ctx(checkpoint_offset=state.offset, committed_offset=k, replay=k - state.offset))
        return state.offset

    def _load_checkpoint(self, committed: int | None) -> ModelState | None:
        policy = self.cfg.checkpoint.on_invalid
        stored = self.store.read_checkpoint(self.p)
        if stored is None:
            return None
        candidates = [("latest", stored)]
        if policy == "previous":
            prev = self.store.read_previous_checkpoint(self.p)
            if prev is not None:
                candidates.append(("previous", prev))
        for which, cand in candidates:
            try:
                state = checkpoint.decode(cand.blob, self.ckpt_key)
            except CheckpointError as exc:
                logs.event(log, logging.ERROR, "checkpoint_refused", **self._ctx(which=which, offset=cand.offset, reason=exc.message))
                self.store.incr_counter(self.p, "checkpoints_refused")
                if policy == "fail":
                    raise CheckpointError(exc.message, topic=self.topic, partition=self.p,
                                          hint="set checkpoint.on_invalid to previous or replay_earliest, or delete the key") from None
                continue
            if state.offset != cand.offset:
                logs.event(log, logging.ERROR, "checkpoint_offset_mismatch", **self._ctx(blob_offset=state.offset, stored_offset=cand.offset))
                continue
            if committed is not None and state.offset > committed:
                # Would break I4; never written by this protocol, but refuse rather than emit twice.
                logs.event(log, logging.ERROR, "checkpoint_ahead_of_commit", **self._ctx(checkpoint_offset=state.offset, committed_offset=committed))
                continue
            return state
        logs.event(log, logging.WARNING, "checkpoint_fallback_replay", **self._ctx(policy=policy))
        return None

    # ---- 3. process --------------------------------------------------------------
    def process(self, records: Sequence[Any]) -> None:
        assert self.state is not None
        if not records:
            return
        if records[0].offset() < self.state.offset:
            # Fetched before a seek (recovery): already part of the state.
            records = [r for r in records if r.offset() >= self.state.offset]
            if not records:
                return
        live_from = 0
        if self.replay_until > self.state.offset:
            # Replay [R, K): same predict → learn sequence, nothing emitted.
            while live_from < len(records) and records[live_from].offset() < self.replay_until:
                live_from += 1
            step.process(self.state, records[:live_from], self.decoder, self.p, self.is_classifier, None, None)
            if faults.ENABLED:
                faults.point("during_replay")
            if live_from < len(records) or self.state.offset >= self.replay_until:
                self.state.offset = max(self.state.offset, self.replay_until)
                self.phase = "running"
            if live_from == len(records):
                return
            records = records[live_from:]
        if self.eos and not self.in_txn:
            assert self.producer is not None
            self.producer.begin_transaction()
            self.in_txn = True
        emit, dead_letter = self._emitters()
        step.process(self.state, records, self.decoder, self.p, self.is_classifier, emit, dead_letter)
        self.pending += len(records)
        if not self.eos:
            self.in_txn = True  # "open batch": flushed and recorded at commit

    def _emitters(self) -> tuple[step.EmitPrediction, step.EmitDeadLetter]:
        producer = self.producer
        assert producer is not None
        produce = producer.produce
        out_topic = self.cfg.kafka.output_topic
        dlq_topic = self.cfg.kafka.dlq_topic
        part = self.out_partition
        app = self.cfg.app
        src_topic = self.topic
        src_part = str(self.p).encode()

        def emit(key: bytes | None, value: bytes) -> None:
            try:
                produce(out_topic, value, key, part)
            except BufferError:
                producer.flush(5)
                produce(out_topic, value, key, part)

        def dead_letter(rec: step.Record, code: str, detail: str) -> None:
            headers = list(getattr(rec, "headers", lambda: None)() or [])
            headers += [
                ("streamlearn.error.code", code.encode()),
                ("streamlearn.error", detail[:1000].encode("utf-8", "replace")),
                ("streamlearn.source.topic", src_topic.encode()),
                ("streamlearn.source.partition", src_part),
                ("streamlearn.source.offset", str(rec.offset()).encode()),
                ("streamlearn.app", app.encode()),
            ]
            try:
                produce(dlq_topic, rec.value(), rec.key(), part, headers=headers)
            except BufferError:
                producer.flush(5)
                produce(dlq_topic, rec.value(), rec.key(), part, headers=headers)
            logs.event(log, logging.INFO, "dead_letter", **self._ctx(offset=rec.offset(), code=code))

        return emit, dead_letter

    # ---- 4. commit -----------------------------------------------------------------
    def commit(self) -> bool:
        """Commit the open batch; False if it was aborted and the partition restored."""
        if not self.in_txn:
            return True
        assert self.state is not None and self.producer is not None
        if faults.ENABLED:
            faults.point("after_produce_before_commit")
        t0 = time.perf_counter()
        next_offset = self.state.offset
        if self.eos:
            ok = self._commit_transaction(next_offset)
            if not ok:
                return False
        else:
            remaining = self.producer.flush(_TXN_TIMEOUT_S)
            if remaining:
                raise kafka_io.KafkaUnavailable(f"{remaining} predictions of {self.topic}[{self.p}] not acknowledged within {_TXN_TIMEOUT_S:.0f}s")
            res = self.store.commit_offset(self.p, self.epoch, next_offset)
            if not res.ok and res.code == CAS_STALE_EPOCH:
                raise OwnershipLostError(self.topic, self.p, self.epoch, f"Redis epoch is now {res.current}")
        self._observe_commit((time.perf_counter() - t0) * 1000)
        self.in_txn = False
        self.pending = 0
        self.committed_offset = next_offset
        if faults.ENABLED:
            faults.point("after_commit_before_checkpoint")
        return True

    def _commit_transaction(self, next_offset: int) -> bool:
        """Offsets into the transaction, then commit; retry only what librdkafka says is retriable.

        The offsets must be in the transaction before it commits: committing
        predictions without their input offsets would replay (and re-emit)
        them after a restart. So a failed send_offsets is retried, never skipped.
        """
        assert self.producer is not None
        offsets = [TopicPartition(self.topic, self.p, next_offset)]
        meta = self.consumer.consumer_group_metadata()
        # One call may not outlive the transaction itself: past that the broker aborts it anyway.
        call_timeout = min(_TXN_TIMEOUT_S, self.cfg.kafka.transaction_timeout_ms / 1000)
        offsets_added = False
        for attempt in range(_COMMIT_RETRIES):
            self.heartbeat()
            try:
                if not offsets_added:
                    self.producer.send_offsets_to_transaction(offsets, meta, call_timeout)
                    offsets_added = True
                self.producer.commit_transaction(call_timeout)
                return True
            except KafkaException as exc:
                if kafka_io.is_fenced(exc):
                    # Fenced by a newer owner (then the Redis epoch moved: recover raises
                    # OwnershipLostError), or by the broker aborting our timed-out transaction
                    # (e.g. across a broker restart; nobody else owns the partition: re-own it).
                    logs.event(log, logging.WARNING, "transaction_fenced", **self._ctx(offset=next_offset, reason=str(exc.args[0])))
                    self.recover(fatal=True)
                    return False
                if (kafka_io.requires_abort(exc) or kafka_io.is_fatal(exc) or not kafka_io.is_retriable(exc)
                        or attempt == _COMMIT_RETRIES - 1):
                    logs.event(log, logging.WARNING, "transaction_aborted", **self._ctx(offset=next_offset, reason=str(exc.args[0])))
                    self.recover(fatal=kafka_io.is_fatal(exc))
                    return False
                logs.event(log, logging.WARNING, "commit_retry", **self._ctx(
                    offset=next_offset, attempt=attempt + 1, step="commit" if offsets_added else "send_offsets", reason=str(exc.args[0])))
        return False

    def recover(self, *, fatal: bool) -> None:
        """Abort the open batch and rebuild the model from checkpoint + replay (keeps I2)."""
        self.heartbeat()
        if self.eos and self.producer is not None and not fatal:
            try:
                self.producer.abort_transaction(_TXN_TIMEOUT_S)
            except KafkaException:
                # Fenced or failed: the epoch check below tells a zombie (stop) from a
                # broker-side abort of a timed-out transaction (re-own with a new producer).
                fatal = True
        self.in_txn = False
        self.pending = 0
        # A zombie must never re-take ownership (that would fence the rightful owner).
        self.ensure_owner()
        if fatal:
            self.take_ownership()
        start = self.restore()
        seek_to(self.consumer, self.topic, self.p, start)

    def ensure_owner(self) -> None:
        """OwnershipLostError if another owner has bumped the partition's Redis epoch since ours."""
        current = self.store.current_epoch(self.p)
        if current != self.epoch:
            raise OwnershipLostError(self.topic, self.p, self.epoch, f"Redis epoch is now {current}")

    def _observe_commit(self, ms: float) -> None:
        self.commits += 1
        self.commit_sum_ms += ms
        for i, bound in enumerate(COMMIT_BUCKETS_MS):
            if ms <= bound:
                self.commit_hist[i] += 1
                return
        self.commit_hist[-1] += 1

    # ---- 5. checkpoint ---------------------------------------------------------------
    def checkpoint_due(self, now: float) -> bool:
        assert self.state is not None
        if self.in_txn or self.phase != "running" or self.state.offset == self.ckpt_offset:
            return False
        pc = self.cfg.processing
        by_count = pc.checkpoint_every_events > 0 and self.state.events - self.ckpt_events >= pc.checkpoint_every_events
        by_time = pc.checkpoint_every_s > 0 and now - self.ckpt_time >= pc.checkpoint_every_s
        return by_count or by_time

    def write_checkpoint(self) -> None:
        """Only after commit: the blob reflects exactly the committed offset (I4)."""
        assert self.state is not None
        if self.in_txn or self.state.offset == self.ckpt_offset or self.phase not in ("running", "stopped"):
            return
        blob = checkpoint.encode(self.state, self.ckpt_key)
        if faults.ENABLED:
            faults.point("mid_checkpoint")
        res = self.store.write_checkpoint(self.p, self.epoch, self.state.offset, blob)
        self._checkpoint_written(res, self.epoch, self.state.offset, self.state.events, len(blob), time.monotonic())

    def apply_forked_checkpoint(self, outcome: Outcome) -> None:
        """The report of a checkpoint child (forked_checkpoint) about this partition."""
        job = outcome.job
        if job.epoch != self.epoch:
            return  # written for an ownership this task has since re-taken; the CAS judged it
        if outcome.result is None:
            logs.event(log, logging.WARNING, "checkpoint_failed", **self._ctx(offset=job.offset, error=outcome.error))
            return
        self._checkpoint_written(outcome.result, job.epoch, job.offset, job.events, outcome.nbytes, job.started)

    def _checkpoint_written(self, res: CasResult, epoch: int, offset: int, events: int, nbytes: int, started: float) -> None:
        if not res.ok:
            if res.code == CAS_STALE_EPOCH:
                raise OwnershipLostError(self.topic, self.p, epoch, f"checkpoint refused: Redis epoch is now {res.current}")
            logs.event(log, logging.ERROR, "checkpoint_backwards_refused", **self._ctx(offset=offset, stored=res.current))
            return
        if offset < self.ckpt_offset:
            return
        self.ckpt_offset = offset
        self.ckpt_events = events
        self.ckpt_time = started
        self.ckpt_bytes = nbytes
        self.ckpt_ts_ms = int(time.time() * 1000)

    # ---- lease and status ------------------------------------------------------------
    def renew_lease(self) -> None:
        res = self.store.renew_lease(self.p, self.epoch, self.owner, int(self.cfg.processing.owner_lease_s * 1000))
        if not res.ok:
            raise OwnershipLostError(self.topic, self.p, self.epoch, f"Redis epoch is now {res.current}")

    def status_fields(self, high_watermark: int | None, eps: float) -> dict[str, str | int | float]:
        assert self.state is not None
        metric = self.state.metric
        try:
            metric_value = float(metric.get())
        except Exception:
            metric_value = float("nan")
        fields: dict[str, str | int | float] = {
            "owner": self.owner,
            "pid": os.getpid(),
            "epoch": self.epoch,
            "phase": self.phase,
            "committed_offset": self.committed_offset,
            "position": self.state.offset,
            "checkpoint_offset": self.ckpt_offset,
            "checkpoint_ts_ms": self.ckpt_ts_ms,
            "checkpoint_bytes": self.ckpt_bytes,
            "events": self.state.events,
            "dlq": int(self.state.extra.get("dlq", 0)),
            "model_version": self.state.model_version,
            "metric_name": type(metric).__name__,
            "metric_value": metric_value,
            "eps": round(eps, 1),
            "commits": self.commits,
            "commit_sum_ms": round(self.commit_sum_ms, 3),
            "commit_hist": ",".join(map(str, self.commit_hist)),
            "updated_ms": int(time.time() * 1000),
        }
        if high_watermark is not None:
            fields["high_watermark"] = high_watermark
            fields["lag"] = max(high_watermark - self.state.offset, 0)
        return fields

    # ---- shutdown ----------------------------------------------------------------------
    def _close_producer(self) -> None:
        if self.producer is not None and self.eos:
            try:
                self.producer.flush(5)
            except KafkaException as exc:
                # A fenced or fatally failed producer has nothing left that could ever commit.
                logs.event(log, logging.INFO, "producer_closed_with_error", **self._ctx(error=str(exc.args[0])[:200]))
        self.producer = None

    def close(self) -> None:
        self._close_producer()


def _no_heartbeat() -> None:
    return None


def seek_to(consumer: Consumer, topic: str, partition_id: int, offset: int) -> None:
    tp = TopicPartition(topic, partition_id, offset)
    try:
        consumer.seek(tp)
    except KafkaException:
        consumer.incremental_unassign([TopicPartition(topic, partition_id)])
        consumer.incremental_assign([tp])
