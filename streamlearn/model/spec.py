"""Model spec → one fresh, seeded river estimator per input partition.

Determinism is a product guarantee (I2): a recovered model must equal one
that never crashed, so every component that accepts a `seed` gets the
configured one, and a partition's model depends only on the spec and the
ordered records of that partition.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from river import base, compose

from streamlearn.config import ModelConfig, PreprocessingStep, import_dotted
from streamlearn.errors import ConfigError


@dataclass(frozen=True)
class ModelKind:
    """What the worker needs to know about the estimator to predict and validate labels."""

    is_classifier: bool
    is_multiclass: bool


def _instantiate(path: str, params: dict[str, Any], seed: int, key: str) -> Any:
    try:
        cls = import_dotted(path)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}", hint="use a dotted path such as river.linear_model.LogisticRegression") from None
    kwargs = dict(params)
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        sig = None
    if sig is not None and "seed" in sig.parameters and "seed" not in kwargs:
        kwargs["seed"] = seed
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{key}: cannot build {path}({kwargs}): {exc}", hint=f"check {key} params against the class signature") from None


def build_model(spec: ModelConfig) -> Any:
    """A new pipeline `preprocessing | estimator`, seeded."""
    estimator = _instantiate(spec.estimator, spec.params, spec.seed, "model.estimator")
    if not isinstance(estimator, base.Estimator):
        raise ConfigError(
            f"model.estimator: {spec.estimator} is not a river estimator",
            hint="use a river class such as river.linear_model.LogisticRegression or river.tree.HoeffdingTreeClassifier",
        )
    steps: list[Any] = []
    for i, step in enumerate(spec.preprocessing):
        name, params = (step, {}) if isinstance(step, str) else (step.name, step.params)
        steps.append(_instantiate(name, params, spec.seed, f"model.preprocessing.{i}"))
    if not steps:
        return estimator
    return compose.Pipeline(*steps, estimator)


def build_metric(spec: ModelConfig) -> Any:
    return _instantiate(spec.metric, {}, spec.seed, "model.metric")


def model_kind(model: Any) -> ModelKind:
    final = model
    if isinstance(model, compose.Pipeline):
        final = list(model.steps.values())[-1]
    is_clf = isinstance(final, base.Classifier)
    return ModelKind(is_classifier=is_clf, is_multiclass=bool(is_clf and getattr(final, "_multiclass", False)))


def describe(spec: ModelConfig) -> str:
    names = [s if isinstance(s, str) else s.name for s in spec.preprocessing]
    return " | ".join([*(n.rsplit(".", 1)[-1] for n in names), spec.estimator.rsplit(".", 1)[-1]])


__all__ = ["ModelKind", "PreprocessingStep", "build_metric", "build_model", "describe", "model_kind"]
