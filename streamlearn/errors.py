"""Error types with context, raised where a problem is detected.

The CLI turns each into one line plus a hint; nothing here prints. Every
error carries the coordinates an operator needs to find the record or the
partition (topic, partition, offset, epoch) when they are known.
"""

from __future__ import annotations


class StreamlearnError(Exception):
    """Base class: a message for humans and an optional hint on how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(StreamlearnError):
    """Configuration is invalid; the message names the key and the fix."""


class ServiceUnavailableError(StreamlearnError):
    """Kafka or Redis is down or unreachable: says which and where."""


class CheckpointError(StreamlearnError):
    """A checkpoint could not be read, verified or written."""

    def __init__(
        self,
        message: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = f" (topic={topic} partition={partition})" if topic is not None else ""
        super().__init__(message + where, hint)
        self.topic = topic
        self.partition = partition


class CheckpointTamperedError(CheckpointError):
    """The HMAC did not match: the blob is refused before anything is unpickled."""


class OwnershipLostError(StreamlearnError):
    """Another worker owns the partition now (we were fenced or our epoch is stale)."""

    def __init__(self, topic: str, partition: int, epoch: int, reason: str) -> None:
        super().__init__(
            f"lost ownership of {topic}[{partition}] at epoch {epoch}: {reason}"
        )
        self.topic = topic
        self.partition = partition
        self.epoch = epoch


class CommittedOffsetMissingError(StreamlearnError):
    """A checkpoint says events were processed, but no committed offset exists for the partition.

    Trusting the checkpoint would re-emit every prediction committed after it;
    `processing.on_missing_committed_offset` decides whether to refuse or go on.
    `where` names the store of committed offsets: the consumer group (exactly_once)
    or the Redis offset key (at_least_once).
    """

    def __init__(self, topic: str, partition: int, offset: int, epoch: int, where: str) -> None:
        super().__init__(
            f"{topic}[{partition}] has a checkpoint at offset {offset} (epoch {epoch}) but {where} has no committed "
            "offset: it expired (offsets.retention.minutes) or kafka.group_id changed",
            hint="restore the committed offset (kafka-consumer-groups.sh --reset-offsets --to-offset <the offset after the "
                 "last prediction written> --execute), or set processing.on_missing_committed_offset: warn to go on from "
                 "the checkpoint and write its later predictions again",
        )
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.epoch = epoch


class DecodeError(Exception):
    """A record that cannot be decoded or validated; its reason goes to the DLQ.

    Deliberately not a StreamlearnError: it is data, not a fault, and it is
    raised on the hot path, so it stays as cheap as a plain exception.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class DeliveryFailedError(StreamlearnError):
    """The broker refused an output for good: the partition stops here instead of replaying forever.

    Nothing is lost: the input offset is not committed past the refused
    record, so a restart after the fix (topic limit, ACL, recreated topic)
    resumes with it.
    """

    def __init__(self, topic: str, partition: int, offset: int | None, epoch: int, cause: str) -> None:
        at = f"offset {offset}" if offset is not None else "an unknown offset"
        super().__init__(
            f"{topic}[{partition}] stopped at {at} (epoch {epoch}): output refused by Kafka: {cause}",
            hint="fix the cause (e.g. the topic's max.message.bytes, its ACLs, or recreate it), then restart",
        )
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.epoch = epoch
