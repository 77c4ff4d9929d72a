"""The worker side of a hand-off: requests wait for the loop thread, and never forever."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from streamlearn.runtime.handoff import Handoffs


class EmptyRun:
    """A run holding no partition (what `release` and `add` see of it here)."""

    def __init__(self) -> None:
        self.tasks: dict[int, Any] = {}
        self.consumer, self.forker, self.rescale = None, None, None

    def each(self, tasks: Any, action: Callable[[Any], object]) -> None:
        for t in tasks:
            action(t)

    def with_redis(self, tasks: Any, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def take_ownership(self, tasks: Any) -> None:
        raise ConnectionError("transaction coordinator not available")

    def new_task(self, partition_id: int) -> Any:
        return type("T", (), {"partition_id": partition_id, "close": lambda self: None})()


def test_release_of_partitions_not_held_reports_them() -> None:
    h, run = Handoffs(), EmptyRun()
    req = h.submit("release", [2, 1])
    h.serve(run)  # type: ignore[arg-type]
    out = req.wait(1)
    assert out["released"] == {} and out["not_held"] == [1, 2]


def test_a_failed_add_is_reported_to_the_caller() -> None:
    h, run = Handoffs(), EmptyRun()
    req = h.submit("add", [3])
    h.serve(run)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="transaction coordinator not available"):
        req.wait(1)


def test_a_run_that_ends_releases_every_waiting_caller() -> None:
    h = Handoffs()
    req = h.submit("add", [0])
    got: list[BaseException] = []

    def caller() -> None:
        try:
            req.wait(30)
        except RuntimeError as exc:
            got.append(exc)

    t = threading.Thread(target=caller)
    t.start()
    h.cancel("run ended: stopped")
    t.join(10)
    assert not t.is_alive() and "run ended" in str(got[0])


def test_an_unserved_request_times_out() -> None:
    with pytest.raises(TimeoutError):
        Handoffs().submit("release", [0]).wait(0.05)
