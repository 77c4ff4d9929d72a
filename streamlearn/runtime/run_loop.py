"""One call of `PartitionWorker.run`: the loop that drives a worker's partition tasks.

Split from the actor (`worker`) along its seam: the actor answers the
Coordinator's calls from other threads (ping, stop, hand-off requests, join);
this is the single thread that owns the consumer and the tasks. The loop is:
poll → process per partition, each for at most one commit interval (what is
left waits for the next turn, see `intake`) → commit each partition at its
staggered deadline → checkpoint what is due (in a forked child, with the partitions
close to due joining it, or inline) →
renew leases and publish status; hand-off requests (`handoff`) are served
between commit cycles.
"""


from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import TopicPartition

from connectors import kafka_io
from connectors.redis_store import open_store
from connectors.rescale_store import RescaleStore
from streamlearn import logs
from streamlearn.config import AppConfig
from streamlearn.eos.commit import CommitCadence
from streamlearn.eos.heartbeat import Heartbeat
from streamlearn.eos.inflight import wait_any
from streamlearn.eos.phase import Phase
from streamlearn.eos.task import PartitionTask
from streamlearn.errors import OwnershipLostError
from streamlearn.model.codec import EventDecoder
from streamlearn.model.spec import build_model, model_kind
from streamlearn.runtime import checkpoint_rounds, warm
from streamlearn.runtime.checkpoint_rounds import CHECKPOINT_JOIN_SHARE
from streamlearn.runtime.handoff import Handoffs
from streamlearn.runtime.intake import Backlog
from streamlearn.runtime.loop_timing import TurnTimer
from streamlearn.runtime.redis_pause import RedisPause
from streamlearn.state import checkpoint, forked
from streamlearn.state.forked import ForkedCheckpointer, Outcome

log = logs.get("worker")

#: Longest a graceful stop spends finishing replays (`Run._finish_replays`) before it checkpoints.
REPLAY_AT_STOP_S = 30.0
#: A poll's longest wait while a commit is in flight: its end is applied (and the partition goes on) this soon.
IN_FLIGHT_POLL_S = 0.002


class Run:
    """One call of `PartitionWorker.run`: its clients, the tasks it drives, and its loop."""

    def __init__(self, cfg: AppConfig, owner: str, partitions: list[int], stop: threading.Event, heartbeat: Heartbeat,
                 clients: warm.Clients | None = None) -> None:
        self.called_at = time.monotonic()  # start of the run: clients, then ownership and restore (logged by `start`)
        self.cfg = cfg
        self.stop = stop
        self.heartbeat = heartbeat
        pc = cfg.processing
        self.topic = cfg.kafka.input_topic
        # A standby's clients were connected while it waited (`warm`); otherwise made here.
        clients = clients if clients is not None else warm.connect(cfg)
        self.store, self.consumer = clients.store, clients.consumer
        out_parts, dlq_limit = clients.out_partitions, clients.dlq_limit
        kind = model_kind(build_model(cfg.model))
        decoder = EventDecoder(cfg.fields, is_classifier=kind.is_classifier, is_multiclass=kind.is_multiclass,
                               classes=cfg.model.classes, max_value_bytes=pc.max_value_bytes)
        secret = cfg.signing_secret()  # ConfigError without a secret unless checkpoint.allow_dev_key
        base_key = secret if secret is not None else checkpoint.dev_key(cfg.app)
        self.shared = None if pc.guarantee == "exactly_once" else kafka_io.make_producer(cfg.kafka.bootstrap, cfg.kafka.producer, engine=True)
        self.backlog = Backlog()
        self.with_redis = RedisPause(cfg, stop, heartbeat, lambda phase: setattr(self, "phase", phase))
        self.forker = (ForkedCheckpointer(lambda: open_store(cfg.redis, cfg.app, cfg.kafka.input_topic),  # the child's own connection
                                          timeout_s=cfg.checkpoint.child_timeout_s)
                       if cfg.checkpoint.background and forked.AVAILABLE else None)
        self.partition_ids = tuple(partitions)  # read by ping from another thread: replaced, never mutated
        self.phase = "restoring"
        self.lost: list[int] = []
        self.new_task: Callable[[int], PartitionTask] = lambda p: PartitionTask(
            cfg, self.store, self.consumer, p, owner, checkpoint.partition_key(base_key, cfg.app, self.topic, p), decoder,
            kind.is_classifier, out_parts, self.shared, heartbeat, self.with_redis.for_partition(lambda q: self.tasks.get(q), p), dlq_limit)
        self.tasks = {p: self.new_task(p) for p in partitions}
        self.rescale = RescaleStore(self.store)
        self.handoffs = Handoffs()
        self.retiring = False  # the last partition left was lost to another owner: the run ends
        # A due checkpoint round is waiting for a child in flight (`_dispatch_checkpoints`): the loop
        # checks again every turn, commits or not (an idle partition would otherwise wait for new data).
        self.round_waiting = False

    def start(self) -> None:
        """Steps 1 and 2 for every partition, then read each from where its restore says."""
        t_init = time.monotonic()
        assignment = self.take_ownership(list(self.tasks.values()), restore=True)
        self.consumer.assign(assignment)
        self.phase = "running"
        logs.event(log, logging.INFO, "run_started", topic=self.topic, partitions=list(self.partition_ids),
                   clients_ms=round((t_init - self.called_at) * 1000, 1), takeover_ms=round((time.monotonic() - t_init) * 1000, 1))

    def loop(self) -> str:
        """Until stopped, or until every partition is lost to another owner ("retired"); hand-offs between cycles."""
        pc = self.cfg.processing
        commit_every = pc.commit_interval_ms / 1000.0
        poll_s = min(pc.poll_timeout_ms / 1000.0, commit_every)
        cadence = CommitCadence(self.tasks, commit_every, pc.max_batch, time.monotonic())
        eos = pc.guarantee == "exactly_once"
        last_status = 0.0
        turn = TurnTimer(topic=self.topic)
        try:
            while (self.tasks or not self.retiring) and not self.stop.is_set():
                turn.start()
                self.handoffs.serve(self)
                now = self.heartbeat.beat()
                self._poll_and_process(poll_wait(cadence, self.tasks, poll_s, now), now + commit_every, defer_commits=eos)
                turn.mark("poll_process")
                now = time.monotonic()
                # exactly_once commits run in flight (`eos.inflight`): the next turns process the other partitions.
                # Due by the cadence, or because the batch used its time budget mid-turn (`commit_wanted`).
                idle = {p: t for p, t in self.tasks.items() if t.in_flight is None}
                committing = cadence.due({p: t.batch.records for p, t in idle.items()}, now)
                committing += [p for p, t in idle.items() if t.commit_wanted and p not in committing]
                self.each([self.tasks[p] for p in committing], PartitionTask.start_commit)
                finished = self._finish_commits()
                if not committing and not finished and not self.round_waiting:
                    turn.end()
                    continue
                self.handoffs.after_commits(self)
                turn.mark("commit")
                # Checkpoints only for partitions whose transaction was just committed, before they process
                # more (checkpoint_due refuses an open batch, or one in flight): the blob is exactly the state
                # at the committed offset (I4).
                inline = self._dispatch_checkpoints(now)
                turn.mark("checkpoint_fork")
                publish = now - last_status >= pc.status_interval_s
                if inline or publish:
                    elapsed = (now - last_status if last_status else 0.0) if publish else None
                    on_pause = self._commit_all if pc.guarantee == "exactly_once" else None
                    self.with_redis(list(self.tasks.values()), self._checkpoint_and_publish, inline, elapsed, on_pause=on_pause)
                    if publish:
                        last_status = now
                    turn.mark("redis")
                turn.end()
        finally:
            turn.close()
        return "retired" if self.retiring and not self.tasks else "stopped"

    def finish(self) -> None:
        """Graceful stop: finish replays, wait for checkpoint children, commit what is open, checkpoint everything."""
        self._finish_replays()
        if self.forker is not None:
            self.apply_forked(self.forker.poll(wait=True))
        self._commit_all()
        if self.tasks:
            self.with_redis(list(self.tasks.values()), self.each, self.tasks.values(), PartitionTask.stop, give_up_on_stop=True)

    def _finish_replays(self) -> None:
        """A partition stopped while it replays [R, K) would keep its checkpoint at R, behind its committed
        output (seen when a stop came right after a recovery: the previous owner had committed everything).
        Nothing is lost (the next start replays again), but a graceful stop should leave the model it
        checkpoints equal to a fault-free run's, so the replay, learning only and at most about one
        checkpoint interval of records, is finished first, within REPLAY_AT_STOP_S. Partitions already
        running may process (and commit, below) what the same polls return: ordinary exactly-once work."""
        self._commit_all()  # nothing in flight from here on: these turns commit only synchronously
        pc = self.cfg.processing
        commit_every = pc.commit_interval_ms / 1000.0
        deadline = time.monotonic() + REPLAY_AT_STOP_S
        while any(t.phase is Phase.REPLAYING for t in self.tasks.values()) and time.monotonic() < deadline:
            now = self.heartbeat.beat()
            self._poll_and_process(min(pc.poll_timeout_ms / 1000.0, commit_every), now + commit_every)
        for t in self.tasks.values():
            if t.phase is Phase.REPLAYING:
                logs.event(log, logging.WARNING, "stopped_mid_replay", **t.ownership.ctx(
                    offset=t.state.offset if t.state is not None else None, committed=t.committed_offset))

    def close(self) -> None:
        if self.forker is not None:
            self.forker.close()
        for t in self.tasks.values():
            t.close()
        if self.shared is not None:
            self.shared.flush(10)
        self.consumer.close()

    # ---- the steps, for each task still owned ------------------------------------------
    def take_ownership(self, tasks: list[PartitionTask], *, restore: bool = False) -> list[TopicPartition]:
        """All partitions at once: init_transactions waits about 0.5 s on the transaction
        coordinator, so taking N partitions one after another would add N × 0.5 s to every
        start and every recovery. Each task has its own producer; nothing is shared but the
        (thread-safe) Redis and consumer clients. `restore`: each partition restores in its
        thread right after its own init_transactions (the protocol's order, per partition)
        instead of after the slowest partition's; returns what to assign."""
        def own(t: PartitionTask) -> list[TopicPartition]:
            self.with_redis([t], t.take_ownership)
            return t.assignment(self.with_redis([t], t.restore)) if restore else []

        try:
            if len(tasks) <= 1:  # none: a run started empty, waiting for a hand-off
                return [tp for t in tasks for tp in own(t)]
            with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="take-ownership") as pool:
                return [tp for fut in [pool.submit(own, t) for t in tasks] for tp in fut.result()]
        except BaseException:
            for t in tasks:
                t.close()
            raise

    def _poll_and_process(self, wait_s: float, until: float, defer_commits: bool = False) -> None:
        """Poll (up to `max_batch` records held), then give each partition its turn until `until`.

        `defer_commits`: a partition whose batch used its time budget stops and is committed (in
        flight) at the end of the turn, instead of the loop waiting for that commit here.

        A partition whose commit is in flight keeps what was fetched for it until the commit is
        applied, and the poll goes on for the others (`Backlog.fill` appends). The poll does not
        wait while held records are ready to process; while a commit is in flight it waits at most
        IN_FLIGHT_POLL_S, so the commit's end is seen soon. Only when `max_batch` records are held,
        all for partitions in flight, is there nothing to do but wait for a commit."""
        flying = {p: t.in_flight for p, t in self.tasks.items() if t.in_flight is not None}
        held = self.backlog.partitions()
        if held - flying.keys():
            wait_s = 0.0
        elif flying:
            if self.backlog.count() >= self.cfg.processing.max_batch:
                wait_any(list(flying.values()), wait_s)
                return
            wait_s = min(wait_s, IN_FLIGHT_POLL_S)
        restores = {p: t.restores for p, t in self.tasks.items()}
        self.backlog.fill(self.consumer, self.cfg.processing.max_batch, wait_s, restores, self.topic)
        for p, records in self.backlog.take(restores):
            task = self.tasks.get(p)
            if task is not None and task.in_flight is not None:
                self.backlog.keep(p, restores[p], records)
            elif task is not None:
                rest = self._guarded(task, task.process, records, until, defer_commits)
                if rest and self.tasks.get(p) is task:
                    self.backlog.keep(p, task.restores, list(rest))

    def _commit_all(self) -> None:
        """Every open batch committed, and every commit in flight applied, before returning."""
        self.each(self.tasks.values(), PartitionTask.commit)

    def _commit_together(self, tasks: list[PartitionTask]) -> None:
        """Commit these partitions' open batches at once and wait for them: all between commits after.

        Every transaction starts before any is waited for, so the wait is the slowest commit,
        not their sum (the reason commits are staggered, `eos.commit.CommitCadence`)."""
        self.each([t for t in tasks if t.in_flight is None], PartitionTask.start_commit)
        self.each([t for t in tasks if t.in_flight is not None], PartitionTask.finish_commit)

    def _finish_commits(self) -> int:
        """Apply the verdict of every in-flight commit that has ended, and give up overdue ones; how many."""
        done = [t for t in self.tasks.values() if t.in_flight is not None and t.in_flight.done()]
        self.each(done, PartitionTask.finish_commit)
        now = time.perf_counter()
        overdue = [t for t in self.tasks.values() if t.overdue_commit(now)]
        self.each(overdue, PartitionTask.give_up_commit)
        return len(done) + len(overdue)

    def _dispatch_checkpoints(self, now: float) -> list[PartitionTask]:
        """Due checkpoints go to forked children (one in flight per partition), a round at a time
        (`runtime.checkpoint_rounds`); returns those to write inline."""
        if self.forker is None:
            return [t for t in self.tasks.values() if t.checkpoint_due(now)]
        # Children's reports first: a partition whose child has just landed is not due again.
        self.apply_forked(self.forker.poll())
        in_flight = self.forker.in_flight
        plan = checkpoint_rounds.plan(list(self.tasks.values()), in_flight, now)
        self.round_waiting = plan.waiting  # checked again next turn (`loop`); batches opened meanwhile commit to join
        due = list(plan.due)
        if plan.joining:
            self._commit_together(plan.joining)
            due += [t for t in plan.joining if self.tasks.get(t.partition_id) is t and t.checkpoint_due(now, CHECKPOINT_JOIN_SHARE)]
        ready = [t for t in due if t.partition_id in self.tasks]  # `plan` leaves out partitions with a child in flight
        inline = [t for t in ready if self.forker.take_inline(t.partition_id)]  # its last child timed out
        ready = [t for t in ready if t not in inline]
        if ready:
            try:
                self.forker.start([t.checkpoint_snapshot() for t in ready])
            except OSError as exc:  # no fork (memory, process limit): write these inline
                logs.event(log, logging.WARNING, "checkpoint_fork_failed", topic=self.topic, error=str(exc))
                return inline + ready
        return inline

    def apply_forked(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            task = self.tasks.get(outcome.job.partition_id)
            if task is not None:
                if outcome.timed_out:
                    self._guarded(task, self.store.incr_counter, task.partition_id, "checkpoint_child_timeouts")
                self._guarded(task, task.apply_forked_checkpoint, outcome)

    def _checkpoint_and_publish(self, inline: list[PartitionTask], elapsed: float | None) -> None:
        """Inline checkpoints; then, when it is time (`elapsed` since the last publish), leases and status."""
        self.each(inline, PartitionTask.write_checkpoint)
        if elapsed is not None:
            self.each(self.tasks.values(), lambda t: _renew_and_publish(t, elapsed))

    def each(self, tasks: Iterable[PartitionTask], action: Callable[[PartitionTask], object]) -> None:
        """Run a step on each task still owned; one found fenced is dropped, the others go on."""
        for task in list(tasks):
            if self.tasks.get(task.partition_id) is task:
                self._guarded(task, action, task)

    def _guarded(self, task: PartitionTask, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except OwnershipLostError as exc:
            logs.event(log, logging.WARNING, "ownership_lost", topic=exc.topic, partition=exc.partition, epoch=exc.epoch, reason=exc.message)
            self.drop(task)
            self.lost.append(task.partition_id)
            self.retiring = not self.tasks
            return None

    def drop(self, task: PartitionTask) -> None:
        """Stop reading a partition and forget it (lost to another owner, or released)."""
        del self.tasks[task.partition_id]
        task.close()
        self.backlog.drop(task.partition_id)
        tps = [TopicPartition(tp.topic, tp.partition) for tp in task.assignment(0)]
        # librdkafka keeps a partition's pause across unassign and assign: one paused here (label pacing,
        # a halt) must not come back paused if this worker is handed it again.
        self.consumer.resume(tps)
        self.consumer.incremental_unassign(tps)
        self.partition_ids = tuple(sorted(self.tasks))

    def adopt_tasks(self, tasks: list[PartitionTask], assignment: list[TopicPartition]) -> None:
        """Restored tasks handed over by another worker: read them from their restore offsets."""
        self.tasks.update({t.partition_id: t for t in tasks})
        self.consumer.incremental_assign(assignment)
        self.partition_ids = tuple(sorted(self.tasks))
        self.retiring = False


def poll_wait(cadence: CommitCadence, tasks: dict[int, PartitionTask], poll_s: float, now: float) -> float:
    """How long this turn's poll may wait: until the next commit deadline of a partition that can commit.

    A partition whose commit is in flight cannot commit again before that commit lands, so its
    deadline (passed, once its batch was cut by the time budget) does not count: it made every
    wait zero and the loop spun, tens of thousands of empty turns a run, taking a core and the GIL
    from the commit thread and the broker it was waiting for (`bench/results/raw/loop-spin-s33/`)."""
    return max(0.0, min(poll_s, cadence.soonest(p for p, t in tasks.items() if t.in_flight is None) - now))


def _renew_and_publish(task: PartitionTask, elapsed_s: float) -> None:
    task.renew_lease()  # OwnershipLostError here: dropped, no status published for it
    task.publish_status(elapsed_s)
