"""Coordinator: assigns partitions to PartitionWorkers and keeps them owned.

Assignment is explicit (no Kafka group rebalancing). Two failure paths:

- a worker process dies: its `run` call fails with an actor error. Its
  partitions move at once to a standby worker (an idle actor started ahead,
  `processing.standby_workers`), whose process and imports are already up;
  Ray restarts the dead actor (`max_restarts`) and it becomes the next
  standby. Without a standby the Coordinator calls `run` again on the
  restarted actor. Either way the new owner fences the old one and recovers
  from checkpoint + replay.
- a worker hangs (SIGSTOP, GC pause, partition from Redis): its lease expires
  and it does not answer a ping, so its partitions go to a fresh actor. The
  hung one is not killed: if it wakes up it is fenced (Kafka producer epoch,
  Redis epoch), drops its partitions and its `run` returns "retired"; only
  then is it removed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from connectors import kafka_io
from connectors.redis_store import open_store
from streamlearn import logs
from streamlearn.config import AppConfig, config_from_wire
from streamlearn.errors import ConfigError, ServiceUnavailableError
from streamlearn.ops import status
from streamlearn.runtime import ray_api
from streamlearn.runtime.worker import PartitionWorker

log = logs.get("coordinator")
# A worker that has never held a lease gets this long to start before it counts as hung.
STARTUP_GRACE_S = 60.0
# A run loop that has not turned for owner_lease_s + this is stuck (beyond every client timeout).
STUCK_MARGIN_S = 60.0


class Coordinator:
    def __init__(self, wire_config: dict[str, Any]) -> None:
        logs.setup()
        self.wire = wire_config
        self.cfg: AppConfig = config_from_wire(wire_config)
        self.partitions: list[int] = []
        self.handles: dict[str, Any] = {}
        self.assignment: dict[str, list[int]] = {}
        self.runs: dict[str, Any] = {}
        self.launched_at: dict[str, float] = {}
        self.zombies: dict[str, Any] = {}
        self.has_owned: set[str] = set()
        self.standby: list[str] = []
        self.worker_restarts = 0
        self.replacements = 0
        self._next_id = 0
        self._relaunch_at: dict[str, float] = {}
        self._retry_s = 2.0
        self._last_monitor_error = ""
        self._stopping = threading.Event()
        self._lock = threading.RLock()
        self._monitor: threading.Thread | None = None
        self.store = open_store(self.cfg.redis, self.cfg.app, self.cfg.kafka.input_topic)
        self.consumer = kafka_io.make_consumer(self.cfg.kafka.bootstrap, self.cfg.group_id, self.cfg.kafka.consumer)

    def start(self) -> dict[str, Any]:
        k = self.cfg.kafka
        adm = kafka_io.admin(k.bootstrap, k.consumer)
        try:
            parts = kafka_io.topic_partitions(adm, k.input_topic)
        except kafka_io.KafkaUnavailable as exc:
            raise ServiceUnavailableError(f"Kafka at {k.bootstrap}: {exc}", hint="start it with `streamlearn services up` or fix kafka.bootstrap") from None
        if parts is None:
            raise ConfigError(f"kafka.input_topic: topic '{k.input_topic}' does not exist on {k.bootstrap}",
                              hint="create it, or produce to it first with `streamlearn produce -c app.yaml --input events.jsonl`")
        self.partitions = parts
        if k.create_topics:
            for t in (k.output_topic, k.dlq_topic):
                kafka_io.ensure_topic(adm, t, len(parts))
        n = min(self.cfg.processing.workers, len(parts))
        ids = [self._new_worker() for _ in range(n)]
        for i, p in enumerate(parts):
            self.assignment[ids[i % n]].append(p)
        for wid in ids:
            self._launch(wid)
        # Started after the owners, so they never delay the first assignment.
        self.standby = [self._new_worker() for _ in range(self.cfg.processing.standby_workers)]
        self._monitor = threading.Thread(target=self._watch, name="coordinator-monitor", daemon=True)
        self._monitor.start()
        logs.event(log, logging.INFO, "started", topic=k.input_topic, partitions=len(parts), workers=n)
        return {"partitions": parts, "assignment": {w: list(ps) for w, ps in self.assignment.items()}}

    # ---- workers ---------------------------------------------------------------------
    def _new_worker(self) -> str:
        wid = f"w{self._next_id}"
        self._next_id += 1
        self.handles[wid] = ray_api.spawn(
            PartitionWorker, self.wire, wid,
            name=f"PartitionWorker-{self.cfg.app}-{wid}",
            max_restarts=self.cfg.processing.max_restarts, num_cpus=1, max_concurrency=4,
        )
        self.assignment[wid] = []
        return wid

    def _launch(self, wid: str) -> None:
        self.runs[wid] = ray_api.call(self.handles[wid], "run", list(self.assignment[wid]))
        self.launched_at[wid] = time.monotonic()

    def _watch(self) -> None:
        lease_s = self.cfg.processing.owner_lease_s
        last_lease_check = time.monotonic()
        while not self._stopping.wait(0.25):
            try:
                with self._lock:
                    self._check_runs()
                    if time.monotonic() - last_lease_check >= lease_s / 4:
                        last_lease_check = time.monotonic()
                        self._check_leases()
            except Exception as exc:  # the monitor must outlive transient Redis/Kafka errors
                text = f"{type(exc).__name__}: {exc}"
                if text != self._last_monitor_error:  # one line per distinct problem, not one per tick
                    self._last_monitor_error = text
                    logs.event(log, logging.WARNING, "monitor_error", error=text)
                continue
            self._last_monitor_error = ""

    def _relaunch_due(self) -> None:
        now = time.monotonic()
        for wid, at in list(self._relaunch_at.items()):
            if now >= at:
                del self._relaunch_at[wid]
                if wid in self.handles and wid not in self.runs:
                    self._launch(wid)

    def _check_runs(self) -> None:
        self._relaunch_due()
        by_ref = {ref: wid for wid, ref in self.runs.items()}
        for ref in ray_api.ready(list(by_ref)):
            wid = by_ref[ref]
            del self.runs[wid]
            try:
                result = ray_api.get(ref)
            except ray_api.TaskError as exc:
                # run() raised (e.g. Kafka unreachable while taking ownership): retry after a pause;
                # open transactions are aborted by the next init_transactions.
                if self._stopping.is_set():
                    continue
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                if wid in self.zombies:
                    # A fenced zombie that failed on its way out is retired all the same.
                    logs.event(log, logging.WARNING, "zombie_retired", worker=wid, result=f"error: {type(cause).__name__}")
                    ray_api.kill(self.zombies.pop(wid))
                    continue
                logs.event(log, logging.WARNING, "worker_failed_retrying", worker=wid, partitions=self.assignment.get(wid, []),
                           error=f"{type(cause).__name__}: {str(cause)[:300]}", retry_in_s=self._retry_s)
                self._relaunch_at[wid] = time.monotonic() + self._retry_s
                continue
            except ray_api.ActorError as exc:
                if self._stopping.is_set():
                    continue
                if wid in self.zombies:
                    self.zombies.pop(wid, None)
                    continue
                self.worker_restarts += 1
                parts = self.assignment.get(wid, [])
                for p in parts:
                    self._count(p, "recoveries")
                logs.event(log, logging.WARNING, "worker_died_restarting", worker=wid, partitions=parts, error=type(exc).__name__)
                self._failover(wid, exhausted="restart" in str(exc).lower() and "max" in str(exc).lower())
                continue
            if wid in self.zombies:
                logs.event(log, logging.WARNING, "zombie_retired", worker=wid, result=result.get("result"), lost=result.get("lost"))
                ray_api.kill(self.zombies.pop(wid))
                continue
            if not self._stopping.is_set():
                logs.event(log, logging.WARNING, "worker_returned_early", worker=wid, result=result)
                self._launch(wid)

    def _failover(self, wid: str, *, exhausted: bool) -> None:
        """A dead worker's partitions go to a standby if there is one, else back to the restarted actor."""
        if not self.standby:
            if exhausted:
                self._replace(wid, reason="restarts exhausted")
            else:
                self._launch(wid)
            return
        spare = self.standby.pop(0)
        parts = self.assignment.pop(wid, [])
        self.assignment[spare] = parts
        logs.event(log, logging.WARNING, "partitions_moved_to_standby", dead=wid, standby=spare, partitions=parts)
        self._launch(spare)
        if exhausted:
            ray_api.kill(self.handles.pop(wid))
            self.standby.append(self._new_worker())
        else:
            # Ray is restarting it; once up it waits as the next standby.
            self.assignment[wid] = []
            self.standby.append(wid)

    def _check_leases(self) -> None:
        grace = self.cfg.processing.owner_lease_s * 2
        for wid, parts in list(self.assignment.items()):
            age = time.monotonic() - self.launched_at.get(wid, 0)
            if wid not in self.runs or not parts or age < grace:
                continue
            owners = {p: self.store.lease(p)[0] for p in parts}
            if any(o is not None and o.startswith(f"{wid}@") for o in owners.values()):
                self.has_owned.add(wid)
            expired = [p for p, o in owners.items() if o is None]
            if not expired:
                continue
            if wid not in self.has_owned and age < STARTUP_GRACE_S:
                # Never took ownership yet: still being created (slow on a busy node), not hung.
                # Replacing it now would cascade replacements that never start.
                continue
            try:
                reply = ray_api.get(ray_api.call(self.handles[wid], "ping"), timeout=2.0)
            except (ray_api.TimeoutError_, ray_api.ActorError):
                reply = None
            if reply is not None:
                if float(reply.get("loop_age_s", 0.0)) > self.cfg.processing.owner_lease_s + STUCK_MARGIN_S:
                    # The process answers but its loop has not turned for longer than any bounded
                    # Kafka/Redis call may take: stuck in a client library. Restart it (Ray
                    # re-creates the actor, its run fails, and _check_runs relaunches it).
                    logs.event(log, logging.WARNING, "worker_stuck_restarting", worker=wid, partitions=parts,
                               loop_age_s=round(float(reply["loop_age_s"]), 1))
                    ray_api.kill(self.handles[wid], restart=True)
                continue  # alive (e.g. paused on Redis): leave it be
            self._replace(wid, reason=f"lease expired on partitions {expired} and no answer to ping")

    def _replace(self, wid: str, reason: str) -> None:
        parts = self.assignment.pop(wid, [])
        old = self.handles.pop(wid)
        if wid in self.runs:
            self.zombies[wid] = old
            self.runs[f"{wid}-zombie"] = self.runs.pop(wid)
            self.zombies[f"{wid}-zombie"] = self.zombies.pop(wid)
        self.replacements += 1
        for p in parts:
            self._count(p, "recoveries")
        new = self.standby.pop(0) if self.standby else self._new_worker()
        self.assignment[new] = parts
        logs.event(log, logging.WARNING, "worker_replaced", old=wid, new=new, partitions=parts, reason=reason)
        self._launch(new)
        while len(self.standby) < self.cfg.processing.standby_workers:
            self.standby.append(self._new_worker())

    def _count(self, p: int, name: str) -> None:
        try:
            self.store.incr_counter(p, name)
        except Exception as exc:
            logs.event(log, logging.WARNING, "counter_failed", partition=p, error=type(exc).__name__)

    # ---- queries -----------------------------------------------------------------------
    def workers(self) -> dict[str, Any]:
        with self._lock:
            return {"assignment": {w: list(p) for w, p in self.assignment.items() if w not in self.standby},
                    "standby": list(self.standby), "zombies": sorted(self.zombies),
                    "worker_restarts": self.worker_restarts, "replacements": self.replacements}

    def worker_pids(self) -> dict[str, int]:
        with self._lock:
            handles = dict(self.handles)
        out = {}
        for wid, h in handles.items():
            try:
                out[wid] = ray_api.get(ray_api.call(h, "ping"), timeout=5.0)["pid"]
            except (ray_api.TimeoutError_, ray_api.ActorError):
                continue
        return out

    def status(self) -> dict[str, Any]:
        st = status.collect(self.cfg, self.store, self.consumer, self.partitions)
        st["workers"] = self.workers()
        return st

    def stop(self, timeout_s: float = 60.0) -> dict[str, Any]:
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        with self._lock:
            # Zombies too: one that re-took its partition (it won the race after waking up) owns it now.
            for h in list(self.handles.values()) + list(self.zombies.values()):
                ray_api.call(h, "stop")
            results = []
            deadline = time.monotonic() + timeout_s
            for wid, ref in list(self.runs.items()):
                try:
                    results.append(ray_api.get(ref, timeout=max(deadline - time.monotonic(), 0.1)))
                except (ray_api.TimeoutError_, ray_api.ActorError) as exc:
                    results.append({"worker": wid, "result": f"error: {type(exc).__name__}"})
            for h in list(self.handles.values()) + list(self.zombies.values()):
                ray_api.kill(h)
        return {"workers": results}
