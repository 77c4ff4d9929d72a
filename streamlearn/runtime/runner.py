"""The driver behind `streamlearn run`: start Ray, the Coordinator, wait, stop cleanly.

SIGINT/SIGTERM set a flag; the loop then asks the Coordinator to stop every
worker, which commits or aborts its open transactions and writes final
checkpoints before `run` returns. A SIGKILL of the driver takes the local
Ray cluster with it; the next start fences the old transactional ids and
recovers from checkpoints.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from streamlearn import logs
from streamlearn.config import AppConfig
from streamlearn.ops.status import check_services
from streamlearn.runtime import ray_api
from streamlearn.runtime.coordinator import Coordinator, kill_workers

log = logs.get("runner")
StatusHook = Callable[[dict[str, Any]], None]
StopWhen = Callable[[dict[str, Any]], bool]
# The Coordinator's status call failed but it lives on, or Ray is restarting it on the head
# (it then takes over the running workers by itself: `adoption`).
_TRANSIENT = (ray_api.Failure.RAISED, ray_api.Failure.RESTARTING, ray_api.Failure.LOST)


class Runner:
    def __init__(self, cfg: AppConfig, ray_address: str | None = None) -> None:
        self.cfg = cfg
        self.ray_address = ray_address
        self.stop_requested = threading.Event()
        self.coordinator: Any = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_requested.set()

    def run(
        self,
        on_status: StatusHook | None = None,
        stop_when: StopWhen | None = None,
        status_every_s: float = 1.0,
        install_signals: bool = True,
    ) -> dict[str, Any]:
        if self.cfg.signing_secret() is None:  # ConfigError unless checkpoint.allow_dev_key
            logs.event(log, logging.WARNING, "checkpoint_dev_key",
                       note="checkpoints are signed with the per-app development key (checkpoint.allow_dev_key: true): "
                            "anyone who knows the app name can forge one; set STREAMLEARN_CHECKPOINT_SECRET in production")
        check_services(self.cfg)
        pc = self.cfg.processing
        # A local instance reserves room for the most owners autoscaling may ask for, not only the
        # start count: otherwise its last worker (or the standby) would never get a CPU slot.
        most = max(pc.workers, pc.autoscale.max_workers) if pc.autoscale.enabled else pc.workers
        ray_api.init(self.ray_address, most + pc.standby_workers, self.cfg.ray.worker_niceness,
                     metrics=self.cfg.ray.metrics, idle_workers=self.cfg.ray.idle_workers)
        # After ray.init: Ray installs a fatal-signal handler for SIGTERM (abort, no
        # graceful stop) when it starts the core worker; ours must replace it.
        if install_signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)
        last: dict[str, Any] = {}
        try:
            self.coordinator = ray_api.spawn(Coordinator, self.cfg.to_wire(), name=f"Coordinator-{self.cfg.app}", num_cpus=0,
                                             max_concurrency=8, on_head=True, max_restarts=-1)
            ray_api.get(ray_api.call(self.coordinator, "start"))
            # The full status reads every partition's keys in Redis and its watermarks from the broker:
            # asked for only when a hook reads it; otherwise a ping tells that the Coordinator is alive.
            wants_status = on_status is not None or stop_when is not None
            while not self.stop_requested.wait(status_every_s):
                out = ray_api.outcome(ray_api.call(self.coordinator, "status" if wants_status else "alive"), timeout=30)
                if out.failure is ray_api.Failure.TIMEOUT:
                    continue
                if out.failure in _TRANSIENT:  # status is best effort (Kafka briefly away, the Coordinator restarting)
                    logs.event(log, logging.WARNING, "status_failed", failure=out.failure.value, error=out.describe())
                    continue
                if not wants_status:
                    out.unwrap()  # the Coordinator is gone for good: nothing left to drive
                    continue
                last = out.unwrap()
                if on_status is not None:
                    on_status(last)
                if stop_when is not None and stop_when(last):
                    break
            self._stop_coordinator(deadline_s=120)
            last = ray_api.get(ray_api.call(self.coordinator, "status"), timeout=30)
            if on_status is not None:
                on_status(last)
            return last
        finally:
            if self.coordinator is not None:
                ray_api.kill(self.coordinator)
                # Workers are detached (they outlive a Coordinator restart): on a cluster they
                # would outlive the driver too. After a graceful stop there are none left.
                kill_workers(self.cfg.app)
            ray_api.shutdown()

    def _stop_coordinator(self, deadline_s: float) -> None:
        """Ask the Coordinator to stop every worker, waiting out a restart of it in between."""
        deadline = time.monotonic() + deadline_s
        while True:
            out = ray_api.outcome(ray_api.call(self.coordinator, "stop"), timeout=max(deadline - time.monotonic(), 1.0))
            if out.failure not in (ray_api.Failure.RESTARTING, ray_api.Failure.LOST) or time.monotonic() > deadline:
                out.unwrap()
                return
            self.stop_requested.wait(1.0)

