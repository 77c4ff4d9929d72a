"""`mode=hang`: the thread that reaches the point blocks for good, the process lives on (a stuck client call)."""

from __future__ import annotations

import signal
import threading

import pytest

from streamlearn import faults


def test_hang_mode_is_parsed_and_a_wrong_mode_names_the_choices() -> None:
    probs, _seed, _limit, _dir, mode = faults._parse("after_produce_before_commit=1,mode=hang")
    assert probs == {"after_produce_before_commit": 1.0} and mode == "hang"
    assert faults._parse("take_ownership=1,mode=stop")[4] is signal.SIGSTOP
    with pytest.raises(ValueError, match="kill, stop, hang"):
        faults._parse("take_ownership=1,mode=freeze")


def test_a_hanging_point_blocks_only_its_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "_PROBS", {"take_ownership": 1.0})
    monkeypatch.setattr(faults, "_SIGNAL", "hang")
    passed = threading.Event()

    def step() -> None:
        faults.point("take_ownership")
        passed.set()

    t = threading.Thread(target=step, daemon=True)  # daemon: it never returns, and must not hold the test run
    t.start()
    t.join(1.0)  # a bounded look, not a synchronisation: the thread must still be inside the point
    assert t.is_alive() and not passed.is_set()
    faults.point("during_replay")  # another point (probability 0 here) does not block this thread
