"""Kafka plumbing: consumers, transactional sinks, admin, offsets.

Knows nothing about models. The settings that make exactly-once work are
fixed here (read_committed, no auto-commit, idempotence) and user settings
from `kafka.consumer` / `kafka.producer` pass through on top, so security
(SASL, SSL) needs no code, but a user cannot silently turn off what the
guarantee depends on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

# Settings the exactly-once protocol depends on; user overrides of these are refused.
PINNED_CONSUMER = {"enable.auto.commit": False, "isolation.level": "read_committed", "enable.auto.offset.store": False}
PINNED_TXN_PRODUCER = {"enable.idempotence": True, "acks": "all"}
LARGE_MESSAGE_BYTES = 4 * 1024 * 1024  # the DLQ forwards records up to the broker's limit unchanged
# Only failed deliveries call back (DeliveryReports): no Python call per acknowledged message.
ENGINE_PRODUCER = {"delivery.report.only.error": True}

_FENCED_CODES = {
    KafkaError._FENCED,
    KafkaError.PRODUCER_FENCED,
    KafkaError.INVALID_PRODUCER_EPOCH,
    KafkaError.INVALID_PRODUCER_ID_MAPPING,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
}


_COORDINATOR_MOVING = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._WAIT_COORD,
}


class KafkaUnavailable(ConnectionError):
    """The broker did not answer; the message says where."""


class PinnedSettingError(ValueError):
    """A passthrough setting would break the delivery guarantee."""


def _check_pinned(extra: Mapping[str, Any], pinned: Mapping[str, Any], section: str) -> None:
    for key, val in pinned.items():
        if key in extra and extra[key] != val:
            raise PinnedSettingError(f"kafka.{section}.{key}={extra[key]!r} is not allowed: streamlearn needs {key}={val!r}")


def make_consumer(bootstrap: str, group_id: str, extra: Mapping[str, Any] | None = None, *, read_committed: bool = True) -> Consumer:
    extra = dict(extra or {})
    pinned = dict(PINNED_CONSUMER)
    if not read_committed:
        pinned["isolation.level"] = "read_uncommitted"
    _check_pinned(extra, pinned, "consumer")
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 50,
        "fetch.max.bytes": LARGE_MESSAGE_BYTES * 2,
        "max.partition.fetch.bytes": LARGE_MESSAGE_BYTES,
        "queued.max.messages.kbytes": 65536,
        "log_level": 3,
        **extra,
        **pinned,
    }
    return Consumer(conf)


def make_transactional_producer(
    bootstrap: str, transactional_id: str, transaction_timeout_ms: int, extra: Mapping[str, Any] | None = None,
    linger_ms: int = 5,
) -> Producer:
    """`linger_ms`: what a transaction produces is invisible until it commits, and the commit
    flushes at once (librdkafka ignores linger.ms then), so lingering up to the commit interval
    costs no latency and sends a transaction's records in a few requests instead of one every
    5 ms (fewer broker requests, less client CPU). A user's `linger.ms` in `extra` still wins."""
    extra = dict(extra or {})
    _check_pinned(extra, PINNED_TXN_PRODUCER, "producer")
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "linger.ms": linger_ms,
        "message.max.bytes": LARGE_MESSAGE_BYTES,
        "log_level": 3,
        **extra,
        **ENGINE_PRODUCER,
        **PINNED_TXN_PRODUCER,
        "transactional.id": transactional_id,
        "transaction.timeout.ms": transaction_timeout_ms,
    }
    return Producer(conf)


def make_producer(bootstrap: str, extra: Mapping[str, Any] | None = None, *, engine: bool = False) -> Producer:
    """Idempotent, non-transactional (at_least_once mode and the CLI's produce).

    `engine`: the at_least_once worker's producer, whose failed deliveries
    reach `DeliveryReports` (and only those: successes do not call back).
    """
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "linger.ms": 5,
        "enable.idempotence": True,
        "acks": "all",
        "message.max.bytes": LARGE_MESSAGE_BYTES,
        "log_level": 3,
        **dict(extra or {}),
        **(ENGINE_PRODUCER if engine else {}),
    }
    return Producer(conf)


def produce_blocking(producer: Producer, topic: str, value: bytes | None, key: bytes | None, partition: int | None = None) -> None:
    """produce(), waiting for local queue space instead of failing with BufferError."""
    while True:
        try:
            if partition is None:
                producer.produce(topic, value, key)
            else:
                producer.produce(topic, value, key, partition=partition)
            return
        except BufferError:
            producer.poll(0.05)


# librdkafka's poll timeout is whole milliseconds: poll(0.0002) returns at once, so waiting out a gap
# shorter than this by polling is a busy loop (it used most of a core at 2k-12k msg/s).
POLL_RESOLUTION_S = 0.001


class Pacer:
    """Holds a producer to `rate` messages per second; serves delivery callbacks while it waits.

    A wait shorter than POLL_RESOLUTION_S is skipped: records may leave up to
    1 ms early, in small bursts, instead of the pacer spinning a core that a
    benchmark's system under test (or a demo's learner) needs.
    """

    def __init__(self, rate: float | None, max_wait_s: float = 0.5) -> None:
        import time

        self._clock = time.monotonic
        self.rate = rate
        self.max_wait_s = max_wait_s
        self.started = self._clock()
        self.sent = 0

    def tick(self, producer: Producer) -> None:
        self.sent += 1
        if not self.rate:
            return
        while True:
            ahead = self.sent / self.rate - (self._clock() - self.started)
            if ahead < POLL_RESOLUTION_S:
                return
            producer.poll(min(ahead, self.max_wait_s))


def is_fenced(exc: BaseException) -> bool:
    if not isinstance(exc, KafkaException) or not exc.args:
        return False
    err = exc.args[0]
    return isinstance(err, KafkaError) and (err.code() in _FENCED_CODES or (err.fatal() and err.code() in _FENCED_CODES))


def is_fatal(exc: BaseException) -> bool:
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(err, KafkaError) and err.fatal()


def requires_abort(exc: BaseException) -> bool:
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(err, KafkaError) and err.txn_requires_abort()


def is_retriable(exc: BaseException) -> bool:
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(err, KafkaError) and err.retriable()


def admin(bootstrap: str, extra: Mapping[str, Any] | None = None) -> AdminClient:
    # Admin takes only the client-level (security) settings of the consumer section. Its calls raise
    # (KafkaUnavailable names the broker), so librdkafka's own connect-error lines (level 3) would only
    # print raw noise above that message: log_level 2 keeps critical ones.
    # No auto-creation: `topic_partitions` asks for one topic by name, and librdkafka lets a producer-type
    # handle (the admin client is one) auto-create the topics it names, with the broker's default count.
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "log_level": 2, "allow.auto.create.topics": False}
    for k, v in (extra or {}).items():
        if k.startswith(("security.", "sasl.", "ssl.")) or k in {"client.id"}:
            conf[k] = v
    return AdminClient(conf)


def topic_partitions(client: AdminClient, topic: str, timeout_s: float = 10.0) -> list[int] | None:
    """Partition ids of a topic, None if it does not exist; KafkaUnavailable if the broker is down.

    `client` from `admin()`: it asks for this one topic by name, which a client allowed to auto-create
    topics would create. Not every topic of the cluster: on a broker with 1,164 topics that cost 12 ms
    of CPU a call against 0.26 ms (measured), and the Coordinator lists every 10 s."""
    try:
        md = client.list_topics(topic, timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailable(f"Kafka did not answer a metadata request within {timeout_s:.0f}s ({exc.args[0]})") from None
    tmd = md.topics.get(topic)
    if tmd is None or tmd.error is not None:
        if tmd is not None and tmd.error is not None and tmd.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise KafkaUnavailable(f"metadata of topic {topic} failed: {tmd.error}")
        return None
    return sorted(tmd.partitions)


def ensure_topic(client: AdminClient, topic: str, partitions: int, config: Mapping[str, str] | None = None,
                 timeout_s: float = 30.0, replication_factor: int | None = None) -> bool:
    """Create the topic if missing; True if created. Races with another creator are fine.

    `replication_factor` None: the broker's `default.replication.factor`.
    `config`: topic settings (e.g. `max.message.bytes`), stated explicitly so a
    topic does not silently inherit a broker default the app cannot live with.
    """
    existing = topic_partitions(client, topic)
    if existing is not None:
        return False
    rf = -1 if replication_factor is None else replication_factor
    fut = client.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=rf, config=dict(config or {}))],
                               request_timeout=timeout_s)[topic]
    try:
        fut.result(timeout=timeout_s)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        return False
    # Creation is asynchronous on the broker side: wait until metadata shows it.
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if topic_partitions(client, topic) is not None:
            return True
        time.sleep(0.05)
    raise KafkaUnavailable(f"topic {topic} was created but did not appear in metadata within {timeout_s:.0f}s")


def grow_topic(client: AdminClient, topic: str, partitions: int, timeout_s: float = 30.0) -> None:
    """Add partitions to an existing topic up to `partitions` (never shrinks); waits until metadata shows them."""
    import time

    existing = topic_partitions(client, topic)
    if existing is None or len(existing) >= partitions:
        return
    fut = client.create_partitions([NewPartitions(topic, partitions)], request_timeout=timeout_s)[topic]
    try:
        fut.result(timeout=timeout_s)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.INVALID_PARTITIONS:  # another grower got there first
            raise
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(topic_partitions(client, topic) or []) >= partitions:
            return
        time.sleep(0.05)
    raise KafkaUnavailable(f"topic {topic} was grown to {partitions} partitions but metadata did not show them within {timeout_s:.0f}s")


def topic_max_message_bytes(client: AdminClient, topic: str, timeout_s: float = 10.0) -> int | None:
    """The topic's `max.message.bytes` (the largest record batch it accepts); None if it cannot be read."""
    try:
        futs = client.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)], request_timeout=timeout_s)
        entries = next(iter(futs.values())).result(timeout=timeout_s)
        return int(entries["max.message.bytes"].value)
    except Exception:  # no DescribeConfigs permission, unknown topic, old broker: the caller picks a safe bound
        return None


def committed_offsets(consumer: Consumer, topic: str, partitions: Iterable[int], timeout_s: float = 10.0) -> dict[int, int | None]:
    """Kafka's committed offset K per partition for the consumer's group (None if never committed).

    Retries while the group coordinator is moving or loading (normal right
    after a broker start), up to `timeout_s`.
    """
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            tps = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=max(deadline - time.monotonic(), 1.0))
            break
        except KafkaException as exc:
            err = exc.args[0]
            if time.monotonic() >= deadline or not (err.retriable() or err.code() in _COORDINATOR_MOVING):
                raise KafkaUnavailable(f"committed offsets of {topic} unavailable: {err}") from None
            time.sleep(0.2)
    out: dict[int, int | None] = {}
    for tp in tps:
        if tp.error is not None:
            raise KafkaUnavailable(f"committed offset of {topic}[{tp.partition}] unavailable: {tp.error}")
        out[tp.partition] = tp.offset if tp.offset >= 0 else None
    return out


def watermarks(consumer: Consumer, topic: str, partition: int, timeout_s: float = 5.0) -> tuple[int, int]:
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s, cached=False)
    return int(low), int(high)


def cached_high_watermark(consumer: Consumer, topic: str, partition: int) -> int | None:
    """High watermark from the last fetch response (no network call); None if unknown."""
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
    except KafkaException:
        return None
    return int(high) if high >= 0 else None


def offset_for_time(consumer: Consumer, topic: str, partition: int, ts_ms: int, timeout_s: float = 10.0) -> int | None:
    """The first offset whose record timestamp is at or after ts_ms; None if there is none yet."""
    try:
        (tp,) = consumer.offsets_for_times([TopicPartition(topic, partition, ts_ms)], timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailable(f"offset of {topic}[{partition}] at {ts_ms} ms unavailable: {exc.args[0]}") from None
    if tp.error is not None:
        raise KafkaUnavailable(f"offset of {topic}[{partition}] at {ts_ms} ms unavailable: {tp.error}")
    return tp.offset if tp.offset >= 0 else None
