"""The sections of the app config about data and processing (kafka, redis, processing, fields, checkpoint, metrics, ray).

The learning side (model, labels, publishing, serving) is in ``streamlearn.config_model``.

Apart from ``streamlearn.config`` (the whole ``AppConfig``, its loading and
its environment overrides) so each file stays readable; import them from
``streamlearn.config``, which re-exports every name here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

SECRET_ENV = "STREAMLEARN_CHECKPOINT_SECRET"
# processing.stuck_loop_s's default margin over owner_lease_s: beyond every bounded client call.
STUCK_MARGIN_S = 60.0


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class KafkaConfig(_Section):
    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,host:port].")
    input_topic: str = Field("events", description="Topic the events are read from.")
    output_topic: str = Field("predictions", description="Topic one prediction per event is written to.")
    dlq_topic: str = Field("events-dlq", description="Dead-letter topic for records that cannot be decoded or validated.")
    group_id: str | None = Field(
        None, description="Consumer group the committed offsets belong to (default: `streamlearn-<app>`)."
    )
    transaction_timeout_ms: int = Field(
        10_000,
        ge=1_000,
        le=900_000,
        description="transaction.timeout.ms: how long a dead worker's open transaction can hold back read_committed readers.",
    )
    label_topic: str | None = Field(
        None, description="labels.source: topic only: topic the delayed labels arrive on ({id, label, ts}, keyed by id), "
                          "co-partitioned with the input (same partition count, same partitioner). Default: `{input_topic}.labels`.",
    )
    samples_topic: str | None = Field(
        None, description="Training-sample log: one record per learning step, in the order learned, in the same transaction. "
                          "Default with labels.source: topic: `{input_topic}.samples`; in inline mode written only when set. "
                          "Partition p holds input partition p's samples (created with the input's count).",
    )
    create_topics: bool = Field(True, description="Create the output and DLQ topics (same partition count as the input) when missing.")
    replication_factor: int | None = Field(
        None, ge=1, le=32,
        description="Replication factor of the topics streamlearn creates (null: the broker's default.replication.factor).",
    )
    max_message_bytes: int = Field(
        4 * 1024 * 1024, ge=65_536, le=4 * 1024 * 1024,
        description="max.message.bytes of the topics streamlearn creates: the DLQ forwards records up to this size "
                    "unchanged (larger ones go with their value dropped and a header saying so).",
    )
    consumer: dict[str, Any] = Field(
        default_factory=dict, description="librdkafka consumer settings passed through (security.protocol, sasl.*, ssl.* ...)."
    )
    producer: dict[str, Any] = Field(
        default_factory=dict, description="librdkafka producer settings passed through (security included). Unless linger.ms is set here, "
                                    "exactly_once producers linger up to processing.commit_interval_ms (at most 1000 ms): "
                                    "a transaction's records are invisible until its commit, which sends them at once."
    )

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, v: str) -> str:
        for part in v.split(","):
            host, _, port = part.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"'{part}' is not host:port (e.g. 127.0.0.1:9092)")
        return v


class RedisConfig(_Section):
    url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis URL; rediss:// for TLS, redis://user:password@host:port/db for ACL users.",
    )
    key_prefix: str = Field("streamlearn", description="Prefix of every key streamlearn writes.")
    ssl_ca_certs: str | None = Field(None, description="CA bundle for rediss:// URLs.")
    socket_timeout_s: float = Field(5.0, gt=0, description="Timeout of one Redis call before it counts as an outage.")

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        if not raw.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix:// (e.g. redis://127.0.0.1:6379/0)")
        return v


class AutoscaleConfig(_Section):
    enabled: bool = Field(
        False, description="Resize the number of PartitionWorkers from the measured input lag, within min_workers..max_workers "
                           "(docs/scale-out.md). Off: processing.workers stays as started.",
    )
    min_workers: int = Field(1, ge=1, le=1024, description="Fewest owning workers autoscaling goes down to.")
    max_workers: int = Field(
        4, ge=1, le=1024, description="Most owning workers autoscaling goes up to (more than the input partitions would idle).",
    )
    target_lag_per_worker: int = Field(
        10_000, gt=0,
        description="Input records not yet committed that one worker is expected to carry: the desired count is "
                    "ceil(total lag / this), smoothed over a few samples; scaling down waits until the lag is well below it.",
    )
    cooldown_s: float = Field(
        60.0, ge=0, description="At most one autoscaling change per this many seconds (and none before it has passed since start).",
    )

    @model_validator(mode="after")
    def _bounds(self) -> AutoscaleConfig:
        if self.min_workers > self.max_workers:
            raise ValueError(f"min_workers ({self.min_workers}) is above max_workers ({self.max_workers}); "
                             "fix: raise processing.autoscale.max_workers or lower processing.autoscale.min_workers")
        return self


class ProcessingConfig(_Section):
    guarantee: Literal["exactly_once", "at_least_once"] = Field(
        "exactly_once", description="exactly_once: Kafka transactions. at_least_once: no transactions; a crash can duplicate predictions."
    )
    workers: int = Field(2, ge=1, le=1024, description="Number of PartitionWorker actors.")
    standby_workers: int = Field(
        1, ge=0, le=64,
        description="Idle PartitionWorkers kept started: a dead worker's partitions move to one at once instead of "
                    "waiting for Ray to start a new process (about 2 s of recovery). Each holds one Ray CPU slot; 0 turns it off.",
    )
    commit_interval_ms: int = Field(100, ge=1, le=600_000, description="Longest time a transaction stays open (latency vs throughput).")
    max_batch: int = Field(
        5000, ge=1, le=1_000_000,
        description="Most events per partition per transaction, and most fetched records a worker holds unprocessed "
                    "(all its partitions together: the loop keeps polling while a partition's commit is in flight, up to "
                    "this many). Under a backlog it sets the transaction size "
                    "(each transaction costs a few ms; 1000 spent 11 % of the loop committing, 5000 about 5 %).",
    )
    checkpoint_every_events: int = Field(10_000, ge=0, description=(
        "Checkpoint after this many events (0: never by count), but not sooner than checkpoint_min_interval_s "
        "after the previous one."))
    checkpoint_min_interval_s: float = Field(1.0, ge=0, le=3600, description=(
        "Least time between two checkpoints of a partition that fall due by count (0: none; the time trigger and "
        "model versions are not held back). Each checkpoint costs a fork and a Redis write: without it a fast "
        "partition would checkpoint several times a second (at ~50,000 events/s on 2 cores, 1 s against none gave 3-9 % "
        "more throughput and 6-12 % less CPU per event, bench/results/raw/ckpt-rate-s40/). What a new owner replays after a crash is then at most "
        "the larger of checkpoint_every_events and this many seconds of the partition's input (like Flink's "
        "min pause between checkpoints)."))
    checkpoint_every_s: float = Field(5.0, ge=0, description=(
        "Checkpoint after this many seconds (0: never by time). It bounds what a new owner replays after a crash: "
        "1 s recovers faster than the default 5 s at the cost of a checkpoint a second (docs/recovery-timeline.md). "
        "When one partition's checkpoint is due, the worker's other partitions at least half-way to theirs (by either "
        "setting) commit and are checkpointed with it, by one forked child: their next ones then fall due together. "
        "A round due while another partition's child is still writing waits for it, at most half an interval."))
    max_restarts: int = Field(-1, ge=-1, description="Ray restarts of a dead worker (-1: unlimited). Not used when "
                              "standby_refill_delay_s > 0 and standby_workers > 0: a dead worker is then "
                              "replaced by a fresh one.")
    standby_refill_delay_s: float = Field(
        0.0, ge=0, le=3600,
        description="0 (default): Ray restarts a dead worker at once (`max_restarts`) and it becomes the next standby. "
                    "> 0, e.g. 5 on a small machine (with standby_workers > 0): workers are not restarted by Ray; a dead worker's partitions go to "
                    "the standby and a fresh standby starts this many seconds later, so its start-up (0.8-3.4 CPU-s "
                    "measured) does not take CPU from the new owner's catch-up (recovery median 1.8-2.4 s against "
                    "2.5-4.3 s on 2 cores). Idle standbys are pinged each quarter lease; a dead one is replaced. A death "
                    "within the delay finds no standby: its partitions go to a new worker at once. Not the default yet: one CI "
                    "run never caught up after a broker outage with it on, a hang not reproduced since "
                    "(docs/recovery-timeline.md).")
    owner_lease_s: float = Field(
        10.0, gt=0, description="A worker that has not renewed its lease for this long loses its partitions to another worker."
    )
    stuck_loop_s: float | None = Field(
        None, gt=0, le=86_400,
        description="A worker whose loop has not turned for this long, while it still answers pings, is stuck in a "
                    "client call: it is killed and its partitions recovered elsewhere (`worker_stuck_restarting`, with "
                    "the call it was stuck in). Default (empty): owner_lease_s + 60, beyond every bounded Kafka call "
                    "(one transactional call is waited for up to 35 s, its 30 s timeout + 5); a lower value restarts workers that merely wait on a slow "
                    "broker. Must be more than owner_lease_s: it is checked once a lease has lapsed.")
    poll_timeout_ms: int = Field(50, ge=1, le=10_000, description="Longest wait for new records in one poll.")
    max_value_bytes: int = Field(
        262_144, ge=1, description="Records whose value is larger go to the DLQ (reason value_too_large)."
    )
    status_interval_s: float = Field(1.0, gt=0, description="How often workers publish status and metrics to Redis.")
    redis_retry_s: float = Field(1.0, gt=0, description="Pause between retries while Redis is unreachable.")
    start_from: str = Field(
        "earliest",
        description="Where a partition with no checkpoint and no committed offset starts: `earliest` (the whole retained "
                    "topic), `latest` (only events produced from now on) or an ISO 8601 timestamp with a time zone, e.g. "
                    "`2025-11-24T12:00:00Z` (the first event at or after it). The position chosen is kept in Redis, "
                    "so a restart never re-decides it.",
    )
    on_missing_committed_offset: Literal["fail", "warn"] = Field(
        "fail",
        description="A partition has a checkpoint at offset R > 0 but its consumer group has no committed offset (the "
                    "group's offsets expired after offsets.retention.minutes, or kafka.group_id changed). fail: refuse to "
                    "run it, logging committed_offset_missing, until the offset is restored. warn: log it loudly and go on "
                    "from R; predictions of the events after R that were already committed are written again.",
    )
    autoscale: AutoscaleConfig = Field(default_factory=AutoscaleConfig)  # type: ignore[arg-type]

    @property
    def stuck_after_s(self) -> float:
        """`stuck_loop_s`, or its default owner_lease_s + 60."""
        return self.stuck_loop_s if self.stuck_loop_s is not None else self.owner_lease_s + STUCK_MARGIN_S

    @model_validator(mode="after")
    def _stuck_after_the_lease(self) -> ProcessingConfig:
        if self.stuck_loop_s is not None and self.stuck_loop_s <= self.owner_lease_s:
            raise ValueError(f"processing.stuck_loop_s ({self.stuck_loop_s}) must be more than processing.owner_lease_s "
                             f"({self.owner_lease_s}); fix: raise it (default: owner_lease_s + {STUCK_MARGIN_S:.0f}) "
                             "or remove it")
        return self

    @model_validator(mode="after")
    def _workers_within_autoscale_bounds(self) -> ProcessingConfig:
        a = self.autoscale
        if a.enabled and not a.min_workers <= self.workers <= a.max_workers:
            # The start count is the user's: silently clamping it would hide a config that contradicts itself.
            raise ValueError(f"processing.workers ({self.workers}) is outside processing.autoscale.min_workers.."
                             f"max_workers ({a.min_workers}..{a.max_workers}); fix: set processing.workers within them "
                             "(it is the count the app starts with) or widen the bounds")
        return self

    @field_validator("start_from", mode="before")
    @classmethod
    def _start_from(cls, v: Any) -> str:
        # YAML reads an unquoted timestamp as a datetime: accept it like its text.
        text = v.isoformat() if isinstance(v, datetime) else v
        if not isinstance(text, str):
            raise ValueError("must be earliest, latest or an ISO 8601 timestamp (e.g. 2025-11-24T12:00:00Z)")
        start_position(text)
        return text


def start_position(text: str) -> str | datetime:
    """`processing.start_from` parsed: "earliest", "latest", or a time-zone-aware datetime (ValueError otherwise)."""
    if text in ("earliest", "latest"):
        return text
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is neither earliest, latest nor an ISO 8601 timestamp (e.g. 2025-11-24T12:00:00Z)") from None
    if when.tzinfo is None:
        raise ValueError(f"'{text}' has no time zone; add one, e.g. {text}Z for UTC or {text}+01:00")
    return when


class FieldsConfig(_Section):
    id: str = Field("id", description="Field of the input JSON holding the event id (string or integer), copied to the prediction.")
    features: str = Field("features", description="Field holding the feature mapping {name: number or string}.")
    label: str = Field("label", description="Field holding the label; absent or null: predict only, no learning.")
    ts: str = Field("ts", description="Optional field with the event time in epoch milliseconds, copied to the prediction as event_ts.")


class CheckpointConfig(_Section):
    secret: SecretStr | None = Field(
        None, description=f"HMAC key of checkpoint blobs; {SECRET_ENV} takes precedence. Without one a per-app development key is used (see docs)."
    )
    on_invalid: Literal["previous", "replay_earliest", "fail"] = Field(
        "previous",
        description="A checkpoint that fails verification: fall back to the previous valid one, replay from the earliest retained offset, or stop.",
    )
    allow_dev_key: bool = Field(
        False,
        description="Allow running without a checkpoint secret, signing with a per-app development key that anyone who "
                    "knows the app name can forge. For local development only (the demo sets it); production sets "
                    f"{SECRET_ENV}.",
    )
    on_spec_change: Literal["fail", "reset", "keep"] = Field(
        "fail",
        description="A checkpoint written for another model: section or river version: stop with an error (fail), start a "
                    "fresh model replayed from the earliest retained offset (reset), or restore the old model anyway (keep).",
    )
    child_timeout_s: float = Field(
        30.0, gt=0, le=3600,
        description="Deadline of a forked checkpoint child: past it the worker kills it (a child forked from a "
                    "multi-threaded process can deadlock), counts it (checkpoint_child_timeouts) and writes that "
                    "partition's next checkpoint inline.",
    )
    background: bool = Field(
        True,
        description="Write checkpoints from a forked child (a copy-on-write snapshot, like Redis BGSAVE), so pickling and "
                    "storing a large model does not pause the partitions. false: write inline. Ignored where fork() is unavailable.",
    )


class MetricsConfig(_Section):
    port: int | None = Field(9464, ge=0, le=65535, description="Prometheus endpoint of `streamlearn run` (null: off, 0: any free port).")
    host: str = Field("127.0.0.1", description="Address the metrics endpoint binds to.")


# Linux nice values a process may run at (0 normal priority, 19 the lowest); negative ones need privileges.
NICENESS_MAX = 19


class RayConfig(_Section):
    worker_niceness: int = Field(
        0,
        description="Nice value of every Ray worker process of the local Ray instance `streamlearn run` / `serve` "
                    "starts (PartitionWorkers, Coordinator, Serve replicas): 0 runs them at the priority of the broker "
                    "and Redis; Ray's own default, 15, lets any other busy process take the CPU from the hot path "
                    "(latency tails). On a cluster it is each node's setting (RAY_worker_niceness in `ray start`'s "
                    "environment, docs/scale-out.md); workers log worker_niceness_differs when theirs is not this one.",
    )

    metrics: bool = Field(
        False,
        description="Ray's own metrics on the local Ray instance (every Ray process exporting its gauges to the node's "
                    "metrics agent; Ray's `enable_metrics_collection`). Off by default: streamlearn's /metrics "
                    "endpoints do not use them, and the export costs CPU in every Ray process and the agent (turning it "
                    "off together with ray.idle_workers, and a driver that reads the status less often, took an idle "
                    "1-worker app from 15.7-17.8 to 11.8-12.6 % of a core: bench/results/raw/control-plane-s28/). Set true to scrape Ray's own metrics. A cluster keeps "
                    "its head's setting.",
    )
    idle_workers: bool = Field(
        False,
        description="Keep Ray's pool of idle worker processes (`ray::IDLE`) warm on the local Ray instance (Ray's "
                    "default: one per logical CPU). Off by default: streamlearn's actors are long-lived, a standby "
                    "takes over a dead owner's partitions, and each idle process cost about 1 % of a core doing "
                    "nothing (bench/results/raw/control-plane-s28/); a new actor then starts its own process. A "
                    "cluster keeps its head's setting.",
    )

    @field_validator("worker_niceness", mode="before")
    @classmethod
    def _niceness(cls, v: Any) -> int:
        # Checked here rather than with ge/le, so the message says what the number means and what to set.
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= NICENESS_MAX:
            raise ValueError(f"must be an integer from 0 to {NICENESS_MAX} (a Linux nice value: 0 is normal priority, "
                             f"{NICENESS_MAX} the lowest); fix: set ray.worker_niceness: 0 (the default) unless the machine "
                             "must favour other processes over streamlearn")
        return v
