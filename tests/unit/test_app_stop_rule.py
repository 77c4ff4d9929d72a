"""`run --until-idle` / ``App.run(until_idle_s=...)``: when is an app caught up?"""

from __future__ import annotations

from typing import Any

from streamlearn.app import caught_up


def _status(*parts: tuple[str, int]) -> dict[str, Any]:
    rows = [{"partition": i, "phase": phase, "lag": lag} for i, (phase, lag) in enumerate(parts)]
    return {"partitions": rows, "totals": {"lag": sum(lag for _, lag in parts)}}


def test_caught_up_needs_every_partition_running_with_no_lag() -> None:
    assert caught_up(_status(("running", 0), ("running", 0)))
    assert not caught_up(_status(("running", 0), ("running", 3)))
    assert not caught_up(_status(("running", 0), ("replaying", 0)))
    assert not caught_up(_status())  # before the Coordinator reports any partition


def test_a_halted_partition_does_not_keep_until_idle_waiting_forever() -> None:
    # Regression: a partition halted on a refused output keeps its lag; until-idle never ended.
    assert caught_up(_status(("running", 0), ("failed", 120)))
    assert not caught_up(_status(("running", 5), ("failed", 120)))
