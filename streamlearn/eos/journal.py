"""Reading back for a label-mode recovery: the join journal, and the event and label ranges it names.

Each reader has a consumer of its own (read_committed, a group that never
commits), assigned to one partition at a given offset, so recovery does not
disturb the worker's shared consumer. The journal is read from the
checkpoint's J to its end: after init_transactions no transaction of this
partition is open, so its last stable offset is its end.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connectors import kafka_io
from streamlearn.config import AppConfig
from streamlearn.errors import StreamlearnError
from streamlearn.labels import journal
from streamlearn.labels.journal import JournalRecord

READ_DEADLINE_S = 120.0


class ReplayError(StreamlearnError):
    """Label-mode recovery cannot reproduce the committed run; the message names where (never guessed)."""


class PartitionReader:
    """One partition of one topic from `start`, record by record, with a deadline on silence."""

    def __init__(self, cfg: AppConfig, topic: str, partition: int, start: int, beat: Callable[[], object]) -> None:
        self.topic, self.partition, self.beat = topic, partition, beat  # beat: a long read is work, not a hang
        self.consumer = kafka_io.make_consumer(cfg.kafka.bootstrap, f"{cfg.group_id}-replay-{uuid.uuid4().hex[:8]}",
                                               {**cfg.kafka.consumer, "enable.partition.eof": True})
        self.consumer.assign([TopicPartition(topic, partition, start)])
        self.buf: deque[Any] = deque()
        self.at_end = False

    def _fill(self, stop_at_end: bool) -> None:
        """Consume until a record is buffered, or (`stop_at_end`) the partition reports its end.

        End-of-partition is reported once per reaching the end, possibly in the same batch as the
        last records: the flag stays set until a later record arrives, never reset by a caller.
        """
        deadline = time.monotonic() + READ_DEADLINE_S
        while not self.buf and not (stop_at_end and self.at_end):
            for m in self.consumer.consume(1000, timeout=0.5):
                err = m.error()
                if err is None:
                    self.buf.append(m)
                    self.at_end = False
                elif err.code() == KafkaError._PARTITION_EOF:
                    self.at_end = True
                elif err.fatal():
                    raise KafkaException(err)
            self.beat()
            if not self.buf and not (stop_at_end and self.at_end) and time.monotonic() > deadline:
                raise ReplayError(f"{self.topic}[{self.partition}]: no record{' and no end' if stop_at_end else ''} "
                                  f"within {READ_DEADLINE_S:.0f}s")

    def take(self, start: int, end: int) -> list[Any]:
        """The records at offsets in [start, end): the journal names them, so they exist; wait for them."""
        out: list[Any] = []
        if start >= end:
            return out
        while True:
            while self.buf and self.buf[0].offset() < end:
                out.append(self.buf.popleft())
            if self.buf or (out and out[-1].offset() >= end - 1):
                return out
            self._fill(stop_at_end=False)

    def to_end(self) -> Iterator[Any]:
        """Every record until the partition's end (its last stable offset)."""
        while True:
            while self.buf:
                yield self.buf.popleft()
            if self.at_end:
                return
            self._fill(stop_at_end=True)

    def close(self) -> None:
        self.consumer.close()


def journal_records(reader: PartitionReader) -> Iterator[tuple[int, JournalRecord]]:
    """(journal offset, record) from the reader's start to the journal's end."""
    for m in reader.to_end():
        try:
            yield m.offset(), journal.decode(m.value())
        except journal.JournalError as exc:
            raise ReplayError(f"{reader.topic}[{reader.partition}] offset {m.offset()}: {exc}") from None
