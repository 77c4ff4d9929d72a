"""Coordinator: the Ray actor that assigns partitions to PartitionWorkers and keeps them owned.

Assignment is explicit (no Kafka group rebalancing). This module wires the
decisions (`supervisor`: what to do when a run ends or a lease lapses) to
the real world: the topic's partitions from Kafka, leases and counters in
Redis, actors through `ray_api`, and a monitor thread that turns the crank.
It also serves the queries (`status`, `workers`, `worker_pids`) and the
graceful stop. How failures are handled is documented in `supervisor`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from connectors import kafka_io
from connectors.autoscale_store import AutoscaleStore
from connectors.redis_store import open_store
from connectors.rescale_store import RescaleStore
from streamlearn import logs
from streamlearn.config import AppConfig, ProcessingConfig, config_from_wire
from streamlearn.ops import status
from streamlearn.runtime import autoscale, ray_api, scaler, stop_settle
from streamlearn.runtime.autoscale_record import DecisionRecorder
from streamlearn.runtime.nodes import NodeMap
from streamlearn.runtime.placement import Placement
from streamlearn.runtime.roster import Role
from streamlearn.runtime.supervisor import Supervisor
from streamlearn.runtime.topic_listing import PartitionLister
from streamlearn.runtime.worker import PartitionWorker

log = logs.get("coordinator")
PIDS_PING_TIMEOUT_S = 5.0
# How often the monitor lists the input topic's partitions: a partition added while running
# is owned within this (plus a worker's start-up).
PARTITIONS_CHECK_S = 10.0
# How often processing.autoscale samples the lag (autoscale.SAMPLES of them are averaged).
AUTOSCALE_TICK_S = 5.0
MONITOR_TICK_S = 0.25  # the monitor's turn when nothing happens (a run that ends wakes it at once)
SCALE_CHECK_S = 0.5  # how often the monitor looks for a `streamlearn scale` request (and says it is alive)


def worker_names(app: str) -> tuple[str, str]:
    """(namespace, name prefix) of an app's PartitionWorkers: detached actors, found again by name."""
    return f"streamlearn-{app}", f"PartitionWorker-{app}-"


def kill_workers(app: str) -> int:
    """Kill every PartitionWorker of the app still alive in the cluster; how many there were."""
    handles = ray_api.named(*worker_names(app))
    for handle in handles.values():
        ray_api.kill(handle)
    return len(handles)


class Coordinator:
    def __init__(self, wire_config: dict[str, Any]) -> None:
        logs.setup()
        self.wire = wire_config
        self.cfg: AppConfig = config_from_wire(wire_config)
        self.partitions: list[int] = []
        self._last_monitor_error = ""
        self.lister = PartitionLister(self.cfg)
        self._lock = threading.RLock()
        self._monitor: threading.Thread | None = None
        self.store = open_store(self.cfg.redis, self.cfg.app, self.cfg.kafka.input_topic)
        self.consumer = kafka_io.make_consumer(self.cfg.kafka.bootstrap, self.cfg.group_id, self.cfg.kafka.consumer)
        self._old_consumers: list[Any] = []
        self._nodes = NodeMap(ray_api, time.monotonic)
        self.placement = Placement(ray_api.cpu_nodes, self._nodes.node_of, time.monotonic)
        self.sup = Supervisor(ray_api, self._spawn, lambda p: self.store.lease(p)[0], self._count,
                              lease_s=self.cfg.processing.owner_lease_s, standby_workers=self.cfg.processing.standby_workers,
                              refill_delay_s=self.cfg.processing.standby_refill_delay_s,
                              stuck_after_s=self.cfg.processing.stuck_after_s,
                              placement=self.placement)
        self.namespace, self.worker_prefix = worker_names(self.cfg.app)
        scaling = self.cfg.processing.autoscale
        self.autoscaler = autoscale.Autoscaler(scaling, time.monotonic) if scaling.enabled else None
        self.decisions = DecisionRecorder(AutoscaleStore(self.store), self.cfg.kafka.input_topic)
        self.requests = RescaleStore(self.store)
        self._applied_seq = int(self.requests.state().get("seq", 0))  # a restarted Coordinator applies what is pending
        if ray_api.restarted():
            self._rebuild()

    def start(self) -> dict[str, Any]:
        parts = self._list_partitions(starting=True)
        kill_workers(self.cfg.app)  # a previous run's, whose driver was killed: fenced anyway
        n = min(self.cfg.processing.workers, len(parts))
        pending = self.requests.pending(-1)  # requests left from an earlier run are not this run's
        self._applied_seq = pending[0] if pending is not None else 0
        with self._lock:
            assignment = self.sup.start(parts, n)
        self._start_monitor()
        logs.event(log, logging.INFO, "started", topic=self.cfg.kafka.input_topic, partitions=len(parts), workers=n)
        return {"partitions": parts, "assignment": assignment}

    def _rebuild(self) -> None:
        """Ray restarted this actor: take over the workers that kept running (see `adoption`)."""
        parts = self._list_partitions()
        found = {name.removeprefix(self.worker_prefix): h for name, h in ray_api.named(self.namespace, self.worker_prefix).items()}
        with self._lock:
            self.sup.adopt(parts, found)
        self._start_monitor()

    def _list_partitions(self, *, starting: bool = False) -> list[int]:
        """The input partitions to own (see `topic_listing`); remembered for status and the next listing."""
        self.partitions = self.lister.partitions(known=self.partitions, starting=starting)
        return self.partitions

    def _pick_up_new_partitions(self) -> None:
        """The input topic gained partitions while running: assign them (Kafka read outside the lock)."""
        known = set(self.partitions)
        parts = self._list_partitions()
        new = sorted(set(parts) - known)
        if new:
            # A fresh consumer for status: the old one's metadata does not know the new
            # partitions yet ("Unknown partition" on their watermarks for minutes). The old one
            # may be in use by a status call right now: it is closed at stop, not here.
            self._old_consumers.append(self.consumer)
            self.consumer = kafka_io.make_consumer(self.cfg.kafka.bootstrap, self.cfg.group_id, self.cfg.kafka.consumer)
            with self._lock:
                self.sup.add_partitions(new)

    def _start_monitor(self) -> None:
        self._monitor = threading.Thread(target=self._watch, name="coordinator-monitor", daemon=True)
        self._monitor.start()

    def _spawn(self, wid: str) -> Any:
        # Detached: the workers outlive a Coordinator crash and keep their partitions (`adoption`).
        # On a cluster, pinned (softly) away from the owners' nodes (`placement`); else SPREAD.
        node = self.placement.node_for_new(wid, self.sup.roster.workers.values())
        logs.event(log, logging.INFO, "worker_placed", topic=self.cfg.kafka.input_topic, worker=wid, node=node or "any")
        return ray_api.spawn(
            PartitionWorker, self.wire, wid, name=f"{self.worker_prefix}{wid}", namespace=self.namespace,
            max_restarts=worker_max_restarts(self.cfg.processing), num_cpus=1, max_concurrency=8, spread=True, node=node,
        )

    def _count(self, p: int, name: str) -> None:
        try:
            self.store.incr_counter(p, name)
        except Exception as exc:
            logs.event(log, logging.WARNING, "counter_failed", partition=p, error=type(exc).__name__)

    def scale(self, n: int, reason: str = "api", progress: scaler.Progress | None = None) -> dict[str, Any]:
        """Change the number of owning workers while running (planned hand-offs, `scaler`); a plain
        method, so that the monitor thread (scale requests, an autoscaler) can call it as well as Ray."""
        with self._lock:
            return scaler.scale(self.sup, self.partitions, n, reason, progress or (lambda _msg: None))

    def _serve_scale_request(self) -> None:
        self._applied_seq = scaler.serve_request(self.requests, self._applied_seq, self.scale)

    def _watch(self) -> None:
        next_listing = time.monotonic() + PARTITIONS_CHECK_S
        next_autoscale = time.monotonic() + AUTOSCALE_TICK_S
        next_scale_check = 0.0
        while not self._next_turn():
            if self.autoscaler is not None and time.monotonic() >= next_autoscale:
                next_autoscale = time.monotonic() + AUTOSCALE_TICK_S
                try:
                    self._autoscale_tick()
                except Exception as exc:  # Kafka or Redis away: no sample this time, supervision goes on
                    logs.event(log, logging.WARNING, "autoscale_sample_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            if time.monotonic() >= next_scale_check:
                next_scale_check = time.monotonic() + SCALE_CHECK_S
                try:
                    self._serve_scale_request()
                except Exception as exc:  # Redis away: the request waits, supervision goes on
                    logs.event(log, logging.WARNING, "scale_request_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            if time.monotonic() >= next_listing:
                next_listing = time.monotonic() + PARTITIONS_CHECK_S
                try:
                    self._pick_up_new_partitions()
                except Exception as exc:  # Kafka away: try again next time, keep supervising meanwhile
                    logs.event(log, logging.WARNING, "partition_listing_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            try:
                with self._lock:
                    self.sup.tick()
                    self._nodes.tick({w.wid: w.handle for w in self.sup.roster.live()})
                    self.placement.forget(self.sup.roster.workers)
            except Exception as exc:  # the monitor must outlive transient Redis/Kafka errors
                text = f"{type(exc).__name__}: {exc}"
                if text != self._last_monitor_error:  # one line per distinct problem, not one per tick
                    self._last_monitor_error = text
                    logs.event(log, logging.WARNING, "monitor_error", error=text)
                continue
            self._last_monitor_error = ""

    def _next_turn(self) -> bool:
        """Wait for the next monitor turn (MONITOR_TICK_S, or as soon as a run ends: a worker that
        dies is replaced at once, not up to a tick later); True once stopping."""
        with self._lock:
            refs = list(self.sup.roster.running())
            probes = list(self.sup.roster.probing())  # a restarted worker that answers gets its run at once
        if ray_api.wait_any(refs + probes, MONITOR_TICK_S):
            return self.sup.stopping.wait(0.01)  # never a busy loop, should a finished run stay unsettled
        return self.sup.stopping.wait(0 if refs or probes else MONITOR_TICK_S)

    # ---- autoscaling (processing.autoscale; the decision rules are in runtime/autoscale.py) ---
    def _autoscale_tick(self) -> None:
        """One lag sample; on a decision, ask Ray for the room and resize the app."""
        assert self.autoscaler is not None
        lag = autoscale.total_lag(status.collect(self.cfg, self.store, self.consumer, self.partitions))
        with self._lock:
            owners = len(self.sup.roster.with_role(Role.OWNER))
        desired = self.autoscaler.decide(lag, owners, partitions=len(self.partitions))
        self.decisions.note(self.autoscaler, owners, desired)
        if desired is None:
            return
        # Room for the owners and the standbys (one CPU each): a cluster's autoscaler adds nodes for it.
        refused = ray_api.request_resources(desired + self.cfg.processing.standby_workers)
        logs.event(log, logging.WARNING, "autoscale_decided", topic=self.cfg.kafka.input_topic, lag=lag, workers=owners,
                   desired=desired, reason=self.autoscaler.reason, resource_request=refused or "made")
        self.scale(desired, reason=self.autoscaler.reason)

    # ---- queries -----------------------------------------------------------------------
    def workers(self) -> dict[str, Any]:
        """The roster's view (fields kept to the letter), plus "nodes": each live worker's Ray node."""
        with self._lock:
            view = self.sup.roster.view()
            view["nodes"] = self._nodes.view([w.wid for w in self.sup.roster.live()])
            return view

    def worker_pids(self) -> dict[str, int]:
        with self._lock:
            handles = {w.wid: w.handle for w in self.sup.roster.live()}
        out = {}
        for wid, h in handles.items():  # outside the lock: a hung worker must not stall the monitor
            reply = self.sup.ping(h, PIDS_PING_TIMEOUT_S)
            if reply is not None:
                out[wid] = reply["pid"]
        return out

    def _owners(self) -> list[tuple[list[int], bool, Any]]:
        """(partitions, run in flight, handle) of each owner, for `stop_settle`."""
        with self._lock:
            return [(list(w.partitions), w.run is not None, w.handle) for w in self.sup.roster.with_role(Role.OWNER)]

    def alive(self) -> bool:
        """The driver's liveness check when nothing reads the status (no progress line, no idle stop)."""
        return True

    def status(self) -> dict[str, Any]:
        st = status.collect(self.cfg, self.store, self.consumer, self.partitions)
        st["workers"] = self.workers()
        return st

    def stop(self, timeout_s: float = 60.0) -> dict[str, Any]:
        t0 = time.monotonic()
        if self._monitor is not None and self._monitor.is_alive():  # it keeps handling deaths meanwhile
            stop_settle.wait_for_owners(self._owners, self.sup.ping, min(stop_settle.SETTLE_S, timeout_s / 2))
        timeout_s = max(timeout_s - (time.monotonic() - t0), timeout_s / 2)
        self.sup.stopping.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        while self._old_consumers:
            self._old_consumers.pop().close()
        with self._lock:
            return {"workers": self.sup.stop_all(timeout_s)}


def worker_max_restarts(pc: ProcessingConfig) -> int:
    """Ray's restarts of a PartitionWorker: 0 with a standby refill delay. Ray starts a restart's process at
    the death, before the Coordinator hears of it, so ending the restart then saved only the actor's own
    imports (measured: the new process's 1.1-1.4 CPU-s still fell into the takeover). A dead worker is replaced
    by a fresh actor instead: its partitions to the standby at once, the next standby after the delay."""
    return 0 if pc.standby_refill_delay_s > 0 and pc.standby_workers > 0 else pc.max_restarts
