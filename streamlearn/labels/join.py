"""The join state machine: one chunk of events and labels at a time, deterministic.

A chunk is what one journal record names: the events at input offsets
[e0, e1) and the labels at label offsets [l0, l1), plus the clock advances
decided for it. Its records are processed in one fixed merge order, by
(event time, kind (events first), offset), so the chunk's ranges and clock
advances fully determine what happens: live processing and journal replay
call the same `Joiner.run_chunk`, replay with no outputs.

Per event: predict with the current model, emit the prediction, then keep
the features used for it in the pending store, or join at once with a
label that came before it. Per label: join with its pending event if
``label.ts - event.ts`` lies in ``[-early_window_s, window_s]``; otherwise it
is ``late_label``, ``duplicate_label`` (the first label of an id in the label
topic's order wins) or, when its event never comes, ``orphan_label``.

The publish gate's window (`models.gate`) is fed from `_learn`, through
`Joiner.observe`: for every joined label, the prediction the model makes
for the stored features right *before* learning them (prequential at learn
time; the prediction stored with the pending event may come from a model
many versions older). Only while a candidate's window is being filled:
`Joiner.feed` (the publisher's `observer`) turns it on, chunk by chunk, from
shortly before a candidate is due. Replay calls `_learn` identically, so a
window a replay fills is the one the live run would have had over the same
steps; the extra prediction leaves the model unchanged (the sample-log
contract of I2 in label mode already relies on predict not changing it).

Clocks are event time only: a pending event expires when the *label* clock
passes ``event.ts + window_s`` (a backlog of events never expires events
whose labels are still queued); an early label is orphaned when the *event*
clock passes ``label.ts + early_window_s``. Expiry pops from the front of the
insertion-ordered stores, so an out-of-order event may expire a little late,
but never joins outside its window: the join checks the window itself.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

import orjson

from streamlearn.config import LabelsConfig
from streamlearn.labels.pending import (
    YOUNG_PENDING,
    DoneStore,
    EarlyLabel,
    Features,
    Id,
    OrderedStore,
    PendingEvent,
)
from streamlearn.labels.records import (
    EVENT,
    REFUSED,
    Item,
    KafkaRecord,
    StoredRecord,
    decode_events,
    decode_labels,
    encode_sample,
)
from streamlearn.model import fused, metric_batch
from streamlearn.model.codec import EventDecoder, encode_prediction
from streamlearn.model.model_state import ModelState

#: Upper bounds (seconds) of the label-delay histogram (label.ts - event.ts of joined labels); last bucket: above.
DELAY_BUCKETS_S = (0, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 21600, 86400)
#: How long (beyond its window) an id stays known as done, to tell a duplicate or late label from an orphan.
DONE_KEEP_WINDOWS = 2
COUNTERS = ("joined", "expired", "evicted", "late", "duplicate", "orphan")
JOINED, EXPIRED, LABELLED = "j", "x", "l"  # done codes: joined; expired, no label yet; expired or refused, label seen


@dataclass
class Outputs:
    """Where a live chunk's outputs go (the open transaction); replay has none."""

    prediction: Callable[[bytes | None, bytes], None]
    sample: Callable[[bytes, bytes], None] | None  # None: sample log off (never in label mode)
    dead_event: Callable[[Any, str, str], None]
    dead_label: Callable[[Any, str, str], None]


@dataclass
class JoinState:
    """Everything of the join a checkpoint keeps, next to the model (in ModelState.extra["labels"])."""

    label_offset: int  # L: next label offset not yet consumed
    journal_offset: int  # J: where journal replay starts for a checkpoint taken now (set at the snapshot)
    pending: OrderedStore = field(default_factory=OrderedStore)
    early: OrderedStore = field(default_factory=OrderedStore)
    done: OrderedStore = field(default_factory=DoneStore)  # id -> (code, event_ts)
    event_clock: float = -math.inf  # max event time seen (ms), or advanced to
    label_clock: float = -math.inf
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    delay_hist: list[int] = field(default_factory=lambda: [0] * (len(DELAY_BUCKETS_S) + 1))
    delay_sum_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The `labels` status of the partition (streamlearn status, metrics)."""
        oldest = self.pending.oldest()
        age = (self.event_clock - oldest[1].ts) / 1000 if oldest is not None and math.isfinite(self.event_clock) else 0.0
        return {**self.counters, "pending": len(self.pending), "early": len(self.early),
                "oldest_pending_age_s": round(max(age, 0.0), 3),
                "delay_hist": list(self.delay_hist), "delay_sum_s": round(self.delay_sum_s, 3)}


class Joiner:
    """The join rules of one partition, applied to its `JoinState` and model, chunk by chunk."""

    def __init__(self, lc: LabelsConfig, decoder: EventDecoder, fields: tuple[str, str, str], partition: int,
                 is_classifier: bool) -> None:
        self.window_ms = lc.window_s * 1000
        self.early_ms = lc.early_window_s * 1000
        self.max_pending = lc.max_pending
        self.default = lc.on_expiry == "default"
        self.default_label = decoder.validate_label(lc.default_label) if self.default else None
        self.decoder = decoder
        self.fields = fields  # id, label, ts field names of a label record
        self.partition = partition
        self.is_classifier = is_classifier
        # (features, label, prediction before learning) of each joined label: the publish gate's window
        self.observe: Callable[[tuple[Any, Any, Any]], None] | None = None
        # If set, asked at each chunk's start (with the model's version) for `observe` (models.publisher.observer).
        self.feed: Callable[[int], Callable[[tuple[Any, Any, Any]], None] | None] | None = None
        self.calls: fused.Calls | None = None  # the model's per-event calls, taken at each chunk's start
        self.pairs: list[tuple[Any, Any]] | None = None  # the chunk's (label, prediction) pairs (metric_batch)

    # ---- one chunk ------------------------------------------------------------------
    def run_chunk(self, ms: ModelState, js: JoinState, events: Sequence[KafkaRecord], labels: Sequence[KafkaRecord],
                  e_range: tuple[int, int], l_range: tuple[int, int], clock: dict[str, float], out: Outputs | None,
                  now_ms: int = 0) -> None:
        """Process one journalled chunk; moves the positions to (e1, l1)."""
        self.run_items(ms, js, self.decode_events(events), self.decode_labels(labels), e_range, l_range, clock, out, now_ms)

    def decode_events(self, records: Iterable[KafkaRecord]) -> list[Item]:
        return decode_events(self.decoder, records)

    def decode_labels(self, records: Iterable[KafkaRecord]) -> list[Item]:
        return decode_labels(self.decoder, self.fields, records)

    def run_items(self, ms: ModelState, js: JoinState, events: list[Item], labels: list[Item], e_range: tuple[int, int],
                  l_range: tuple[int, int], clock: dict[str, float], out: Outputs | None, now_ms: int = 0) -> None:
        """`run_chunk` on records decoded already (`decode_events`, `decode_labels`); the lists are consumed."""
        if (e_range[0], l_range[0]) != (ms.offset, js.label_offset):
            raise ValueError(f"chunk starts at {(e_range[0], l_range[0])} but the join is at {(ms.offset, js.label_offset)}")
        dead = 0
        for items, dead_letter in ((events, out.dead_event if out is not None else None),
                                   (labels, out.dead_label if out is not None else None)):
            if REFUSED in map(_kind, items):  # rare: dead letters first, in offset order, as they were decoded
                for it in items:
                    if it[1] == REFUSED:
                        dead += 1
                        if dead_letter is not None:
                            dead_letter(it[6], it[3], it[4])
                items[:] = [it for it in items if it[1] != REFUSED]
        self.calls = fused.calls(ms.model, self.is_classifier)
        self.pairs = [] if metric_batch.batchable(ms.metric) else None
        if self.feed is not None:
            self.observe = self.feed(ms.model_version)
        items = events
        items += labels
        # Plain tuple order is (ts, kind, offset): unique per record, so ids and payloads are never compared.
        items.sort()
        event, label = self._event, self._label
        for ts, kind, offset, id_, payload, raw_ts, rec in items:
            if kind == EVENT:
                event(ms, js, id_, payload, ts, raw_ts, offset, rec, out, now_ms)
            else:
                label(ms, js, id_, payload, ts, offset, rec, out)
        if clock:
            js.event_clock = max(js.event_clock, clock.get("event", -math.inf))
            js.label_clock = max(js.label_clock, clock.get("label", -math.inf))
            self._expire(ms, js, out)
            self._orphan(js, out)
        if self.pairs:
            metric_batch.apply(ms.metric, self.pairs)
        # The next chunk takes them again (a restore or rollback may have replaced the model).
        self.calls, self.pairs = None, None
        ms.offset, js.label_offset = e_range[1], l_range[1]
        ms.extra["dlq"] = ms.extra.get("dlq", 0) + dead

    # ---- per record -------------------------------------------------------------------
    def _predict(self, calls: fused.Calls, x: dict[str, Any]) -> Any:
        """The prediction as the stream makes it (`_event`): argmax of proba for classifiers."""
        if calls.predict_proba is not None:
            proba = calls.predict_proba(x)
            return max(proba, key=proba.__getitem__) if proba else None
        return calls.predict(x)

    def _event(self, ms: ModelState, js: JoinState, eid: Id, x: dict[str, Any], ts: float, raw_ts: Any, offset: int,
               rec: KafkaRecord, out: Outputs | None, now_ms: int) -> None:
        calls = self.calls or fused.calls(ms.model, self.is_classifier)
        try:
            if calls.predict_proba is not None:
                proba = calls.predict_proba(x)
                pred = max(proba, key=proba.__getitem__) if proba else None
            else:
                proba, pred = None, calls.predict(x)
        except Exception as exc:  # a model that cannot take this event must not stop the partition
            ms.extra["dlq"] = ms.extra.get("dlq", 0) + 1
            if out is not None:
                out.dead_event(rec, "model_error", f"{type(exc).__name__}: {exc}")
            return
        version = ms.model_version
        ms.events += 1
        if out is not None:
            out.prediction(rec.key(), encode_prediction(eid, pred, proba, self.partition, offset, version, raw_ts, now_ms))
        if ts > js.event_clock:
            js.event_clock = ts
        # The stores' dicts directly (not their methods): this runs once per event.
        pending, early_items = js.pending.items, js.early.items
        if eid in pending or eid in js.done.items:
            pass  # a repeated event id: predicted (I1), but its label belongs to the first
        else:
            early: EarlyLabel | None = early_items.pop(eid, None) if early_items else None
            if early is not None and -self.early_ms <= early.ts - ts <= self.window_ms:
                self._learn(ms, js, eid, x, early.label, pred, version, ts, early.ts, b"joined", out)
                js.done.add(eid, (JOINED, ts))
            else:
                # The features as the dict itself while the store is small (most labels come soon: no encode, no
                # decode), as compact orjson bytes beyond: at most YOUNG_PENDING dicts. An exact-size copy: orjson's
                # own result keeps its ~4 KB write buffer (4.4 KB per pending event, measured).
                feats = x if len(pending) < YOUNG_PENDING else memoryview(orjson.dumps(x)).tobytes()
                js.pending.add(eid, PendingEvent(ts, offset, pred, version, feats))
                if early is not None:  # came too early or too late for this event: refused, the event waits on
                    js.done.add(eid, (LABELLED, ts))
                    self._refuse(js, "late" if early.ts - ts > self.window_ms else "orphan",
                                 StoredRecord(early.key, early.value, early.offset), out)
                if len(pending) > self.max_pending:
                    _eid, ev = js.pending.pop_oldest()
                    js.counters["evicted"] += 1
                    self._expired(ms, js, _eid, ev, out)
                if ts < js.label_clock - self.window_ms:  # the label clock is past its window already (labels read ahead)
                    self._expire(ms, js, out)
        if early_items:
            self._orphan(js, out)

    def _label(self, ms: ModelState, js: JoinState, lid: Id, label: Any, lts: float, offset: int, rec: KafkaRecord,
               out: Outputs | None) -> None:
        advanced = lts > js.label_clock
        if advanced:
            js.label_clock = lts
        done = js.done.items.get(lid)
        if done is not None:
            if done[0] == EXPIRED:
                js.done.items[lid] = (LABELLED, done[1])
                self._refuse(js, "late", rec, out)
            else:
                self._refuse(js, "duplicate", rec, out)
        else:
            ev: PendingEvent | None = js.pending.items.get(lid)
            if ev is not None:
                delay = lts - ev.ts
                if -self.early_ms <= delay <= self.window_ms:
                    del js.pending.items[lid]
                    self._learn(ms, js, lid, ev.features, label, ev.prediction, ev.model_version, ev.ts, lts, b"joined", out)
                    js.done.add(lid, (JOINED, ev.ts))
                else:
                    js.done.add(lid, (LABELLED, ev.ts))  # the event stays pending and expires as if unlabelled
                    self._refuse(js, "late" if delay > self.window_ms else "orphan", rec, out)
            elif lid in js.early.items:
                self._refuse(js, "duplicate", rec, out)
            else:
                js.early.add(lid, EarlyLabel(label, lts, offset, rec.key(), rec.value()))
                if len(js.early) > self.max_pending:
                    _lid, old = js.early.pop_oldest()
                    self._refuse(js, "orphan", StoredRecord(old.key, old.value, old.offset), out)
                self._orphan(js, out)  # the event clock may be past it already (events read ahead of labels)
        if advanced:  # the clock alone decides what expires: unchanged clock, nothing new to expire
            self._expire(ms, js, out)

    # ---- clocks -------------------------------------------------------------------------
    def _expire(self, ms: ModelState, js: JoinState, out: Outputs | None) -> None:
        """Pending events whose window the label clock has passed; done ids a window after that."""
        for eid, ev in js.pending.pop_before(js.label_clock - self.window_ms, _ts):
            js.counters["expired"] += 1
            self._expired(ms, js, eid, ev, out)
        for _ in js.done.pop_before(js.label_clock - self.window_ms * DONE_KEEP_WINDOWS, _done_ts):
            pass  # dropping them is all: ids known as done for two windows, then forgotten

    def _orphan(self, js: JoinState, out: Outputs | None) -> None:
        """Early labels whose event the event clock says is not coming any more."""
        for _lid, lab in js.early.pop_before(js.event_clock - self.early_ms, _ts):
            self._refuse(js, "orphan", StoredRecord(lab.key, lab.value, lab.offset), out)

    # ---- outcomes ---------------------------------------------------------------------------
    def _expired(self, ms: ModelState, js: JoinState, eid: Id, ev: PendingEvent, out: Outputs | None) -> None:
        if eid not in js.done:
            js.done.add(eid, (EXPIRED, ev.ts))
        if self.default:
            self._learn(ms, js, eid, ev.features, self.default_label, ev.prediction, ev.model_version, ev.ts, None,
                        b"expired", out)

    def _refuse(self, js: JoinState, reason: str, rec: Any, out: Outputs | None) -> None:
        js.counters[reason] += 1
        if out is not None:
            out.dead_label(rec, f"{reason}_label", f"label refused: {reason}")

    def _learn(self, ms: ModelState, js: JoinState, eid: Id, feats: Features, label: Any, pred: Any, version: int,
               ets: float, lts: float | None, outcome: bytes, out: Outputs | None) -> None:
        """One learning step, and its sample record: the features used for the prediction, never a later copy."""
        x: dict[str, Any] = feats if isinstance(feats, dict) else orjson.loads(feats)
        sample = out.sample if out is not None else None
        # Encoded before learning: the sample holds what was learned, whatever the model does to x.
        record = encode_sample(eid, feats, label, pred, version, ets, lts, outcome) if sample is not None else None
        observe = self.observe if lts is not None else None  # the gate compares on real labels, not expiry defaults
        calls = self.calls or fused.calls(ms.model, self.is_classifier)
        if observe is not None:
            try:
                before = self._predict(calls, x)
            except Exception:
                observe = None  # the gate skips it; learning must not depend on whether publishing is on
        try:
            calls.learn(x, label)
        except Exception:
            return  # a model that cannot learn this sample does not stop the partition; nothing learned, no sample
        if self.pairs is not None:
            self.pairs.append((label, pred))
        else:
            ms.metric.update(label, pred)
        ms.model_version += 1
        if observe is not None:
            observe((x, label, before))
        if lts is not None:
            js.counters["joined"] += 1
            delay_s = (lts - ets) / 1000
            js.delay_sum_s += delay_s
            js.delay_hist[_bucket(delay_s)] += 1
        if sample is not None:
            assert record is not None
            sample(str(eid).encode(), record)


_kind = itemgetter(1)  # of a merge item
_ts = attrgetter("ts")  # of a PendingEvent or an EarlyLabel
_done_ts = itemgetter(1)  # of a done entry (code, event_ts)


def _bucket(delay_s: float) -> int:
    """Index of the first bound >= delay_s (len(DELAY_BUCKETS_S): above the last)."""
    return bisect_left(DELAY_BUCKETS_S, delay_s)
