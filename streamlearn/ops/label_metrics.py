"""The delayed-label series of the metrics endpoint (labels.source: topic), from the status rows' `labels`.

Apart from `ops.metrics` only to keep that module small; the names and help
texts are in its `METRICS` table (so the README lists them), and nothing is
exported for an app in inline mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from streamlearn.labels.join import COUNTERS, DELAY_BUCKETS_S

PREFIX = "streamlearn_"


def label_families(status: dict[str, Any], app: str, doc: Callable[[str], Any]) -> list[Metric]:
    rows = [r for r in status.get("partitions", []) if r.get("labels")]
    if not rows:
        return []
    names = ("labels", "labels_pending", "labels_oldest_pending_age_seconds", "label_delay_seconds")
    kinds = (CounterMetricFamily, GaugeMetricFamily, GaugeMetricFamily, HistogramMetricFamily)
    fams = {n: cls(PREFIX + n, doc(n).help, labels=["app", "partition", *(["outcome"] if n == "labels" else [])])
            for n, cls in zip(names, kinds, strict=True)}
    for row in rows:
        lab, labels = row["labels"], [app, str(row["partition"])]
        for outcome in COUNTERS:
            fams["labels"].add_metric([*labels, outcome], float(lab.get(outcome, 0)))
        fams["labels_pending"].add_metric(labels, float(lab.get("pending", 0)))
        fams["labels_oldest_pending_age_seconds"].add_metric(labels, float(lab.get("oldest_pending_age_s", 0.0)))
        hist = list(lab.get("delay_hist") or [])
        if hist:
            buckets, running = [], 0
            for bound, count in zip(DELAY_BUCKETS_S, hist, strict=False):
                running += count
                buckets.append((floatToGoString(bound), running))
            buckets.append(("+Inf", sum(hist)))
            fams["label_delay_seconds"].add_metric(labels, buckets, float(lab.get("delay_sum_s", 0.0)))
    return list(fams.values())
