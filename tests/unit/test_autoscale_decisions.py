"""Autoscale decisions made visible: what is recorded (runtime/autoscale_record.py), shown and exported.

The Autoscaler is the real one on a fake clock; the store is a list standing in
for `connectors.autoscale_store` (its Redis side is covered by
tests/integration/test_autoscale.py, through `streamlearn status --json`).
"""

from __future__ import annotations

from typing import Any

from streamlearn.ops import metrics
from streamlearn.ops.cli import _autoscale_lines
from streamlearn.runtime.autoscale_record import DecisionRecorder
from tests.unit.test_autoscale import scaler


class ListStore:
    def __init__(self, fail: bool = False) -> None:
        self.records: list[dict[str, Any]] = []
        self.fail = fail

    def record(self, direction: str, workers_from: int, workers_to: int, lag: float, reason: str) -> dict[str, Any]:
        if self.fail:
            raise ConnectionError("redis away")
        rec = {"direction": direction, "from": workers_from, "to": workers_to, "lag": lag, "reason": reason}
        self.records.append(rec)
        return rec


def run(lags: list[int], workers: int, store: ListStore, **kw: Any) -> list[int | None]:
    a, clock = scaler(**kw)
    rec = DecisionRecorder(store, "topic")  # type: ignore[arg-type]  # duck-typed store
    out = []
    for lag in lags:
        clock.t += 5.0
        desired = a.decide(lag, workers)
        rec.note(a, workers, desired)
        if desired is not None:
            workers = desired
        out.append(desired)
    return out


def test_a_change_held_by_the_cooldown_is_recorded_once_then_the_change() -> None:
    store = ListStore()
    # cooldown 30 s, a sample every 5 s: the window is full at 15 s (held), the change comes at 30 s.
    assert run([450] * 6, workers=1, store=store) == [None] * 5 + [5]
    assert [(r["direction"], r["from"], r["to"]) for r in store.records] == [("held", 1, 5), ("up", 1, 5)]
    assert store.records[0]["reason"].startswith("held: cooldown, 15 s left")
    assert store.records[1]["lag"] == 450 and "1 -> 5" in store.records[1]["reason"]


def test_down_is_recorded_and_steady_load_records_nothing() -> None:
    store = ListStore()
    run([10] * 3, workers=4, store=store, cooldown_s=0)
    assert [(r["direction"], r["from"], r["to"]) for r in store.records] == [("down", 4, 1)]
    steady = ListStore()
    run([150] * 20, workers=2, store=steady, cooldown_s=0)  # 2 workers carry 150 at target 100: no change
    assert steady.records == []


def test_a_failed_record_never_stops_the_decision() -> None:
    assert run([450] * 6, workers=1, store=ListStore(fail=True)) == [None] * 5 + [5]


def _status(**autoscale: Any) -> dict[str, Any]:
    return {"partitions": [], "totals": {"workers": 1}, "handoffs": {}, "autoscale": autoscale}


def test_decisions_counted_by_direction_in_the_metrics() -> None:
    fams = {f.name: f for f in metrics.families(_status(enabled=True, counts={"up": 2, "down": 1, "held": 3}), "app")}
    got = {s.labels["direction"]: s.value for s in fams["streamlearn_autoscale_decisions"].samples if s.name.endswith("_total")}
    assert got == {"up": 2.0, "down": 1.0, "held": 3.0}
    empty = {f.name: f for f in metrics.families(_status(), "app")}
    assert {s.value for s in empty["streamlearn_autoscale_decisions"].samples} == {0.0}


def test_status_text_shows_counts_and_the_last_decisions() -> None:
    d = {"ts_ms": 0, "direction": "up", "from": 1, "to": 3, "lag": 812.4, "reason": "autoscale: mean lag 812"}
    lines = _autoscale_lines(_status(enabled=True, counts={"up": 1, "down": 0, "held": 0}, decisions=[d]))
    assert lines == ["autoscale: up=1 down=0 held=0", "  00:00:00Z up   1->3 workers lag=812: autoscale: mean lag 812"]
    assert _autoscale_lines(_status(enabled=False, counts={}, decisions=[])) == []
