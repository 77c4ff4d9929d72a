"""The autoscaler's decisions written down (`connectors.autoscale_store`), for `streamlearn status` and metrics.

Why a module of its own: the Coordinator only wires the autoscaler to the
rescale; what counts as a decision worth recording is decided here. A change
(up or down) is always recorded. A change held back by the cooldown is
recorded once per wanted count, not at every lag sample (one every 5 s would
push the real decisions out of the bounded list). Writing the record must
never stop the rescale: a Redis error is logged and the decision goes on.
"""

from __future__ import annotations

import logging

from connectors.autoscale_store import AutoscaleStore
from streamlearn import logs
from streamlearn.runtime.autoscale import Autoscaler

log = logs.get("coordinator")


class DecisionRecorder:
    def __init__(self, store: AutoscaleStore, topic: str) -> None:
        self.store, self.topic = store, topic
        self._held: int | None = None  # the count last recorded as held, until a change or nothing is held

    def note(self, scaler: Autoscaler, workers: int, desired: int | None) -> None:
        """After `scaler.decide(...)` returned `desired` with `workers` owning: record what deserves it."""
        if desired is not None:
            self._held = None
            self._write("up" if desired > workers else "down", workers, desired, scaler.lag, scaler.reason)
            return
        if scaler.held is None:
            self._held = None
            return
        wanted, lag, left_s = scaler.held
        if wanted == self._held:
            return
        self._held = wanted
        self._write("held", workers, wanted, lag, f"held: cooldown, {left_s:.0f} s left (lag {lag:.0f} asks for {wanted} workers)")

    def _write(self, direction: str, workers: int, desired: int, lag: float, reason: str) -> None:
        try:
            self.store.record(direction, workers, desired, lag, reason)
        except Exception as exc:  # Redis away: the decision stands, only its record is lost
            logs.event(log, logging.WARNING, "autoscale_record_failed", topic=self.topic, direction=direction,
                       error=f"{type(exc).__name__}: {str(exc)[:200]}")
