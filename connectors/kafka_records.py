"""Reading a topic from the beginning and producing records in a (paced) loop.

The one reader and the one producer loop of the project: the CLI's
`produce`/`consume`, the demo, the exactly-once checker, the tests and the
benchmark all use these, so a fix to how we wait for the end of a topic or
for broker acknowledgements lands everywhere at once. Knows nothing about
models or events: records are bytes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from connectors.kafka_io import KafkaUnavailable, Pacer, make_consumer, produce_blocking

POLL_EVERY = 1000  # serve delivery reports this often even when nothing else polls


class Record(NamedTuple):
    """One record to produce; partition None lets the partitioner pick by key."""

    key: bytes | None
    value: bytes | None
    partition: int | None = None


class ReadTimeout(TimeoutError):
    """A read did not reach its stop condition in time; the message says how far it got."""


def produce_records(
    producer: Producer,
    topic: str,
    records: Iterable[Record | tuple[bytes | None, bytes | None]],
    *,
    rate: float | None = None,
    stop: threading.Event | None = None,
    on_sent: Callable[[int], None] | None = None,
    flush_s: float = 60.0,
) -> int:
    """Send records in order at `rate` per second (None: as fast as possible), then wait for every ack.

    Records are produced as the iterable yields them, so a generator can
    stamp each one at its send time. Stops early when `stop` is set; calls
    `on_sent(n)` once the n-th record is handed over (before the pacer waits). Returns how many were sent; raises
    KafkaUnavailable if the broker did not acknowledge them within `flush_s`.
    """
    pacer = Pacer(rate)
    n = 0
    for rec in records:
        if stop is not None and stop.is_set():
            break
        partition = rec[2] if len(rec) > 2 else None
        produce_blocking(producer, topic, rec[1], rec[0], partition=partition)
        n += 1
        if on_sent is not None:
            on_sent(n)
        pacer.tick(producer)
        if n % POLL_EVERY == 0:
            producer.poll(0)
    left = producer.flush(flush_s)
    if left:
        raise KafkaUnavailable(f"{left} of {n} records to {topic} not acknowledged by Kafka within {flush_s:.0f}s")
    return n


class TopicReader:
    """A topic read from the beginning by a consumer of its own (a throw-away group that never commits).

    `batches()` yields what each poll returned (possibly nothing, so a caller
    can look at its own clock or stop flag); end-of-partition markers are
    kept in `at_end` rather than handed out. Non-fatal consumer errors are
    librdkafka's to recover from and are skipped; a fatal one is raised.
    """

    def __init__(self, bootstrap: str, topic: str, partitions: Iterable[int], *, extra: Mapping[str, Any] | None = None,
                 read_committed: bool = True, group_id: str | None = None) -> None:
        conf = {"enable.partition.eof": True, **dict(extra or {})}
        self.topic = topic
        self.partitions = sorted(partitions)
        self.at_end: set[int] = set()
        self.consumer: Consumer = make_consumer(bootstrap, group_id or f"reader-{uuid.uuid4().hex[:8]}", conf, read_committed=read_committed)
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in self.partitions])

    @property
    def caught_up(self) -> bool:
        """Every partition has reported its end (for read_committed: its last stable offset)."""
        return self.at_end >= set(self.partitions)

    def batches(self, poll_s: float = 0.5, max_records: int = 500) -> Iterator[list[Message]]:
        while True:
            out: list[Message] = []
            for m in self.consumer.consume(max_records, timeout=poll_s):
                err = m.error()
                if err is None:
                    self.at_end.discard(int(m.partition() or 0))
                    out.append(m)
                elif err.code() == KafkaError._PARTITION_EOF:
                    self.at_end.add(int(m.partition() or 0))
                elif err.fatal():
                    raise KafkaException(err)
            yield out

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_topic(
    bootstrap: str,
    topic: str,
    partitions: Iterable[int],
    *,
    extra: Mapping[str, Any] | None = None,
    read_committed: bool = True,
    group_id: str | None = None,
    to_end: bool = False,
    idle_s: float | None = None,
    until: Callable[[Sequence[Message]], bool] | None = None,
    max_records: int | None = None,
    deadline_s: float | None = None,
) -> Iterator[Message]:
    """The topic's records from the beginning, partition order kept, until the first stop condition holds.

    Stop conditions: every partition at its end (`to_end`), `idle_s` without
    a record, `until(records so far)`, `max_records`. `deadline_s` bounds the
    whole read: ReadTimeout if no stop condition held by then. With none of
    them the read goes on until the caller stops iterating.
    """
    seen: list[Message] = []
    n = 0
    start = last = time.monotonic()
    with TopicReader(bootstrap, topic, partitions, extra=extra, read_committed=read_committed, group_id=group_id) as reader:
        for batch in reader.batches():
            now = time.monotonic()
            for m in batch:
                if max_records is not None and n >= max_records:
                    return
                yield m
                n += 1
                if until is not None:
                    seen.append(m)
            if batch:
                last = now
            if ((to_end and reader.caught_up) or (max_records is not None and n >= max_records)
                    or (until is not None and until(seen)) or (idle_s is not None and now - last >= idle_s)):
                return
            if deadline_s is not None and now - start > deadline_s:
                missing = sorted(set(reader.partitions) - reader.at_end)
                raise ReadTimeout(f"{topic}: read {n} records in {deadline_s:.0f}s without reaching the end"
                                  f"{f' (partitions not at their end: {missing})' if to_end else ''}"
                                  f"{f'; first values: {[m.value() for m in seen[:10]]}' if until is not None else ''}")
