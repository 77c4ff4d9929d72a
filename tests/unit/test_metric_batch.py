"""A chunk's metric update at once gives the metric per-event updates give (streamlearn.model.metric_batch)."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest
from river import metrics

from streamlearn.model import metric_batch


def _pairs(n: int, labels: list[Any], preds: list[Any], seed: int) -> list[tuple[Any, Any]]:
    rnd = random.Random(seed)
    return [(rnd.choice(labels), rnd.choice(preds)) for _ in range(n)]


STREAMS = {
    "binary": ([True, False], [True, False]),
    "binary with no prediction": ([True, False], [True, False, None]),
    "1 and True are one class": ([True, False], [1, 0, True]),
    "multiclass": (["a", "b", "c"], ["a", "b", "c", "d"]),
}


@pytest.mark.parametrize("stream", sorted(STREAMS))
@pytest.mark.parametrize("make", [metrics.Accuracy, metrics.MacroF1, metrics.CohenKappa], ids=lambda c: c.__name__)
def test_chunked_updates_equal_per_event_updates(stream: str, make: type) -> None:
    labels, preds = STREAMS[stream]
    per_event, chunked = make(), make()
    assert metric_batch.batchable(chunked)
    pairs = _pairs(3_000, labels, preds, seed=len(stream))
    for y, p in pairs:
        per_event.update(y, p)
    for i in range(0, len(pairs), 250):  # chunks, as the hot path applies them
        metric_batch.apply(chunked, pairs[i:i + 250])
    assert chunked.get() == per_event.get()
    assert pickle.dumps(chunked) == pickle.dumps(per_event)  # the matrix, its dict order and float types included


def test_a_shared_matrix_counts_each_event_once() -> None:
    cm, ref_cm = metrics.ConfusionMatrix(), metrics.ConfusionMatrix()
    acc, ref = metrics.Accuracy(cm=cm), metrics.Accuracy(cm=ref_cm)
    pairs = _pairs(500, [True, False], [True, False], seed=3)
    for y, p in pairs:
        ref.update(y, p)
    metric_batch.apply(acc, pairs)
    assert cm.n_samples == ref_cm.n_samples == 500
    assert pickle.dumps(cm) == pickle.dumps(ref_cm)


class OwnUpdate(metrics.Accuracy):
    def update(self, y_true: Any, y_pred: Any, w: float = 1.0) -> None:
        super().update(y_true, y_pred, w * 2)


@pytest.mark.parametrize("metric", [metrics.F1(), metrics.LogLoss(), metrics.MAE(), OwnUpdate(),
                                    metrics.Accuracy(cm=type("MyMatrix", (metrics.ConfusionMatrix,), {})())],
                         ids=["binary F1 (maps labels)", "log loss", "MAE", "subclass with its own update", "matrix subclass"])
def test_other_metrics_keep_their_own_update(metric: Any) -> None:
    assert not metric_batch.batchable(metric)
