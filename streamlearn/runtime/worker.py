"""PartitionWorker: the Ray actor that owns some input partitions.

One consumer (explicit `assign()`, no group rebalancing) feeds every owned
partition; each partition has its own `eos.task.PartitionTask` (producer,
model, protocol position). The worker drives the tasks and the tasks drive
the protocol's steps; nothing below calls back up here. This class is the
actor's face: the Coordinator's calls (ping, stop, hand-off requests,
join_run) arrive on other threads of the actor, while one `run_loop.Run`
per `run` call owns the consumer and the tasks on its own thread. Redis
calls happen between commit cycles, when no transaction is open, so a Redis
outage pauses the worker without holding back read_committed readers; the
few a step makes inside a cycle (a recovery's epoch check and re-take, the
at_least_once offset write) go through the same pause (`redis_pause`), so an
outage never fails a run.

The class is plain Python; `ray_api` turns it into an actor, so the loop can
be driven in-process by tests and benchmarks.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import traceback
from typing import Any

from confluent_kafka import KafkaException

from streamlearn import logs
from streamlearn.config import AppConfig, config_from_wire
from streamlearn.eos import status as published
from streamlearn.eos.heartbeat import Heartbeat
from streamlearn.runtime import heap, niceness, orphan_watch, ray_api, warm
from streamlearn.runtime.run_loop import Run

log = logs.get("worker")
#: A ping while the run loop has not turned for this long also returns where the loop thread is:
#: the Coordinator logs it with `worker_stuck_restarting`, so a stuck client call names itself.
LOOP_STACK_AFTER_S = 10.0
LOOP_STACK_FRAMES = 8


def thread_stack(ident: int | None, frames: int = LOOP_STACK_FRAMES) -> list[str]:
    """The innermost `frames` frames of thread `ident` as "file:line in function" (oldest first); [] if gone."""
    frame = sys._current_frames().get(ident) if ident is not None else None
    if frame is None:
        return []
    return [f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}" for f in traceback.extract_stack(frame)[-frames:]]


class PartitionWorker:
    """Owns partitions, runs the protocol for each, until stopped or fenced everywhere."""

    def __init__(self, wire_config: dict[str, Any], worker_id: str) -> None:
        logs.setup()
        self.cfg: AppConfig = config_from_wire(wire_config)
        self.worker_id = worker_id
        self.owner = f"{worker_id}@{socket.gethostname()}:{os.getpid()}"
        self.node = ray_api.node()  # {} outside Ray; in the ping and in every partition's published status
        published.NODE.update(self.node)
        # A Ray worker process: its heap is ours to tune (not a test's or a benchmark's driver).
        self._settle = heap.settle if self.node else None
        if self.node:  # inside Ray: the parent is the node's raylet (`orphan_watch`)
            orphan_watch.watch_parent(worker_id)
            niceness.check(self.cfg.ray.worker_niceness, worker=worker_id, **self.node)
        self._stop = threading.Event()
        self._heartbeat = Heartbeat()  # last sign of life of the run loop (ping reports its age)
        self._loop_thread: int | None = None  # the thread of the run in flight (its stack goes in a late ping)
        self._run: Run | None = None
        self._phase = "idle"  # outside a run: idle, then the last run's result
        self._idle = threading.Condition()  # notified when a run ends (join_run waits on it)
        self._last_result: dict[str, Any] = {"worker": worker_id, "result": "idle", "lost": [], "pid": os.getpid()}
        # Clients connected while this worker waits (a standby's head start on a takeover).
        self._standby: warm.Standby | None = warm.Standby(self.cfg, worker_id, self._settle)

    # ---- control (called from other threads of the actor) ------------------------
    def ping(self) -> dict[str, Any]:
        run = self._run
        partitions = list(run.partition_ids) if run is not None else []
        loop_age = self._heartbeat.age() if partitions else 0.0
        stuck = {"loop_stack": thread_stack(self._loop_thread)} if loop_age > LOOP_STACK_AFTER_S else {}
        # "lost": partitions this run dropped to another owner, so the Coordinator can hand
        # on any that nobody holds (a worker that answers pings is otherwise left alone).
        return {"worker": self.worker_id, "pid": os.getpid(), "partitions": partitions,
                "lost": list(run.lost) if run is not None else [],
                "phase": run.phase if run is not None else self._phase,
                "loop_age_s": loop_age, **stuck,
                # The forked checkpoint children's memory belongs to this worker's footprint.
                "checkpoint_children_rss_bytes": run.forker.rss_bytes() if run is not None and run.forker is not None else 0,
                **self.node}

    def stop(self) -> None:
        self._stop.set()

    def release(self, partitions: list[int], timeout_s: float = 60.0) -> dict[str, Any]:
        """Planned hand-off, old owner: commit, final checkpoint, lease released, dropped (`handoff`)."""
        return self._handoff("release", partitions, timeout_s)

    def add(self, partitions: list[int], timeout_s: float = 60.0) -> dict[str, Any]:
        """Planned hand-off, new owner: the running run takes them over (`handoff`)."""
        return self._handoff("add", partitions, timeout_s)

    def _handoff(self, kind: str, partitions: list[int], timeout_s: float) -> dict[str, Any]:
        run = self._run
        if run is None:
            raise RuntimeError(f"worker {self.worker_id} has no run in flight to {kind} {partitions}")
        return run.handoffs.submit(kind, partitions).wait(timeout_s)

    def join_run(self) -> dict[str, Any]:
        """Wait for the run in flight to end; what it returned (its last result if none is in flight).

        A restarted Coordinator has lost the refs of the runs it started: this call gives it
        one to watch instead, which ends (or fails with the process) as the run does.
        """
        with self._idle:
            self._idle.wait_for(lambda: self._run is None)
            return self._last_result

    # ---- main loop -------------------------------------------------------------------
    def run(self, partitions: list[int]) -> dict[str, Any]:
        if self._run is not None:  # a run left empty by a hand-off (a restarted Coordinator saw a standby)
            self.add(partitions)
            return self.join_run()
        self._stop.clear()
        self._heartbeat.beat()
        self._loop_thread = threading.get_ident()
        if self._settle is not None:
            self._settle()  # idempotent: next to nothing when the standby's warm-up has done it
        clients = self._standby.take() if self._standby is not None else None
        self._standby = None
        run = Run(self.cfg, self.owner, partitions, self._stop, self._heartbeat, clients)
        self._run = run
        result = "stopped"
        try:
            run.start()  # inside the try: a failed start must not leave join_run waiting on it
            result = run.loop()
            run.finish()
        except KafkaException as exc:
            # Its KafkaError cannot be pickled: Ray would hand the Coordinator "isn't serializable"
            # instead of the reason. The run is retried either way (`Supervisor.settle`).
            raise RuntimeError(f"worker {self.worker_id} partitions {list(partitions)}: Kafka call failed: "
                               f"{exc.args[0] if exc.args else exc}") from None
        finally:
            run.handoffs.cancel(f"run ended: {result}")
            run.close()
            self._phase = result
            with self._idle:
                self._last_result = {"worker": self.worker_id, "result": result, "lost": run.lost, "pid": os.getpid()}
                self._run = None
                self._standby = warm.Standby(self.cfg, self.worker_id, self._settle)  # for the next run, if any
                self._idle.notify_all()
        logs.event(log, logging.INFO, "worker_done", worker=self.worker_id, result=result, lost=run.lost)
        return self._last_result
