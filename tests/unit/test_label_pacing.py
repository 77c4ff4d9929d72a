"""The held stream of label-mode pacing: released as a contiguous prefix by event time, never reordered."""

from __future__ import annotations

import math

import orjson

from streamlearn.eos.label_pacing import Held


class Rec:
    def __init__(self, offset: int, value: bytes, ts: int = 5) -> None:
        self._offset, self._value, self._ts = offset, value, ts

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return 0, self._ts


def test_release_is_a_prefix_up_to_the_limit_and_keeps_the_rest_in_order() -> None:
    held = Held()
    held.add([Rec(i, orjson.dumps({"id": i, "ts": t})) for i, t in enumerate([10, 20, 15, 40, 30])], "ts")
    assert [r.offset() for r in held.take(20)] == [0, 1, 2]
    assert [r.offset() for r in held.take(35)] == []  # 40 comes first: a prefix only, so 30 waits behind it
    assert [r.offset() for r in held.take(math.inf)] == [3, 4]
    assert held.records == [] and held.ts == []


def test_event_time_falls_back_like_the_join() -> None:
    held = Held()
    held.add([Rec(0, b"not json"), Rec(1, orjson.dumps({"id": 1}), ts=77), Rec(2, orjson.dumps({"id": 2, "ts": 9.5}))], "ts")
    assert held.ts == [-math.inf, 77.0, 9.5]  # undecodable: released at once (it only goes to the DLQ); no ts: record time
