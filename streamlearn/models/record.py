"""The metadata record of one published version: its lineage, as `models list` and serving show it.

`{version, partition, epoch, offset, events_learned, created_at, metric: {name, value, window},
spec_hash, river_version, size_bytes}` plus `app` and `topic`, so a blob copied
from another app or partition is recognised as foreign. `offset` is the next
input offset the model has not seen: the version learned exactly the committed
records [0, offset) of its partition. `created_at` is epoch milliseconds, like
every timestamp of the data contract.
"""

from __future__ import annotations

import time
from typing import Any

import river

from streamlearn.config import ModelConfig
from streamlearn.state.checkpoint import spec_id

FIELDS = ("version", "partition", "epoch", "offset", "events_learned", "created_at", "metric",
          "spec_hash", "river_version", "size_bytes")


def spec_hash(spec: ModelConfig) -> str:
    """Which model spec produced the version: the checkpoints' fingerprint (`state.checkpoint.spec_id`)."""
    return spec_id(spec).spec_hash


def make_meta(*, app: str, topic: str, partition: int, version: int, epoch: int, offset: int, events_learned: int,
              metric_name: str, metric_value: float | None, window: int, spec: str, size_bytes: int) -> dict[str, Any]:
    return {
        "app": app,
        "topic": topic,
        "version": version,
        "partition": partition,
        "epoch": epoch,
        "offset": offset,
        "events_learned": events_learned,
        "created_at": int(time.time() * 1000),
        "metric": {"name": metric_name, "value": metric_value, "window": window},
        "spec_hash": spec,
        "river_version": river.__version__,
        "size_bytes": size_bytes,
    }
