"""Step 2, restore: checkpoint R and committed offset K, then replay [R, K) emitting nothing.

The checkpoint is HMAC-verified before it is unpickled (`state.checkpoint`).
R <= K by I4; a checkpoint that claims more is refused rather than trusted.
A checkpoint at R > 0 with no committed offset at all is not trusted either:
the group's offsets expired (offsets.retention.minutes) or the group was
renamed, and going on from R re-emits every prediction committed after it;
`processing.on_missing_committed_offset` refuses (fail) or says so loudly
(warn). With neither a checkpoint nor a committed offset the partition is
new: its fresh model starts where `processing.start_from` says, and that
position is kept in Redis so that a restart before the first commit does
not decide it again (a "latest" would skip what arrived in between).
Replay runs the records the group already committed through the same
predict → learn sequence as live processing (`model.step`), with no
emitters: their predictions are already visible, and some river transformers
change state while predicting, so skipping predict would break I2.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from connectors import kafka_io
from connectors.redis_store import CheckpointStore
from streamlearn import faults, logs
from streamlearn.config import AppConfig, start_position
from streamlearn.errors import CheckpointError, CommittedOffsetMissingError, OwnershipLostError
from streamlearn.model import step
from streamlearn.model.codec import EventDecoder
from streamlearn.model.spec import build_metric, build_model
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState

log = logs.get("protocol")

LogContext = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Restored:
    state: ModelState  # as of the checkpoint: state.offset is R, where reading starts
    committed: int  # K: replay [R, K) silently, emit from K on


def restore_state(
    cfg: AppConfig, store: CheckpointStore, consumer: Consumer, partition_id: int, ckpt_key: bytes, epoch: int, ctx: LogContext,
    mark: Callable[[str], None] = lambda _step: None,
) -> Restored:
    """Load checkpoint R and committed K (Kafka's under exactly_once, Redis's under at_least_once); `mark` times the steps."""
    topic = cfg.kafka.input_topic
    low, high = kafka_io.watermarks(consumer, topic, partition_id)
    mark("watermarks")
    if cfg.processing.guarantee == "exactly_once":
        committed = kafka_io.committed_offsets(consumer, topic, [partition_id])[partition_id]
    else:
        committed = store.committed_offset(partition_id)
    mark("committed_offset")
    state = _load_checkpoint(cfg, store, partition_id, ckpt_key, committed, ctx, mark)
    current = checkpoint.spec_id(cfg.model)
    state = _on_spec_change(cfg, state, current, partition_id, ctx)
    if state is None:
        origin = store.start_offset(partition_id)
        if origin is None and committed is None:
            origin = _new_partition_start(cfg, store, consumer, partition_id, epoch, low, high, ctx)
        state = ModelState(build_model(cfg.model), build_metric(cfg.model), offset=max(origin or low, low), model_version=0, events=0)
    elif committed is None and state.offset > 0:
        _committed_offset_missing(cfg, partition_id, state.offset, epoch, ctx)
    state.spec_id = current  # what the next checkpoint records (after `keep`, the operator adopted the old model)
    if state.offset < low:
        logs.event(
            log, logging.WARNING, "retention_gap",
            **ctx(checkpoint_offset=state.offset, earliest_retained=low,
                  note="records before the earliest retained offset are gone; the model cannot include them"),
        )
        state.offset = low
    k = committed if committed is not None else state.offset
    k = max(k, state.offset)
    logs.event(log, logging.INFO, "restored", **ctx(checkpoint_offset=state.offset, committed_offset=k, replay=k - state.offset))
    return Restored(state, k)


def _committed_offset_missing(cfg: AppConfig, partition_id: int, offset: int, epoch: int, ctx: LogContext) -> None:
    """A checkpoint at R > 0 but no committed offset: refuse, or go on from R and say it loudly."""
    topic = cfg.kafka.input_topic
    where = f"consumer group '{cfg.group_id}'" if cfg.processing.guarantee == "exactly_once" else "Redis offset key"
    policy = cfg.processing.on_missing_committed_offset
    logs.event(
        log, logging.ERROR, "committed_offset_missing",
        **ctx(checkpoint_offset=offset, committed_in=where, policy=policy,
              note="offsets expired (offsets.retention.minutes) or kafka.group_id changed"
                   + ("" if policy == "fail" else "; predictions after the checkpoint are written again")),
    )
    if policy == "fail":
        raise CommittedOffsetMissingError(topic, partition_id, offset, epoch, where)


def _new_partition_start(
    cfg: AppConfig, store: CheckpointStore, consumer: Consumer, partition_id: int, epoch: int, low: int, high: int, ctx: LogContext
) -> int:
    """Where a partition with no checkpoint and no committed offset starts (`processing.start_from`)."""
    topic = cfg.kafka.input_topic
    where = start_position(cfg.processing.start_from)
    if where == "earliest":
        return low  # nothing to keep: the earliest retained offset is always known
    if where == "latest":
        offset = high
    else:
        assert not isinstance(where, str)
        found = kafka_io.offset_for_time(consumer, topic, partition_id, int(where.timestamp() * 1000))
        offset = high if found is None else found
    res = store.record_start(partition_id, epoch, offset)
    if not res.ok:
        raise OwnershipLostError(topic, partition_id, epoch, f"start position refused: Redis epoch is now {res.current}")
    logs.event(log, logging.INFO, "start_position", **ctx(start_from=cfg.processing.start_from, offset=res.current, decided=offset))
    return res.current


def _on_spec_change(cfg: AppConfig, state: ModelState | None, current: checkpoint.SpecId, partition_id: int,
                    ctx: LogContext) -> ModelState | None:
    """`checkpoint.on_spec_change` for a checkpoint of another model spec: raise (fail), None (reset) or keep it."""
    if state is None:
        return None
    choice = checkpoint.spec_decision(state.spec_id, current, cfg.checkpoint.on_spec_change,
                                      topic=cfg.kafka.input_topic, partition=partition_id)
    if choice != "same":
        logs.event(log, logging.WARNING, f"checkpoint_spec_{choice}",
                   **ctx(checkpoint_spec=str(state.spec_id), configured_spec=str(current), offset=state.offset))
    return None if choice == "reset" else state


def _load_checkpoint(
    cfg: AppConfig, store: CheckpointStore, partition_id: int, ckpt_key: bytes, committed: int | None, ctx: LogContext,
    mark: Callable[[str], None] = lambda _step: None,
) -> ModelState | None:
    policy = cfg.checkpoint.on_invalid
    stored = store.read_checkpoint(partition_id)
    mark("checkpoint_read")
    if stored is None:
        return None
    candidates = [("latest", stored)]
    if policy == "previous":
        prev = store.read_previous_checkpoint(partition_id)
        if prev is not None:
            candidates.append(("previous", prev))
    for which, cand in candidates:
        try:
            state = checkpoint.decode(cand.blob, ckpt_key)
        except CheckpointError as exc:
            logs.event(log, logging.ERROR, "checkpoint_refused", **ctx(which=which, offset=cand.offset, reason=exc.message))
            store.incr_counter(partition_id, "checkpoints_refused")
            if policy == "fail":
                raise CheckpointError(exc.message, topic=cfg.kafka.input_topic, partition=partition_id,
                                      hint="set checkpoint.on_invalid to previous or replay_earliest, or delete the key") from None
            continue
        mark("checkpoint_decoded")
        if state.offset != cand.offset:
            logs.event(log, logging.ERROR, "checkpoint_offset_mismatch", **ctx(blob_offset=state.offset, stored_offset=cand.offset))
            continue
        if committed is not None and state.offset > committed:
            # Would break I4; never written by this protocol, but refuse rather than emit twice.
            logs.event(log, logging.ERROR, "checkpoint_ahead_of_commit", **ctx(checkpoint_offset=state.offset, committed_offset=committed))
            continue
        return state
    logs.event(log, logging.WARNING, "checkpoint_fallback_replay", **ctx(policy=policy))
    return None


def replay(
    state: ModelState, records: Sequence[Any], replay_until: int, decoder: EventDecoder, partition_id: int, is_classifier: bool,
    observe: step.Observe | None = None,
) -> tuple[Sequence[Any], bool]:
    """Run the records below K through the model silently; returns the live rest, and whether replay is done.

    `observe` (the publish gate's window) sees the replayed learning steps as the live run saw them.
    """
    live_from = 0
    while live_from < len(records) and records[live_from].offset() < replay_until:
        live_from += 1
    step.process(state, records[:live_from], decoder, partition_id, is_classifier, None, None, observe)
    if faults.ENABLED:
        faults.point("during_replay")
    done = live_from < len(records) or state.offset >= replay_until
    if done:
        state.offset = max(state.offset, replay_until)
    return records[live_from:], done


def seek_to(consumer: Consumer, topic: str, partition_id: int, offset: int) -> None:
    """Move the shared consumer to where a recovered partition starts reading again."""
    tp = TopicPartition(topic, partition_id, offset)
    try:
        consumer.seek(tp)
    except KafkaException:
        consumer.incremental_unassign([TopicPartition(topic, partition_id)])
        consumer.incremental_assign([tp])
