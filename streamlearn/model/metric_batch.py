"""The prequential metric, updated once per chunk when that gives the same metric.

Why: river's classification metrics update a confusion matrix per event
(`ClassificationMetric.update` → `ConfusionMatrix.update`: five dict and
float updates), 3-5 % of the engine's per-event step in the chunk-interleaved
A/B (`bench/results/raw/fused-s37/`). The hot path collects the chunk's
(label, prediction) pairs instead and `apply` adds each distinct pair's count
at once. That is exact: every update has weight 1.0, so the matrix holds
whole numbers, and adding k whole numbers one at a time or at once gives the
same float below 2**53; the pairs are counted in order of first appearance,
so even the matrix's dicts gain their keys in the same order
(tests/unit/test_metric_batch.py compares the pickles).

Any other metric (a regression metric, a binary metric that maps labels
first, a subclass with its own `update`, a matrix subclass), or any metric on
a river release the tests were not run against (`fused.TESTED_RIVER`), keeps
its own `update`, called per event as before.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from river import metrics

from streamlearn.model.fused import river_tested


def batchable(metric: Any) -> bool:
    """Whether `apply` gives `metric` exactly what per-event `update` calls would."""
    cm = getattr(metric, "cm", None)
    return (river_tested() and isinstance(metric, metrics.base.ClassificationMetric)
            and type(metric).update is metrics.base.ClassificationMetric.update
            and type(cm) is metrics.ConfusionMatrix and type(cm).update is metrics.ConfusionMatrix.update)


def apply(metric: Any, pairs: list[tuple[Any, Any]]) -> None:
    """`metric.update(y, p)` for every pair, in order, as one update per distinct pair (`batchable` metrics only)."""
    if not pairs:
        return
    cm = metric.cm
    data, sum_row, sum_col = cm.data, cm.sum_row, cm.sum_col
    total = 0
    for (y, p), k in Counter(pairs).items():
        w = float(k)
        data[y][p] += w
        sum_row[y] += w
        sum_col[p] += w
        if y == p:
            cm._total_true_positives += w
        total += k
    cm.n_samples += total
    cm.total_weight += float(total)
