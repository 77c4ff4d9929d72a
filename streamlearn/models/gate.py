"""The validation gate: a candidate version is published only if it is not worse than the served one.

The task keeps the last `model.publish.gate.window` labelled events it
learned, with the prediction the candidate model made for each *before*
learning it (prequential, like the stream's own metric): filled by the
inline hot path, or in label mode by the join at the moment each label is
learned (`labels.join`). In the forked
publish child the gate then checks, in this order:

1. `too_large`: the signed blob exceeds `max_size_mb`;
2. `non_finite`: the candidate's outputs on the window's features, or its
   metric, are NaN or infinite;
3. `metric_drop`: its metric over the window is worse than the served
   version's over the same events by more than `max_drop` (in the metric's
   own units; "worse" follows the metric's `bigger_is_better`). The served
   version is scored by predicting the buffered features now; events it had
   already learned favour it, so the comparison errs towards keeping it.

No served version yet (the first publish): only 1 and 2 apply.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from streamlearn.config import PublishGateConfig
from streamlearn.models.blob import PublishedModel

Labelled = tuple[dict[str, Any], Any, Any]  # (features, label, prequential prediction)
REASONS = ("metric_drop", "non_finite", "too_large")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""  # one of REASONS when refused
    detail: str = ""
    candidate: float | None = None  # metric over the window
    served: float | None = None


def metric_over(metric_factory: Callable[[], Any], labels: Sequence[Any], preds: Sequence[Any]) -> float | None:
    if not labels:
        return None
    metric = metric_factory()
    for y, p in zip(labels, preds, strict=True):
        metric.update(y, p)
    return float(metric.get())


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int | float):
        return math.isfinite(value)
    return True  # class labels (strings) are finite by nature


def evaluate(candidate: PublishedModel, window: Sequence[Labelled], served: PublishedModel | None, size_bytes: int,
             metric_factory: Callable[[], Any], gate: PublishGateConfig) -> Verdict:
    if size_bytes > gate.max_size_mb * 1024 * 1024:
        return Verdict(False, "too_large", f"{size_bytes} bytes > model.publish.gate.max_size_mb={gate.max_size_mb}")
    labels = [y for _, y, _ in window]
    preds = [p for _, _, p in window]
    for x, _, _ in window:
        pred, proba = candidate.predict(x)
        if not _finite(pred) or (proba is not None and not all(math.isfinite(v) for v in proba.values())):
            return Verdict(False, "non_finite", f"prediction {pred!r} / proba {proba!r} on a window event")
    cand = metric_over(metric_factory, labels, preds)
    if cand is not None and not math.isfinite(cand):
        return Verdict(False, "non_finite", f"metric over the window is {cand}")
    if served is None:
        return Verdict(True, candidate=cand)  # the first version: nothing to compare with
    if cand is None:  # e.g. a restored learner in label mode before its first label joined: no evidence either way
        return Verdict(False, "no_evidence", f"no labelled event in the gate window yet to compare with served v{served.version}; "
                       "considered again at the next model.publish.every_s")
    served_value = metric_over(metric_factory, labels, [served.predict(x)[0] for x, _, _ in window])
    if served_value is None or not math.isfinite(served_value):
        return Verdict(True, candidate=cand, served=served_value)
    bigger_is_better = bool(getattr(metric_factory(), "bigger_is_better", True))
    drop = served_value - cand if bigger_is_better else cand - served_value
    if drop > gate.max_drop:
        return Verdict(False, "metric_drop",
                       f"{cand:.4f} vs served v{served.version} {served_value:.4f} over {len(labels)} events "
                       f"(drop {drop:.4f} > model.publish.gate.max_drop={gate.max_drop})", cand, served_value)
    return Verdict(True, candidate=cand, served=served_value)


class Contrarian:
    """Test only (`model.publish.gate.test_force_bad`): a classifier that answers the least likely class.

    Lets a test prove that the gate refuses a regressing candidate without
    waiting for a real model to regress.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        proba = self.model.predict_proba_one(x)
        return {k: 1.0 - v for k, v in proba.items()} if len(proba) == 2 else proba

    def predict_one(self, x: dict[str, Any]) -> Any:
        proba = self.predict_proba_one(x)
        return max(proba, key=proba.__getitem__) if proba else None
