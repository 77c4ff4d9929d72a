"""A river Pipeline's per-event calls, made without the Pipeline's own dispatch.

Why: `Pipeline.predict_proba_one` and `Pipeline.learn_one` walk a plan of
steps on every call (kind tests, parameter routing, learn-during-predict
checks). For the common `scaler | estimator` pipeline that walk was about a
tenth of the engine's whole per-event step (chunk-interleaved in-memory A/B,
`bench/results/raw/fused-s37/`). The calls made here are the ones the
Pipeline makes, on the same step objects, with the same arguments, in the
same order (river 0.26's `Pipeline.learn_one` and `_transform_one`), so the
model after any stream is bit for bit the model the Pipeline's own methods
would have built (tests/unit/test_fused_pipeline.py holds them to it).

Only the plain shape is fused: unsupervised transformers, then a supervised
final estimator, no learn-during-predict, on a river release whose internals
the tests were run against (`TESTED_RIVER`). A union, a supervised
transformer, an anomaly filter, a Pipeline subclass or another river keeps
the Pipeline's own methods: slower, never different.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import river
from river import compose

Features = dict[str, Any]

#: River releases whose Pipeline plan and ConfusionMatrix attributes (`metric_batch`) the unit tests compare
#: against river's own methods; any other release takes the public methods.
TESTED_RIVER = ("0.26.",)


def river_tested(version: str | None = None) -> bool:
    return (version if version is not None else river.__version__).startswith(TESTED_RIVER)


@dataclass(frozen=True)
class Calls:
    """What the hot path calls per event: `predict_proba` is None for a regressor or when not asked for."""

    predict_proba: Callable[[Features], dict[Any, float]] | None
    predict: Callable[[Features], Any]
    learn: Callable[[Features, Any], Any]
    fused: bool


def calls(model: Any, is_classifier: bool) -> Calls:
    """The model's per-event calls: fused for a plain Pipeline, its own methods otherwise."""
    plain = _plain_steps(model)
    if plain is None:
        return Calls(getattr(model, "predict_proba_one", None) if is_classifier else None, model.predict_one,
                     model.learn_one, fused=False)
    transformers, final = plain
    return Calls(_predict(transformers, final.predict_proba_one) if is_classifier else None,
                 _predict(transformers, final.predict_one), _learn(transformers, final.learn_one), fused=True)


def _plain_steps(model: Any) -> tuple[tuple[Any, ...], Any] | None:
    """(transformers, final) when `model` is a Pipeline the fused calls reproduce exactly; else None."""
    if not river_tested() or type(model) is not compose.Pipeline \
            or getattr(compose.Pipeline, "_LEARN_UNSUPERVISED_DURING_PREDICT", True):
        return None
    build = getattr(model, "_build_plan", None)
    if build is None:
        return None
    plan = getattr(model, "_plan", None) or build()
    if len(plan) < 2:
        return None
    *steps, last = plan
    # (kind, step, is_supervised, accepted params): river 0.26's plan items.
    if any(len(item) < 3 or item[0] != "transformer" or item[2] for item in steps):
        return None
    if len(last) < 3 or last[0] != "final" or not last[2]:
        return None
    return tuple(item[1] for item in steps), last[1]


def _predict(transformers: tuple[Any, ...], final: Callable[[Features], Any]) -> Callable[[Features], Any]:
    if len(transformers) == 1:
        transform = transformers[0].transform_one

        def predict_one_step(x: Features) -> Any:
            return final(transform(x))

        return predict_one_step
    transforms = tuple(t.transform_one for t in transformers)

    def predict(x: Features) -> Any:
        for transform_one in transforms:
            x = transform_one(x)
        return final(x)

    return predict


def _learn(transformers: tuple[Any, ...], final: Callable[..., Any]) -> Callable[[Features, Any], Any]:
    # Pipeline.learn_one: each unsupervised transformer learns x, then transforms it (with what it
    # just learned) for the next step; the final step learns with keywords, as the Pipeline calls it.
    if len(transformers) == 1:
        learn0, transform0 = transformers[0].learn_one, transformers[0].transform_one

        def learn_one_step(x: Features, y: Any) -> Any:
            learn0(x)
            return final(x=transform0(x), y=y)

        return learn_one_step
    steps = tuple((t.learn_one, t.transform_one) for t in transformers)

    def learn(x: Features, y: Any) -> Any:
        for learn_one, transform_one in steps:
            learn_one(x)
            x = transform_one(x)
        return final(x=x, y=y)

    return learn
