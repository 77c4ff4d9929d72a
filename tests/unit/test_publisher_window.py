"""The publish gate's window in label mode: recorded only ahead of a candidate, never different at the candidate."""

from __future__ import annotations

from typing import Any

from streamlearn.config import AppConfig
from streamlearn.models.publisher import Publisher
from streamlearn.state.checkpoint import ModelState
from tests.unit.test_labels_join import Harness

WINDOW, EVERY_S = 10, 10.0


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _publisher(clock: Clock) -> Publisher:
    cfg = AppConfig.model_validate({"model": {"publish": {"every_s": EVERY_S, "gate": {"window": WINDOW}}}})
    return Publisher(cfg, 0, b"k" * 32, True, clock=clock)


def _state(version: int, offset: int) -> ModelState:
    return ModelState(None, None, offset=offset, model_version=version, events=offset)


def test_at_each_candidate_the_window_is_the_last_labels_learned_as_if_always_recorded() -> None:
    clock = Clock()
    pub = _publisher(clock)
    fed, ref = Harness(), Harness()  # the same records; `ref` records every joined label, as before
    fed.joiner.feed = pub.observer
    always: list[tuple[Any, Any, Any]] = []
    ref.joiner.observe = always.append
    candidates, chunks_recorded, chunks = 0, 0, 0
    for c in range(700):  # 70 s: 5 events a chunk, each labelled 1 s later; a chunk every 0.1 s
        clock.t += 0.1
        for h in (fed, ref):
            for i in range(5):
                n = c * 5 + i
                h.event(f"e{n}", n / 50, x=(n % 7) - 3.0).label(f"e{n}", n / 50 + 1, y=n % 7 > 3)
            h.chunk()
        chunks += 1
        chunks_recorded += pub.recording
        if pub.due(fed.ms, clock()):
            cand = pub.candidate(fed.ms, epoch=1)
            assert len(cand.window) == WINDOW
            assert list(cand.window) == always[-WINDOW:]
            candidates += 1
    assert fed.ms.model_version == ref.ms.model_version == 3500 and fed.out.samples == ref.out.samples
    assert candidates == 6  # one every every_s: arming does not delay a candidate at a steady rate
    assert chunks_recorded < chunks * 0.15  # about 0.4 s of each 10 s (ARM_MARGIN x the time a window takes), plus slack


def test_a_slow_label_stream_records_every_label_and_publishes_on_time() -> None:
    clock = Clock()
    pub = _publisher(clock)
    for step in range(25):  # one learned label a second: fewer than 2 windows an every_s
        clock.t += 1.0
        assert pub.observer(step) is not None
        pub.observe(({"x": step}, True, True))
        if pub.due(_state(step + 1, step + 1), clock()):
            assert not pub.missed
            pub.candidate(_state(step + 1, step + 1), epoch=1)
    assert pub.offset == 20 and pub.recording


def test_after_skipped_steps_the_candidate_waits_for_a_window_of_new_ones_and_the_wait_is_bounded() -> None:
    clock = Clock()
    pub = _publisher(clock)
    clock.t += 1.0
    assert pub.observer(0) is not None  # nothing learned yet: recorded
    pub.observe(({"x": -1}, True, True))
    clock.t += 1.0
    assert pub.observer(1000) is None and pub.missed  # 500 a second: not needed until ~0.04 s before the candidate
    clock.t += 7.99
    assert pub.observer(4000) is not None and pub.resumed == 4000
    for i in range(3):  # the labels slow down: three learned by the time it is due
        pub.observe(({"x": i}, True, True))
    clock.t += 0.5
    assert not pub.due(_state(4003, 4003), clock())  # 3 of 10 since recording resumed: wait
    clock.t += 9.0
    assert not pub.due(_state(4003, 4003), clock())
    clock.t += 1.0
    assert pub.due(_state(4003, 4003), clock())  # two every_s: the gate takes what it holds
    assert [x["x"] for x, _, _ in pub.candidate(_state(4003, 4003), epoch=1).window] == [-1, 0, 1, 2]
    assert not pub.missed
    # At a steady rate the window is full of new steps when due: no wait.
    clock.t += 9.99
    assert pub.observer(9000) is not None and pub.due(_state(9000 + WINDOW, 9010), clock() + 0.01)


def test_steps_learned_while_not_recording_keep_the_candidate_waiting_until_recording_resumes() -> None:
    clock = Clock()
    pub = _publisher(clock)
    clock.t += 1.0
    assert pub.observer(500) is None  # 500 a second
    clock.t += 9.5
    assert not pub.due(_state(600, 600), clock())  # steps it never saw, and none since: not the last ones
    assert pub.observer(600) is not None  # the next chunk records
    assert not pub.due(_state(605, 605), clock())
    assert pub.due(_state(600 + WINDOW, 610), clock())


def test_after_a_candidate_the_rate_before_it_decides_until_something_new_is_learned() -> None:
    clock = Clock()
    pub = _publisher(clock)
    clock.t += 1.0
    pub.observer(500)  # 500 a second
    clock.t += 9.0
    assert pub.observer(5000) is not None  # armed
    pub.candidate(_state(5000, 5000), epoch=1)
    assert pub.observer(5000) is None  # nothing new yet: the last period's rate, far from the next candidate
    pub.restored(_state(5000, 5000))
    assert pub.observer(5000) is not None  # after a restore no rate is known: recorded


def test_after_a_restore_the_replay_fills_the_window_again() -> None:
    clock = Clock()
    pub = _publisher(clock)
    pub.observe(({"x": -1}, True, True))
    pub.recording = False
    pub.restored(_state(500, 500))
    assert len(pub.window) == 0 and pub.recording and not pub.missed
    assert pub.observer(500) is not None  # nothing learned since the restore: recorded
