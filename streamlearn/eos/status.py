"""The fields one partition publishes to its status hash in Redis.

`streamlearn status`, the metrics exporter and the demo read them: the names,
and the phase values, never change.
"""

from __future__ import annotations

import json
import os
import time

from confluent_kafka import Consumer

from connectors import kafka_io
from connectors.redis_store import CheckpointStore
from streamlearn.eos.checkpointing import Checkpoints
from streamlearn.eos.commit import CommitStats
from streamlearn.eos.ownership import Ownership
from streamlearn.eos.phase import Phase
from streamlearn.state.checkpoint import ModelState

# The Ray node of this process ({"node_id", "node_ip"}), set once by the PartitionWorker running
# here: the runtime layer knows Ray, this one does not. Published with every partition's status
# so `streamlearn status` (Redis only, no Ray) shows where each partition runs.
NODE: dict[str, str] = {}


class StatusPublisher:
    """Writes one partition's status under its epoch; events per second count from the previous write."""

    def __init__(self, store: CheckpointStore, consumer: Consumer, ownership: Ownership) -> None:
        self.store, self.consumer, self.ownership = store, consumer, ownership
        self._events_published = 0

    def publish(self, elapsed_s: float, *, phase: Phase, committed_offset: int, state: ModelState,
                checkpoints: Checkpoints, commits: CommitStats, error: str | None) -> None:
        """`elapsed_s`: the time since the last publish (0: none). A replaced owner's write is refused: it raises."""
        own = self.ownership
        events = state.events
        eps = (events - self._events_published) / elapsed_s if elapsed_s > 0 else 0.0
        self._events_published = events
        hw = kafka_io.cached_high_watermark(self.consumer, own.topic, own.partition_id)
        res = self.store.publish_status(own.partition_id, own.epoch, status_fields(
            owner=own.owner, epoch=own.epoch, phase=phase, committed_offset=committed_offset, state=state,
            checkpoints=checkpoints, commits=commits, high_watermark=hw, eps=eps, error=error))
        if not res.ok:  # replaced: the new owner's status stays
            raise own.lost(own.epoch, f"status refused: Redis epoch is now {res.current}")


def status_fields(
    *,
    owner: str,
    epoch: int,
    phase: Phase,
    committed_offset: int,
    state: ModelState,
    checkpoints: Checkpoints,
    commits: CommitStats,
    high_watermark: int | None,
    eps: float,
    error: str | None = None,
) -> dict[str, str | int | float]:
    metric = state.metric
    # A halted partition's model ran ahead of what was committed; what counts is where it stopped.
    position = committed_offset if phase is Phase.FAILED else state.offset
    try:
        metric_value = float(metric.get())
    except Exception:
        metric_value = float("nan")
    fields: dict[str, str | int | float] = {
        "owner": owner,
        "pid": os.getpid(),
        "epoch": epoch,
        "phase": phase.value,
        "committed_offset": committed_offset,
        "position": position,
        "checkpoint_offset": checkpoints.offset,
        "checkpoint_ts_ms": checkpoints.ts_ms,
        "checkpoint_bytes": checkpoints.nbytes,
        "events": state.events,
        "dlq": int(state.extra.get("dlq", 0)),
        "model_version": state.model_version,
        "metric_name": type(metric).__name__,
        "metric_value": metric_value,
        "eps": round(eps, 1),
        "commits": commits.count,
        "commit_sum_ms": round(commits.sum_ms, 3),
        "commit_hist": ",".join(map(str, commits.hist)),
        "budget_commits": commits.budget,
        "updated_ms": int(time.time() * 1000),
    }
    fields.update(NODE)
    fields["error"] = error or ""  # always written: a hash field is only replaced, never dropped, by HSET
    join = state.extra.get("labels")
    if join is not None:  # label mode: the join's counters, pending, oldest age and delay histogram, as one JSON field
        fields["labels"] = json.dumps(join.summary(), separators=(",", ":"))
    if high_watermark is not None:
        fields["high_watermark"] = high_watermark
        fields["lag"] = max(high_watermark - position, 0)
    return fields
