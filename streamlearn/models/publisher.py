"""Publishing: which state becomes a candidate version, and what the forked child does with it.

The rule is the checkpoint's: a candidate is taken only right after a
successful commit (the protocol's checkpoint step hands it over with the
checkpoint snapshot), so a version reflects exactly the committed offset K;
and it is written by the same forked copy-on-write child after that
checkpoint has landed, so pickling, signing, gating and the Redis write never
block the stream. The Redis write checks the owner's epoch like the
checkpoint CAS: a fenced zombie never publishes.

In the task (`Publisher`): the schedule (`model.publish.every_s`) and the
bounded window of labelled events the gate compares on, filled by the
learning step: the inline hot path (`model.step`) or, with `labels.source:
topic`, the join (`labels.join.Joiner.observe`), live and in replay alike.
In the child (`publish`): sign → gate → reserve a version number → write +
announce, or count the refusal under its reason.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from connectors.redis_store import CheckpointStore
from connectors.version_store import VersionStore
from streamlearn import logs
from streamlearn.config import AppConfig
from streamlearn.errors import CheckpointError
from streamlearn.model.spec import build_metric
from streamlearn.models import blob, gate
from streamlearn.models.gate import Labelled
from streamlearn.models.record import make_meta, spec_hash
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState

log = logs.get("publish")
REFUSED_COUNTER = "publish_refused:"  # + reason, in the partition's counters hash
Observe = Callable[[Labelled], None]
#: The label join records the gate window from this many times the time a window takes to learn before a candidate.
ARM_MARGIN = 2.0


@dataclass(frozen=True)
class Candidate:
    """What the child needs besides the state: fixed when the snapshot is taken."""

    cfg: AppConfig
    partition_id: int
    epoch: int
    key: bytes
    window: tuple[Labelled, ...]
    is_classifier: bool


class Publisher:
    """One partition's publishing schedule and gate window (lives in its task)."""

    def __init__(self, cfg: AppConfig, partition_id: int, key: bytes, is_classifier: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.partition_id, self.key, self.is_classifier = cfg, partition_id, key, is_classifier
        self.every_s = cfg.model.publish.every_s
        self.size = cfg.model.publish.gate.window
        self.window: deque[Labelled] = deque(maxlen=self.size)
        self.observe: Observe = self.window.append  # called by the hot path with (features, label, prediction)
        self.clock = clock
        self.started = clock()
        self.offset = -1  # offset of the last candidate taken
        self.last = ""  # the last child's report, for status
        self.mark = (self.started, 0)  # (time, model_version) the learning rate is measured from (`observer`)
        self.rate = 0.0  # steps learned a second between the last two candidates (0: not known)
        self.recording = True  # the label join fed the window at its last chunk
        self.missed = False  # a chunk was not recorded since the last candidate (`observer`)
        self.resumed: int | None = None  # model_version when recording resumed after that chunk

    def restored(self, state: ModelState) -> None:
        """Restored from a checkpoint: published before, or due once new events are learned.

        The window restarts empty and the replay refills it through `observe` (inline replay and the
        label journal's replay run the same learning steps as the live run): entries of an aborted
        batch would otherwise be counted twice, and the window never depends on how the state was reached.
        """
        self.offset = state.offset
        self.window.clear()
        self.mark, self.rate, self.recording = (self.clock(), state.model_version), 0.0, True
        self.missed, self.resumed = False, None

    def observer(self, learned: int) -> Observe | None:
        """For the label join, at each chunk (`learned`: the model's version): the window's feed, or None.

        Why: in label mode each joined label costs a prediction for the window (`labels.join`), about a tenth
        of the join's CPU per event, and only the last `gate.window` before a candidate are ever compared.
        The join records from ARM_MARGIN times the time a window takes to learn (at the rate since the last
        candidate, or the one before while nothing was learned since), and always while no rate is known
        (`gate.window` more steps than that, at a steady rate, so the window is the last ones learned).
        """
        now = self.clock()
        t0, v0 = self.mark
        since = learned - v0
        rate = since / (now - t0) if since > 0 and now > t0 else self.rate
        on = rate <= 0 or now - self.started >= self.every_s - ARM_MARGIN * self.size / rate
        if not on:
            self.missed, self.resumed = True, None
        elif not self.recording:
            self.resumed = learned
        self.recording = on
        return self.observe if on else None

    def due(self, state: ModelState, now: float, final: bool = False) -> bool:
        """Every `every_s` when something new was learned; at a graceful stop (`final`), whenever it was.

        If the join skipped steps since the last candidate (`observer`), the candidate also waits until
        `gate.window` steps were learned since it resumed recording, for at most one more `every_s` (the labels
        slowed down or stopped): the gate then compares on what the window holds, older steps among them.
        """
        fresh = state.offset != self.offset and state.model_version > 0
        if not (self.every_s > 0 and fresh):
            return False
        waited = now - self.started
        if final:
            return True
        caught_up = not self.missed or (self.resumed is not None and state.model_version - self.resumed >= self.size)
        return waited >= self.every_s and (caught_up or waited >= 2 * self.every_s)

    def candidate(self, state: ModelState, epoch: int) -> Candidate:
        now = self.clock()
        t0, v0 = self.mark
        if state.model_version > v0 and now > t0:
            self.rate = (state.model_version - v0) / (now - t0)
        self.offset, self.started = state.offset, now
        self.mark, self.missed, self.resumed = (now, state.model_version), False, None
        return Candidate(self.cfg, self.partition_id, epoch, self.key, tuple(self.window), self.is_classifier)

    def reported(self, report: str) -> None:
        self.last = report


def publish(c: Candidate, state: ModelState, store: CheckpointStore) -> str:
    """In the forked child, after its checkpoint landed: one line saying what happened."""
    cfg, p = c.cfg, c.partition_id
    versions = VersionStore(store)
    model = gate.Contrarian(state.model) if cfg.model.publish.gate.test_force_bad else state.model
    window = c.window
    if model is not state.model:  # the sabotaged model's own answers, not the stream's
        window = tuple((x, y, blob.PublishedModel(model, {}, c.is_classifier).predict(x)[0]) for x, y, _ in window)
    candidate = blob.PublishedModel(model, {}, c.is_classifier)
    metric = gate.metric_over(lambda: build_metric(cfg.model), [y for _, y, _ in window], [q for _, _, q in window])
    draft = make_meta(app=cfg.app, topic=cfg.kafka.input_topic, partition=p, version=0, epoch=c.epoch, offset=state.offset,
                      events_learned=state.model_version, metric_name=cfg.model.metric.rsplit(".", 1)[-1],
                      metric_value=metric, window=len(window), spec=spec_hash(cfg.model), size_bytes=0)
    spec = checkpoint.spec_id(cfg.model)
    signed = blob.sign(ModelState(model, state.metric, state.offset, state.model_version, state.events, spec_id=spec), draft, c.key)
    verdict = gate.evaluate(candidate, window, _served(versions, cfg, p, c.key), len(signed),
                            lambda: build_metric(cfg.model), cfg.model.publish.gate)
    if not verdict.ok:
        store.incr_counter(p, REFUSED_COUNTER + verdict.reason)
        # No evidence yet is routine after a restore in label mode, not a warning.
        logs.event(log, logging.INFO if verdict.reason == "no_evidence" else logging.WARNING, "publish_refused", topic=cfg.kafka.input_topic, partition=p, epoch=c.epoch,
                   offset=state.offset, reason=verdict.reason, detail=verdict.detail)
        return f"refused {verdict.reason} {verdict.detail}"
    version = versions.reserve(p)
    meta = {**draft, "version": version}
    signed = blob.sign(ModelState(state.model, state.metric, state.offset, state.model_version, state.events, spec_id=spec), meta, c.key)
    meta["size_bytes"] = len(signed)
    res = versions.publish(p, c.epoch, version, meta, signed, cfg.model.publish.keep)
    if not res.ok:
        return f"stale epoch {res.value}"
    logs.event(log, logging.INFO, "published", topic=cfg.kafka.input_topic, partition=p, epoch=c.epoch, offset=state.offset,
               version=version, metric=metric)
    return f"published {version}"


def _served(versions: VersionStore, cfg: AppConfig, p: int, key: bytes) -> blob.PublishedModel | None:
    """The version serving answers with now: the gate's baseline (None if none, or unreadable)."""
    served = versions.served(p)
    if served.version is None:
        return None
    stored = versions.read(p, served.version)
    if stored is None:
        return None
    try:
        return blob.open_blob(stored[1], key, expect={"app": cfg.app, "topic": cfg.kafka.input_topic, "partition": p})
    except CheckpointError as exc:
        logs.event(log, logging.WARNING, "served_version_unreadable", topic=cfg.kafka.input_topic, partition=p,
                   version=served.version, error=exc.message)
        return None


