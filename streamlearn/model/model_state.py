"""What one partition's model step carries from event to event, and a checkpoint keeps.

It lives with the model (the hot path mutates it per event); ``streamlearn.state``
only encodes and authenticates it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SpecId:
    """Which model spec (hash of the `model:` section) and river version a model was built with.

    A checkpoint carries it so a changed `model.estimator` (or a river upgrade)
    is noticed at restore instead of silently keeping the old model.
    """

    spec_hash: str
    river_version: str

    def __str__(self) -> str:
        return f"spec {self.spec_hash} (river {self.river_version})"


@dataclass
class ModelState:
    """Everything a partition needs to resume: the model and its bookkeeping."""

    model: Any
    metric: Any
    offset: int  # next input offset the state has NOT seen yet (R)
    model_version: int  # number of labelled events learned, since the partition's beginning
    events: int  # events seen (predicted), since the partition's beginning
    extra: dict[str, Any] = field(default_factory=dict)
    spec_id: SpecId | None = None  # None: unknown (a checkpoint written before spec ids existed)
