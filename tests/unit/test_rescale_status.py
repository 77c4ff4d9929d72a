"""Hand-offs in the metrics endpoint and in `streamlearn status`."""

from __future__ import annotations

from typing import Any

from connectors.rescale_store import PAUSE_BUCKETS_S
from streamlearn.ops import metrics
from streamlearn.ops.cli import _workers_text


def _status(**handoffs: Any) -> dict[str, Any]:
    return {"partitions": [], "totals": {"workers": 3}, "handoffs": handoffs}


def test_handoff_series_from_the_status() -> None:
    hist = [0] * (len(PAUSE_BUCKETS_S) + 1)
    hist[4], hist[6] = 2, 1  # two at most 1 s, one at most 2 s
    fams = {f.name: f for f in metrics.families(_status(count=3, sum_s=3.1, hist=hist), "app")}
    assert [s.value for s in fams["streamlearn_handoffs"].samples if s.name.endswith("_total")] == [3.0]
    buckets = {s.labels["le"]: s.value for s in fams["streamlearn_handoff_pause_seconds"].samples if s.name.endswith("_bucket")}
    assert buckets["0.75"] == 0 and buckets["1.0"] == 2 and buckets["2.0"] == 3 and buckets["+Inf"] == 3


def test_status_line_shows_workers_handoffs_and_the_last_request() -> None:
    st = _status(count=4, pause_p50_s=0.8, pause_p99_s=1.1,
                 scale={"seq": 2, "phase": "applied", "message": "1 worker(s) own the partitions, 2 moved"})
    assert _workers_text(st) == ("workers=3 handoffs=4 pause p50=0.80s p99=1.10s "
                                 "last scale #2: applied (1 worker(s) own the partitions, 2 moved)")
    assert _workers_text({"totals": {}, "handoffs": {}}) == "workers=0 handoffs=0"
