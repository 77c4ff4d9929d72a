"""The join state machine, pure (no services): windows, early labels, duplicates, late, orphan, expiry, eviction, replay."""

from __future__ import annotations

import pickle
import random
from typing import Any

import orjson
import pytest

from streamlearn.config import LabelsConfig, ModelConfig
from streamlearn.labels.join import Joiner, JoinState, Outputs
from streamlearn.labels.journal import JournalRecord, decode
from streamlearn.model.codec import EventDecoder
from streamlearn.model.spec import build_metric, build_model
from streamlearn.state.checkpoint import ModelState

SPEC = ModelConfig(estimator="river.linear_model.LogisticRegression", preprocessing=["river.preprocessing.StandardScaler"])


class Rec:
    def __init__(self, offset: int, doc: dict[str, Any] | bytes, ts: int = 0) -> None:
        self._offset, self._ts = offset, ts
        self._value = doc if isinstance(doc, bytes) else orjson.dumps(doc)

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return b"k"

    def timestamp(self) -> tuple[int, int]:
        return (1, self._ts)

    def headers(self) -> None:
        return None


class Collect:
    def __init__(self) -> None:
        self.predictions: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []
        self.dead: list[tuple[str, int, str]] = []

    def outputs(self) -> Outputs:
        return Outputs(lambda k, v: self.predictions.append(orjson.loads(v)), lambda k, v: self.samples.append(orjson.loads(v)),
                       lambda r, c, d: self.dead.append(("event", r.offset(), c)), lambda r, c, d: self.dead.append(("label", r.offset(), c)))

    def reasons(self) -> list[str]:
        return [c for kind, _, c in self.dead if kind == "label"]


class Harness:
    """A joiner with its state; events and labels are appended to two logs and fed in chunks."""

    def __init__(self, **labels: Any) -> None:
        lc = LabelsConfig(source="topic", **{"window_s": 10, "early_window_s": 5, **labels})
        self.lc = lc
        dec = EventDecoder(_fields(), is_classifier=True, is_multiclass=False, classes=None, max_value_bytes=1 << 20)
        self.joiner = Joiner(lc, dec, ("id", "label", "ts"), 0, True)
        self.ms = ModelState(build_model(SPEC), build_metric(SPEC), offset=0, model_version=0, events=0)
        self.js = JoinState(label_offset=0, journal_offset=0)
        self.ms.extra["labels"] = self.js
        self.events: list[Rec] = []
        self.labels: list[Rec] = []
        self.journal: list[JournalRecord] = []
        self.out = Collect()

    def event(self, eid: Any, ts_s: float, x: float = 1.0) -> Harness:
        self.events.append(Rec(len(self.events), {"id": eid, "features": {"a": x, "b": -x}, "ts": int(ts_s * 1000)}))
        return self

    def label(self, eid: Any, ts_s: float, y: bool = True) -> Harness:
        self.labels.append(Rec(len(self.labels), {"id": eid, "label": y, "ts": int(ts_s * 1000)}))
        return self

    def chunk(self, clock: dict[str, float] | None = None) -> Harness:
        """Everything appended since the last chunk, as one journalled chunk."""
        e = (self.ms.offset, len(self.events))
        lr = (self.js.label_offset, len(self.labels))
        clock = clock or {}
        self.joiner.run_chunk(self.ms, self.js, self.events[e[0]:e[1]], self.labels[lr[0]:lr[1]], e, lr, clock, self.out.outputs())
        self.journal.append(decode(JournalRecord(e, lr, clock).encode()))
        return self


def _fields() -> Any:
    from streamlearn.config import FieldsConfig

    return FieldsConfig()


def test_label_after_its_event_inside_the_window_joins_with_the_stored_features() -> None:
    h = Harness().event("a", 100, x=2.5).chunk().label("a", 104).chunk()
    assert [s["outcome"] for s in h.out.samples] == ["joined"]
    s = h.out.samples[0]
    assert (s["id"], s["features"], s["label"], s["event_ts"], s["label_ts"]) == ("a", {"a": 2.5, "b": -2.5}, True, 100_000, 104_000)
    assert s["prediction"] == h.out.predictions[0]["prediction"] and s["model_version"] == 0
    assert h.ms.model_version == 1 and len(h.js.pending) == 0 and h.js.counters["joined"] == 1


def test_label_before_its_event_waits_and_joins_when_the_event_comes() -> None:
    h = Harness().label("a", 98).chunk().event("a", 100).chunk()
    assert [s["outcome"] for s in h.out.samples] == ["joined"] and len(h.js.early) == 0


def test_in_one_chunk_records_merge_by_event_time_whatever_the_topic() -> None:
    h = Harness().event("a", 100).label("a", 99).chunk()
    assert h.js.counters["joined"] == 1 and not h.out.dead


@pytest.mark.parametrize("label_first", [True, False])
def test_the_first_label_of_an_id_wins_and_the_second_is_a_duplicate(label_first: bool) -> None:
    h = Harness()
    if label_first:
        h.label("a", 100, y=True).label("a", 101, y=False).chunk().event("a", 100).chunk()
    else:
        h.event("a", 100).chunk().label("a", 100, y=True).chunk().label("a", 101, y=False).chunk()
    assert [s["label"] for s in h.out.samples] == [True]
    assert h.out.reasons() == ["duplicate_label"] and h.js.counters["duplicate"] == 1


def test_a_label_after_the_window_is_late_and_the_event_expires_with_the_default() -> None:
    h = Harness(on_expiry="default", default_label=False).event("a", 100).chunk().label("a", 111, y=True).chunk()
    assert h.out.reasons() == ["late_label"]
    assert [(s["outcome"], s["label"], s["label_ts"]) for s in h.out.samples] == [("expired", False, None)]
    h.label("a", 112).chunk()
    assert h.out.reasons() == ["late_label", "duplicate_label"], "one label per id is judged; the next is a duplicate"


def test_a_label_for_an_expired_event_is_late_not_orphan() -> None:
    h = Harness().event("a", 100).event("b", 100).chunk().label("b", 120).chunk().label("a", 121).chunk()
    assert h.js.counters["expired"] == 2 and h.out.reasons() == ["late_label", "late_label"]


def test_a_label_whose_event_never_comes_is_an_orphan_once_the_event_clock_passes_it() -> None:
    h = Harness().label("ghost", 100).chunk().event("x", 104).chunk()
    assert h.out.reasons() == [] and len(h.js.early) == 1
    h.event("y", 106).chunk()
    assert h.out.reasons() == ["orphan_label"] and len(h.js.early) == 0 and not h.out.samples


def test_clocks_already_past_a_record_settle_it_on_arrival() -> None:
    h = Harness(on_expiry="default", default_label=False).event("x", 200).chunk().label("ghost", 100).chunk()
    assert h.out.reasons() == ["orphan_label"], "events read ahead: the event clock is past the label already"
    h.label("z", 400).chunk().event("old", 300).chunk()
    assert [(s["id"], s["outcome"]) for s in h.out.samples] == [("x", "expired"), ("old", "expired")]


@pytest.mark.parametrize(("on_expiry", "samples"), [("default", 1), ("drop", 0)])
def test_expiry_learns_the_default_exactly_once_or_drops(on_expiry: str, samples: int) -> None:
    h = Harness(on_expiry=on_expiry, default_label=False).event("a", 100).chunk().label("other", 200).chunk()
    h.label("other2", 300).chunk()
    assert len(h.out.samples) == samples and h.js.counters["expired"] == 1
    assert h.ms.model_version == samples


def test_a_full_pending_store_evicts_its_oldest_event_like_an_expiry() -> None:
    h = Harness(max_pending=2, on_expiry="default", default_label=False)
    h.event("a", 100).event("b", 101).event("c", 102).chunk()
    assert h.js.counters["evicted"] == 1 and len(h.js.pending) == 2
    assert [(s["id"], s["outcome"]) for s in h.out.samples] == [("a", "expired")]


def test_idle_clock_advance_from_the_journal_expires_pending_events() -> None:
    h = Harness(on_expiry="default", default_label=False).event("a", 100).event("b", 130).chunk()
    assert len(h.js.pending) == 2
    h.event("c", 131).chunk(clock={"label": 130_000})  # a journal record always covers some record
    assert [s["id"] for s in h.out.samples] == ["a"]


def _random_run(seed: int) -> Harness:
    rng = random.Random(seed)
    h = Harness(on_expiry="default", default_label=False, max_pending=50)
    t = 0.0
    for i in range(600):
        t += rng.random()
        h.event(f"e{i}", t, x=rng.gauss(0, 1))
        r = rng.random()
        if r < 0.8:
            h.label(f"e{i}", t + rng.uniform(-3, 8), y=rng.random() < 0.5)
        elif r < 0.85:
            h.label(f"e{i}", t + 15)
        if rng.random() < 0.03:
            h.label(f"e{i}", t + 2)
        if rng.random() < 0.02:
            h.label(f"ghost{i}", t)
        if rng.random() < 0.1:
            h.chunk(clock={"label": t * 1000} if rng.random() < 0.1 else None)
    return h.chunk()


def test_replaying_the_journal_gives_the_same_state_model_and_samples() -> None:
    live = _random_run(7)
    assert live.js.counters["joined"] > 300 and all(live.js.counters[k] for k in ("late", "duplicate", "orphan", "expired"))
    again = Harness(on_expiry="default", default_label=False, max_pending=50)
    again.events, again.labels = live.events, live.labels
    for rec in live.journal:
        again.joiner.run_chunk(again.ms, again.js, live.events[rec.events[0]:rec.events[1]],
                               live.labels[rec.labels[0]:rec.labels[1]], rec.events, rec.labels, rec.clock, None)
    assert pickle.dumps(again.js) == pickle.dumps(live.js)
    probes = [{"a": v / 10, "b": -v / 10} for v in range(-20, 20)]
    assert [again.ms.model.predict_proba_one(x) for x in probes] == [live.ms.model.predict_proba_one(x) for x in probes]
    assert again.ms.model_version == live.ms.model_version == len(live.out.samples)


def test_the_model_equals_a_fresh_model_trained_on_its_sample_log() -> None:
    live = _random_run(11)
    fresh = build_model(SPEC)
    for s in live.out.samples:
        fresh.learn_one(s["features"], s["label"])
    probes = [{"a": v / 10, "b": -v / 10} for v in range(-20, 20)]
    assert [fresh.predict_proba_one(x) for x in probes] == [live.ms.model.predict_proba_one(x) for x in probes]
    assert len({s["id"] for s in live.out.samples}) == len(live.out.samples), "one sample per event at most"


def test_bad_label_records_go_to_the_dlq_with_a_reason() -> None:
    h = Harness()
    h.labels.append(Rec(0, b"not json"))
    h.labels.append(Rec(1, {"id": "a", "ts": 1}))
    h.chunk()
    assert h.out.reasons() == ["invalid_json", "missing_label"] and h.js.label_offset == 2


def test_a_bad_event_record_goes_to_the_dlq_and_the_chunk_goes_on_in_order() -> None:
    h = Harness(on_expiry="default", default_label=False)
    h.event("a", 100)
    h.events.append(Rec(1, b"not json"))
    h.events.append(Rec(2, {"id": "c", "ts": 100_500}))  # no features
    h.event("d", 101).label("a", 102).label("d", 103).chunk()
    assert h.out.dead == [("event", 1, "invalid_json"), ("event", 2, "missing_features")]
    assert [p["id"] for p in h.out.predictions] == ["a", "d"] and [s["id"] for s in h.out.samples] == ["a", "d"]
    assert h.ms.offset == 4 and h.ms.extra["dlq"] == 2


def test_features_kept_as_dicts_or_as_bytes_give_the_same_samples_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pending features are dicts while the store is small and orjson bytes beyond: never a different outcome."""
    young = _random_run(5)
    assert any(isinstance(ev.features, dict) for ev in young.js.pending.items.values())
    monkeypatch.setattr("streamlearn.labels.join.YOUNG_PENDING", 0)  # every pending event encoded
    cold = _random_run(5)
    assert all(isinstance(ev.features, bytes) for ev in cold.js.pending.items.values())
    assert cold.out.samples == young.out.samples and cold.out.predictions == young.out.predictions
    probes = [{"a": v / 10, "b": -v / 10} for v in range(-20, 20)]
    assert [cold.ms.model.predict_proba_one(x) for x in probes] == [young.ms.model.predict_proba_one(x) for x in probes]


def test_a_pickled_join_state_resumes_identically() -> None:
    live = _random_run(3)
    js2 = pickle.loads(pickle.dumps(live.js))
    assert js2.summary() == live.js.summary()
    assert list(js2.pending.items) == list(live.js.pending.items)


def test_the_gate_window_gets_each_joined_label_with_the_prediction_made_right_before_learning_it() -> None:
    seen: list[tuple[Any, Any, Any]] = []
    h = Harness(on_expiry="default", default_label=False)
    h.joiner.observe = seen.append
    h.event("a", 100, x=2.0).event("b", 101, x=-1.0).chunk()
    before = pickle.loads(pickle.dumps(h.ms.model))  # the model as it is when a's label arrives
    h.label("a", 104, y=False).chunk()
    proba = before.predict_proba_one({"a": 2.0, "b": -2.0})
    assert seen == [({"a": 2.0, "b": -2.0}, False, max(proba, key=proba.__getitem__))]
    h.event("c", 200).chunk(clock={"label": 200_000})  # b expires with the default label: learned, not a labelled event
    assert h.ms.model_version == 2 and len(seen) == 1


def test_the_gate_window_is_rebuilt_identically_by_journal_replay_and_leaves_the_model_as_it_was() -> None:
    live_seen: list[tuple[Any, Any, Any]] = []
    live = Harness(on_expiry="default", default_label=False, max_pending=50)
    live.joiner.observe = live_seen.append
    plain = _random_run(7)  # the same run with publishing off
    rng = random.Random(7)
    t = 0.0
    for i in range(600):  # _random_run(7)'s records and chunks, with the window observed
        t += rng.random()
        live.event(f"e{i}", t, x=rng.gauss(0, 1))
        r = rng.random()
        if r < 0.8:
            live.label(f"e{i}", t + rng.uniform(-3, 8), y=rng.random() < 0.5)
        elif r < 0.85:
            live.label(f"e{i}", t + 15)
        if rng.random() < 0.03:
            live.label(f"e{i}", t + 2)
        if rng.random() < 0.02:
            live.label(f"ghost{i}", t)
        if rng.random() < 0.1:
            live.chunk(clock={"label": t * 1000} if rng.random() < 0.1 else None)
    live.chunk()
    assert len(live_seen) == live.js.counters["joined"] > 300
    probes = [{"a": v / 10, "b": -v / 10} for v in range(-20, 20)]
    assert [live.ms.model.predict_proba_one(x) for x in probes] == [plain.ms.model.predict_proba_one(x) for x in probes]
    assert live.out.samples == plain.out.samples and live.out.predictions == plain.out.predictions

    replay_seen: list[tuple[Any, Any, Any]] = []
    again = Harness(on_expiry="default", default_label=False, max_pending=50)
    again.joiner.observe = replay_seen.append
    for rec in live.journal:
        again.joiner.run_chunk(again.ms, again.js, live.events[rec.events[0]:rec.events[1]],
                               live.labels[rec.labels[0]:rec.labels[1]], rec.events, rec.labels, rec.clock, None)
    assert replay_seen == live_seen
