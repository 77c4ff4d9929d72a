"""Step 5, checkpoint: when one is due, writing it, and applying what a forked writer reports.

A checkpoint is taken only right after a commit (the task refuses while a
batch is open), so the blob reflects exactly the committed offset K (I4).
It is written by a Lua compare-and-set on (epoch, offset) that refuses a
stale epoch (I3: a zombie's checkpoint never lands) and a lower offset.
Written here inline, or by a forked child (`state.forked`) from an immutable
`Snapshot`, whose report comes back through `apply`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.redis_store import CAS_STALE_EPOCH, CasResult, CheckpointStore
from streamlearn import faults, logs
from streamlearn.config import AppConfig, ProcessingConfig
from streamlearn.errors import OwnershipLostError
from streamlearn.models.publisher import Publisher, publish
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState
from streamlearn.state.forked import Outcome, Snapshot

log = logs.get("protocol")


def progress(state: ModelState) -> int:
    """How far the state has read: the input offset, plus the label offset in label mode
    (a chunk of labels alone moves the join and the model, so it must make a checkpoint due too)."""
    join = state.extra.get("labels")
    return state.offset + (join.label_offset if join is not None else 0)


@dataclass
class Checkpoints:
    """One partition's checkpoint schedule and the last checkpoint known written."""

    pc: ProcessingConfig
    store: CheckpointStore
    topic: str
    partition_id: int
    ckpt_key: bytes
    ctx: Callable[..., dict[str, Any]]  # log context of the partition's current ownership
    offset: int = -1  # offset of the last checkpoint written (or restored from)
    events: int = 0
    started: float = field(default_factory=time.monotonic)  # when that checkpoint's state was taken
    nbytes: int = 0
    ts_ms: int = 0  # wall clock of the last write, for status
    progress: int = -1  # progress(state) of that checkpoint: nothing new read since, nothing to write
    # Model versions ride on checkpoints: a candidate is taken with a checkpoint's snapshot and
    # published by the same writer once that checkpoint landed (models.publisher).
    publisher: Publisher | None = None

    @classmethod
    def of(cls, cfg: AppConfig, store: CheckpointStore, partition_id: int, ckpt_key: bytes, is_classifier: bool,
           ctx: Callable[..., dict[str, Any]]) -> Checkpoints:
        """A partition's checkpoints, with a publisher when model versions are published (model.publish.every_s)."""
        publisher = Publisher(cfg, partition_id, ckpt_key, is_classifier) if cfg.model.publish.every_s > 0 else None
        return cls(cfg.processing, store, cfg.kafka.input_topic, partition_id, ckpt_key, ctx, publisher=publisher)

    def restored(self, state: ModelState) -> None:
        """The restored state is the last checkpoint: the schedule counts from it."""
        self.offset = state.offset
        self.events = state.events
        self.progress = progress(state)
        self.started = time.monotonic()
        if self.publisher is not None:
            self.publisher.restored(state)

    def due(self, state: ModelState, now: float, share: float = 1.0) -> bool:
        """Something new to write, and `share` of an interval (by events or by time) since the last checkpoint.

        By events only once `checkpoint_min_interval_s` (times `share`) has passed since the last one as well: a
        fast stream checkpoints by count at most once per that interval (a fork and a Redis write each).

        A `share` under 1 asks whether this partition is close enough to due to join another's
        checkpoint round (`runtime.run_loop`); a model version due to publish counts only when due."""
        if progress(state) == self.progress:
            return False
        every_events, every_s = self.pc.checkpoint_every_events, self.pc.checkpoint_every_s
        since = now - self.started
        by_count = (every_events > 0 and state.events - self.events >= every_events * share
                    and since >= self.pc.checkpoint_min_interval_s * share)
        by_time = every_s > 0 and since >= every_s * share
        return by_count or by_time or (self.publisher is not None and self.publisher.due(state, now))

    def _after(self, state: ModelState, epoch: int, final: bool = False) -> Callable[[ModelState, CheckpointStore], str] | None:
        """The publish hook for this checkpoint, when a version is due (taken now, after the commit)."""
        if self.publisher is None or not self.publisher.due(state, time.monotonic(), final):
            return None
        return functools.partial(publish, self.publisher.candidate(state, epoch))

    def write(self, state: ModelState, epoch: int, *, final: bool = False) -> None:
        """Inline: encode, sign and CAS-write the state as it is now (the caller has just committed).

        `final` (a graceful stop): also publish what was learned since the last version, due or not.
        """
        after = self._after(state, epoch, final)
        ok = True
        if progress(state) != self.progress:
            blob = checkpoint.encode(state, self.ckpt_key)
            if faults.ENABLED:
                faults.point("mid_checkpoint")
            res = self.store.write_checkpoint(self.partition_id, epoch, state.offset, blob)
            self._written(res, epoch, state.offset, state.events, len(blob), time.monotonic(), progress(state))
            ok = res.ok
        if ok and after is not None and self.publisher is not None:
            self.publisher.reported(after(state, self.store))  # inline: at a stop, or where fork() is unavailable

    def snapshot(self, state: ModelState, epoch: int) -> Snapshot:
        """What a forked writer needs, fixed now: the fork copies `state` as it is at this moment."""
        return Snapshot(self.partition_id, epoch, state.offset, state.events, state, self.ckpt_key, progress(state),
                        after=self._after(state, epoch))

    def apply(self, outcome: Outcome, epoch: int) -> None:
        """The report of a forked checkpoint child about this partition, owned now at `epoch`."""
        job = outcome.job
        if job.epoch != epoch:
            return  # written for an ownership this task has since re-taken; the CAS judged it
        if outcome.after and self.publisher is not None:
            self.publisher.reported(outcome.after)
        if outcome.result is None:
            logs.event(log, logging.WARNING, "checkpoint_failed", **self.ctx(offset=job.offset, error=outcome.error))
            return
        self._written(outcome.result, job.epoch, job.offset, job.events, outcome.nbytes, job.started, job.progress)

    def _written(self, res: CasResult, epoch: int, offset: int, events: int, nbytes: int, started: float, prog: int) -> None:
        if not res.ok:
            if res.code == CAS_STALE_EPOCH:
                raise OwnershipLostError(self.topic, self.partition_id, epoch, f"checkpoint refused: Redis epoch is now {res.current}")
            logs.event(log, logging.ERROR, "checkpoint_backwards_refused", **self.ctx(offset=offset, stored=res.current))
            return
        if offset < self.offset or prog < self.progress:
            return
        self.offset = offset
        self.progress = prog
        self.events = events
        self.started = started
        self.nbytes = nbytes
        self.ts_ms = int(time.time() * 1000)
