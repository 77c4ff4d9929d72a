"""The held stream of label-mode pacing: released as a contiguous prefix by event time, never reordered."""

from __future__ import annotations

import math

import orjson

from streamlearn.config import FieldsConfig, LabelsConfig
from streamlearn.eos.label_pacing import Held
from streamlearn.labels.join import Joiner
from streamlearn.model.codec import EventDecoder


class Rec:
    def __init__(self, offset: int, value: bytes, ts: int = 5) -> None:
        self._offset, self._value, self._ts = offset, value, ts

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return 0, self._ts


def _held(recs: list[Rec]) -> Held:
    """Held as label mode fills it: decoded by the join's own event decoding."""
    dec = EventDecoder(FieldsConfig(), is_classifier=True, is_multiclass=False, classes=None, max_value_bytes=1 << 20)
    joiner = Joiner(LabelsConfig(source="topic"), dec, ("id", "label", "ts"), 0, True)
    held = Held()
    held.add(joiner.decode_events(recs))
    return held


def _event(i: int, **doc: object) -> bytes:
    return orjson.dumps({"id": i, "features": {"a": 1.0}, **doc})


def test_release_is_a_prefix_up_to_the_limit_and_keeps_the_rest_in_order() -> None:
    held = _held([Rec(i, _event(i, ts=t)) for i, t in enumerate([10, 20, 15, 40, 30])])
    assert [it[2] for it in held.take(20)] == [0, 1, 2]
    assert [it[2] for it in held.take(35)] == []  # 40 comes first: a prefix only, so 30 waits behind it
    assert [it[2] for it in held.take(math.inf)] == [3, 4]
    assert held.items == []


def test_event_time_is_the_joins() -> None:
    held = _held([Rec(0, b"not json"), Rec(1, _event(1), ts=77), Rec(2, _event(2, ts=9.5)), Rec(3, orjson.dumps({"id": 3}))])
    # Refused by the join (not JSON, no features): released at once, it only goes to the DLQ; no ts: record time.
    assert [it[0] for it in held.items] == [-math.inf, 77.0, 9.5, -math.inf]
    assert held.last_ts == -math.inf
