"""Demo pieces that need no services: the event mix, the stop rule, the report and the plot."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson

from streamlearn.tools import demo, demo_report
from streamlearn.tools.checker import I1Report


def _status(events: list[int], lag: int = 0, dlq: int = 0, metric: float | None = 0.9) -> dict[str, object]:
    parts = [{"partition": p, "events": e, "dlq": 0, "lag": 0, "phase": "running", "metric": {"name": "Accuracy", "value": metric},
              "checkpoint_offset": e, "committed_offset": e, "checkpoint_bytes": 100, "recoveries": 0, "epoch": 1, "events_per_s": 10.0}
             for p, e in enumerate(events)]
    return {"partitions": parts, "totals": {"events": sum(events), "dlq": dlq, "lag": lag, "events_per_s": 20.0, "recoveries": 0}}


def test_event_mix_has_the_malformed_records_and_every_label() -> None:
    records, labels = demo.make_events(1000, seed=1, drift_at=500, malformed=6)
    assert len(labels) == 1000 and len(records) == 1006
    bad = [v for k, v in records if k.startswith(b"bad-")]
    assert len(bad) == 6
    for v in bad:
        try:
            doc = orjson.loads(v)
        except orjson.JSONDecodeError:
            continue
        assert not isinstance(doc.get("features"), dict)


def test_stops_only_when_everything_produced_is_accounted_for() -> None:
    st = demo.DemoState(total=12, drift_at=5, produced=12)
    assert not demo.all_consumed(st, _status([5, 5], dlq=2))  # producer not finished
    st.producing_done = True
    assert not demo.all_consumed(st, _status([5, 4], dlq=2))  # one record missing
    assert not demo.all_consumed(st, _status([5, 5], lag=1, dlq=2))
    assert demo.all_consumed(st, _status([5, 5], dlq=2))


def test_summary_flags_duplicates_and_missing_predictions() -> None:
    cfg = demo.build_config("t", "127.0.0.1:9092", "redis://127.0.0.1:6379/0", 2)
    labels = {"e-0": True, "e-1": False, "e-2": True}
    st = demo.DemoState(total=3, drift_at=2, produced=3, producing_done=True)
    st.last = _status([2, 1])
    st.samples = [(0.0, _status([0, 0])), (2.0, st.last)]
    args = argparse.Namespace(workers=2, rate=100.0)
    good = demo_report.Predictions(I1Report(inputs=3, predictions=3), rows={0: [(0, True, 0), (1, True, 2)], 1: [(0, False, 1)]})
    s = demo_report.summarize(cfg, st, labels, good, run_s=3, total_s=4, interrupted=False, metrics_url=None, args=args)
    assert s["exactly_once"]["ok"] and s["exactly_once"]["missing"] == 0
    assert s["partitions"][0]["accuracy_before_drift"] == 1.0
    dup = demo_report.Predictions(I1Report(inputs=3, predictions=3, missing=[(1, 0)], duplicated=[(0, 0)]))
    s = demo_report.summarize(cfg, st, labels, dup, run_s=3, total_s=4, interrupted=False, metrics_url=None, args=args)
    assert not s["exactly_once"]["ok"] and s["exactly_once"]["missing"] == 1 and s["exactly_once"]["duplicates"] == 1
    s = demo_report.summarize(cfg, st, labels, None, run_s=3, total_s=4, interrupted=True, metrics_url=None, args=args)
    assert s["exactly_once"] == {**s["exactly_once"], "checked": False, "ok": False}


def test_plot_writes_a_png_with_both_panels(tmp_path: Path) -> None:
    st = demo.DemoState(total=2000, drift_at=1000, produced=2000, produce_started_at=0.0, drift_produced_at=1.0)
    st.samples = [(float(t), _status([t * 100, t * 100], metric=0.7 + t / 100)) for t in range(1, 10)]
    rows = {p: [(i, (i % 3) != 0, 2 * i + p) for i in range(1000)] for p in (0, 1)}
    out = demo_report.plot(tmp_path / "p.png", st, demo_report.Predictions(I1Report(inputs=2000, predictions=2000), rows=rows), 1000)
    assert out is not None and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert demo_report.plot(tmp_path / "none.png", demo.DemoState(total=1, drift_at=1), None, 1) is None
