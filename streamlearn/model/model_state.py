"""What one partition's model step carries from event to event, and a checkpoint keeps.

It lives with the model (the hot path mutates it per event); ``streamlearn.state``
only encodes and authenticates it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelState:
    """Everything a partition needs to resume: the model and its bookkeeping."""

    model: Any
    metric: Any
    offset: int  # next input offset the state has NOT seen yet (R)
    model_version: int  # number of labelled events learned, since the partition's beginning
    events: int  # events seen (predicted), since the partition's beginning
    extra: dict[str, Any] = field(default_factory=dict)
