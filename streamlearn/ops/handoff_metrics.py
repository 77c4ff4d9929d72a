"""The live-rescale series of the metrics endpoint, from the status dict's `handoffs` and `autoscale`.

Apart from `ops.metrics` only to keep that module small; the names and help
texts are in its `METRICS` table (so the README lists them). App-wide series
(label `app` only): a hand-off is an event of the app, not of a partition's
model, and the pause histogram is kept app-wide in Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from connectors.autoscale_store import DIRECTIONS
from connectors.rescale_store import PAUSE_BUCKETS_S

PREFIX = "streamlearn_"


def handoff_families(status: dict[str, Any], app: str, doc: Callable[[str], Any]) -> list[Metric]:
    h = status.get("handoffs") or {}  # none yet: a count of 0 is a fact, not a missing series
    total = CounterMetricFamily(PREFIX + "handoffs", doc("handoffs").help, labels=["app"])
    total.add_metric([app], float(h.get("count", 0)))
    pause = HistogramMetricFamily(PREFIX + "handoff_pause_seconds", doc("handoff_pause_seconds").help, labels=["app"])
    hist = list(h.get("hist") or [0] * (len(PAUSE_BUCKETS_S) + 1))
    buckets, running = [], 0
    for bound, count in zip(PAUSE_BUCKETS_S, hist, strict=False):
        running += count
        buckets.append((floatToGoString(bound), running))
    buckets.append(("+Inf", sum(hist)))
    pause.add_metric([app], buckets, float(h.get("sum_s", 0.0)))
    return [total, pause]


def autoscale_families(status: dict[str, Any], app: str, doc: Callable[[str], Any]) -> list[Metric]:
    """streamlearn_autoscale_decisions_total{direction}: up, down, and held (by the cooldown), from Redis's counts."""
    counts = (status.get("autoscale") or {}).get("counts") or {}
    total = CounterMetricFamily(PREFIX + "autoscale_decisions", doc("autoscale_decisions").help, labels=["app", "direction"])
    for direction in DIRECTIONS:
        total.add_metric([app, direction], float(counts.get(direction, 0)))
    return [total]
