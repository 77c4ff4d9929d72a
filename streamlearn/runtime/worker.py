"""PartitionWorker: the Ray actor that owns some input partitions.

One consumer (explicit `assign()`, no group rebalancing) feeds every owned
partition; each partition has its own PartitionTask (producer, model,
protocol position). The loop is: poll → process per partition → every
`commit_interval_ms` commit each open transaction → checkpoint what is due →
renew leases and publish status. Redis calls happen only between commit
cycles, when no transaction is open, so a Redis outage pauses the worker
without holding back read_committed readers.

The class is plain Python; `ray_api` turns it into an actor, so the loop can
be driven in-process by tests and benchmarks.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connectors import kafka_io
from connectors.redis_store import CheckpointStore, open_store, redacted
from streamlearn import logs
from streamlearn.config import AppConfig, config_from_wire
from streamlearn.eos.task import PartitionTask
from streamlearn.errors import OwnershipLostError
from streamlearn.model.codec import EventDecoder
from streamlearn.model.spec import build_model, model_kind
from streamlearn.state import checkpoint, forked
from streamlearn.state.forked import ForkedCheckpointer, Outcome

log = logs.get("worker")
_REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


class PartitionWorker:
    """Owns partitions, runs the protocol for each, until stopped or fenced everywhere."""

    def __init__(self, wire_config: dict[str, Any], worker_id: str) -> None:
        logs.setup()
        self.cfg: AppConfig = config_from_wire(wire_config)
        self.worker_id = worker_id
        self.owner = f"{worker_id}@{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._partitions: list[int] = []
        self._phase = "idle"
        self._lock = threading.Lock()
        self._beat = time.monotonic()  # last sign of life of the run loop (ping reports its age)

    # ---- control (called from other threads of the actor) ------------------------
    def ping(self) -> dict[str, Any]:
        with self._lock:
            return {"worker": self.worker_id, "pid": os.getpid(), "partitions": list(self._partitions), "phase": self._phase,
                    "loop_age_s": time.monotonic() - self._beat if self._partitions else 0.0}

    def stop(self) -> None:
        self._stop.set()

    def _touch(self) -> None:
        self._beat = time.monotonic()

    # ---- main loop -------------------------------------------------------------------
    def run(self, partitions: list[int]) -> dict[str, Any]:
        self._stop.clear()
        self._beat = time.monotonic()
        cfg = self.cfg
        pc = cfg.processing
        topic = cfg.kafka.input_topic
        store = open_store(cfg.redis, cfg.app, topic)
        consumer = kafka_io.make_consumer(cfg.kafka.bootstrap, cfg.group_id, cfg.kafka.consumer)
        adm = kafka_io.admin(cfg.kafka.bootstrap, cfg.kafka.consumer)
        out_parts = len(kafka_io.topic_partitions(adm, cfg.kafka.output_topic) or [0])
        kind = model_kind(build_model(cfg.model))
        decoder = EventDecoder(cfg.fields, is_classifier=kind.is_classifier, is_multiclass=kind.is_multiclass,
                               classes=cfg.model.classes, max_value_bytes=pc.max_value_bytes)
        secret = cfg.checkpoint_secret()
        ckpt_key = secret if secret is not None else checkpoint.dev_key(cfg.app)
        shared = None if pc.guarantee == "exactly_once" else kafka_io.make_producer(cfg.kafka.bootstrap, cfg.kafka.producer)

        tasks: dict[int, PartitionTask] = {}
        lost: list[int] = []
        forker = self._forker(cfg, topic)
        with self._lock:
            self._partitions = list(partitions)
            self._phase = "restoring"
        for p in partitions:
            task = PartitionTask(cfg, store, consumer, p, self.owner, ckpt_key, decoder, kind.is_classifier, out_parts, shared)
            task.heartbeat = self._touch
            tasks[p] = task
        self._take_ownership(store, list(tasks.values()))
        assignment = [TopicPartition(topic, p, self._with_redis(store, [task], task.restore)) for p, task in tasks.items()]
        consumer.assign(assignment)
        with self._lock:
            self._phase = "running"

        last_status = 0.0
        last_events = {p: t.state.events for p, t in tasks.items() if t.state is not None}
        commit_every = pc.commit_interval_ms / 1000.0
        poll_s = min(pc.poll_timeout_ms / 1000.0, commit_every)
        # Staggered commit deadlines: partition i of n commits at phase i/n of the interval.
        # One transaction commit costs a few ms; committing all n back to back made the
        # last partition's records wait for n commits, every interval (the latency tail).
        started = time.monotonic()
        next_commit = {p: started + commit_every * (i + 1) / len(tasks) for i, p in enumerate(sorted(tasks))}
        def commit_all() -> None:
            self._commit(consumer, tasks, list(tasks), lost)
        on_redis_pause = commit_all if pc.guarantee == "exactly_once" else None
        result = "stopped"
        try:
            while tasks and not self._stop.is_set():
                self._beat = now = time.monotonic()
                soonest = min(next_commit[p] for p in tasks)
                msgs = _poll_batch(consumer, pc.max_batch, max(0.0, min(poll_s, soonest - now)))
                if msgs:
                    by_part: dict[int, list[Any]] = defaultdict(list)
                    for m in msgs:
                        err = m.error()
                        if err is not None:
                            if err.code() != KafkaError._PARTITION_EOF:
                                logs.event(log, logging.DEBUG, "consume_error", topic=topic, error=str(err))
                            continue
                        by_part[m.partition()].append(m)
                    for p, recs in by_part.items():
                        owned = tasks.get(p)
                        if owned is not None:
                            self._process(consumer, tasks, p, recs, lost)
                now = time.monotonic()
                committing = [p for p, t in tasks.items() if next_commit[p] <= now or t.pending >= pc.max_batch]
                if not committing:
                    continue
                for p in committing:
                    nxt = next_commit[p] + commit_every
                    next_commit[p] = nxt if nxt > now else now + commit_every
                self._commit(consumer, tasks, committing, lost)
                # Checkpoints only for partitions whose transaction was just committed (checkpoint_due
                # refuses an open one): the blob is exactly the state at the committed offset (I4).
                due = [t for t in tasks.values() if t.checkpoint_due(now)]
                if forker is not None:
                    self._apply_forked(consumer, tasks, lost, forker.poll())
                    ready = [t for t in due if t.p not in forker.in_flight]
                    due = []
                    if ready:
                        try:
                            forker.start(ready)
                        except OSError as exc:  # no fork (memory, process limit): write these inline
                            logs.event(log, logging.WARNING, "checkpoint_fork_failed", topic=topic, error=str(exc))
                            due = ready
                publish = now - last_status >= pc.status_interval_s
                if due or publish:
                    elapsed = now - last_status if last_status else 0.0
                    self._with_redis(store, list(tasks.values()), self._checkpoint_and_publish,
                                     store, consumer, tasks, due, lost, last_events, elapsed, publish, on_pause=on_redis_pause)
                    if publish:
                        last_status = now
            if not tasks:
                result = "retired"
            if forker is not None:
                self._apply_forked(consumer, tasks, lost, forker.poll(wait=True))
            # Graceful stop: commit what is open, checkpoint everything.
            self._commit(consumer, tasks, list(tasks), lost)
            if tasks:
                self._with_redis(store, list(tasks.values()), self._final_checkpoint, store, consumer, tasks, lost, give_up_on_stop=True)
        finally:
            if forker is not None:
                forker.close()
            for t in tasks.values():
                t.close()
            if shared is not None:
                shared.flush(10)
            consumer.close()
            with self._lock:
                self._partitions = []
                self._phase = result
        logs.event(log, logging.INFO, "worker_done", worker=self.worker_id, result=result, lost=lost)
        return {"worker": self.worker_id, "result": result, "lost": lost, "pid": os.getpid()}

    def _forker(self, cfg: AppConfig, topic: str) -> ForkedCheckpointer | None:
        if not (cfg.checkpoint.background and forked.AVAILABLE):
            return None

        # The opener runs in the child: a connection of its own.
        return ForkedCheckpointer(lambda: open_store(cfg.redis, cfg.app, topic))

    def _apply_forked(self, consumer: Any, tasks: dict[int, PartitionTask], lost: list[int], outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            task = tasks.get(outcome.job.partition)
            if task is None:
                continue
            try:
                task.apply_forked_checkpoint(outcome)
            except OwnershipLostError as exc:
                self._drop(consumer, tasks, task.p, lost, exc)

    def _take_ownership(self, store: CheckpointStore, tasks: list[PartitionTask]) -> None:
        """All partitions at once: init_transactions waits about 0.5 s on the transaction
        coordinator, so taking N partitions one after another would add N × 0.5 s to every
        start and every recovery. Each task has its own producer; nothing is shared but the
        (thread-safe) Redis client."""
        try:
            if len(tasks) == 1:
                self._with_redis(store, tasks, tasks[0].take_ownership)
                return
            with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="take-ownership") as pool:
                for fut in [pool.submit(self._with_redis, store, [t], t.take_ownership) for t in tasks]:
                    fut.result()
        except BaseException:
            for t in tasks:
                t.close()
            raise

    def _process(self, consumer: Any, tasks: dict[int, PartitionTask], p: int, recs: list[Any], lost: list[int]) -> None:
        """process() with the producer failing fatally mid-batch (typically: fenced, we are a zombie)."""
        task = tasks[p]
        try:
            try:
                task.process(recs)
            except KafkaException as exc:
                if not kafka_io.is_fatal(exc):
                    # A zombie can see its fencing first as a non-fatal state error (librdkafka learns
                    # of it asynchronously): if the epoch moved, leave through ownership_lost, not a crash.
                    task.ensure_owner()
                    raise
                logs.event(log, logging.WARNING, "producer_fatal", topic=task.topic, partition=p, epoch=task.epoch, error=str(exc.args[0])[:200])
                # Aborts the batch; raises OwnershipLostError if another owner holds the partition now.
                task.recover(fatal=True)
        except OwnershipLostError as exc:
            self._drop(consumer, tasks, p, lost, exc)

    def _drop(self, consumer: Any, tasks: dict[int, PartitionTask], p: int, lost: list[int], exc: OwnershipLostError) -> None:
        logs.event(log, logging.WARNING, "ownership_lost", topic=exc.topic, partition=exc.partition, epoch=exc.epoch, reason=exc.message)
        task = tasks.pop(p)
        task.close()
        lost.append(p)
        consumer.incremental_unassign([TopicPartition(self.cfg.kafka.input_topic, p)])
        with self._lock:
            self._partitions = sorted(tasks)

    def _final_checkpoint(self, store: CheckpointStore, consumer: Any, tasks: dict[int, PartitionTask], lost: list[int]) -> None:
        for p in list(tasks):
            task = tasks[p]
            try:
                task.write_checkpoint()
            except OwnershipLostError as exc:
                self._drop(consumer, tasks, p, lost, exc)
                continue
            task.phase = "stopped"
            store.publish_status(p, task.status_fields(kafka_io.cached_high_watermark(consumer, task.topic, p), 0.0))
            store.release_lease(p, self.owner)

    def _checkpoint_and_publish(
        self,
        store: CheckpointStore,
        consumer: Any,
        tasks: dict[int, PartitionTask],
        due: list[PartitionTask],
        lost: list[int],
        last_events: dict[int, int],
        elapsed: float,
        publish: bool,
    ) -> None:
        for task in due:
            if task.p not in tasks:
                continue
            try:
                task.write_checkpoint()
            except OwnershipLostError as exc:
                self._drop(consumer, tasks, task.p, lost, exc)
        if not publish:
            return
        topic = self.cfg.kafka.input_topic
        for p in list(tasks):
            task = tasks[p]
            try:
                task.renew_lease()
            except OwnershipLostError as exc:
                self._drop(consumer, tasks, p, lost, exc)
                continue
            assert task.state is not None
            ev = task.state.events
            eps = (ev - last_events.get(p, ev)) / elapsed if elapsed > 0 else 0.0
            last_events[p] = ev
            store.publish_status(p, task.status_fields(kafka_io.cached_high_watermark(consumer, topic, p), eps))

    def _commit(self, consumer: Any, tasks: dict[int, PartitionTask], partitions: list[int], lost: list[int]) -> None:
        """Commit these partitions' open batches; a fenced one is dropped."""
        for p in partitions:
            if p not in tasks:
                continue
            try:
                tasks[p].commit()
            except OwnershipLostError as exc:
                self._drop(consumer, tasks, p, lost, exc)

    def _with_redis(self, store: CheckpointStore, tasks: list[PartitionTask], fn: Any, *args: Any, give_up_on_stop: bool = False,
                    on_pause: Any = None) -> Any:
        """Run fn; while Redis is unreachable, pause (one log line per partition) and retry.

        `on_pause` runs once before the pause: with staggered commits some transactions are
        open at any moment, and a pause must not hold them open (read_committed readers would
        wait on them, and the broker would abort them at transaction.timeout.ms).
        """
        paused = False
        while True:
            try:
                out = fn(*args)
            except _REDIS_ERRORS as exc:
                if not paused:
                    paused = True
                    if on_pause is not None:
                        on_pause()
                    with self._lock:
                        self._phase = "paused"
                    url = redacted(self.cfg.redis.url.get_secret_value())
                    for t in tasks:
                        logs.event(log, logging.WARNING, "redis_unreachable_pausing", topic=t.topic, partition=t.p, epoch=t.epoch,
                                   committed_offset=t.committed_offset, redis=url, error=type(exc).__name__)
                if give_up_on_stop and self._stop.is_set() and paused:
                    # Stopping with Redis down: the commit is done; the next owner replays from the last checkpoint.
                    return None
                self._beat = time.monotonic()  # paused on purpose, not stuck
                self._stop.wait(self.cfg.processing.redis_retry_s)
                continue
            if paused:
                with self._lock:
                    self._phase = "running"
                for t in tasks:
                    logs.event(log, logging.WARNING, "redis_back_resuming", topic=t.topic, partition=t.p, epoch=t.epoch)
            return out


def _poll_batch(consumer: Any, max_batch: int, wait_s: float) -> list[Any]:
    """Whatever is fetched, as soon as there is something: wait for one record, then drain.

    `consume(n, timeout)` waits until it has n records or the timeout passes, so at a
    moderate rate every record sat out the whole poll timeout before it was even
    predicted. The wait is also cut at the next commit deadline, so a commit is never late
    because the loop was waiting for input.
    """
    first = consumer.poll(wait_s)
    if first is None:
        return []
    if max_batch <= 1:
        return [first]
    return [first, *consumer.consume(num_messages=max_batch - 1, timeout=0)]
