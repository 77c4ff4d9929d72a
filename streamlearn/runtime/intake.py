"""What the worker has fetched and not yet processed, per partition.

A poll returns up to `max_batch` records at once; the tasks process them
under a time bound (`eos.pacing`), so part of a poll can be left for the
next turn of the loop, after the commits that came due meanwhile. Left-over
records are tagged with the task's restore count: once the task has
restored (an aborted commit seeks the partition back), they belong to a
position the task no longer has and are dropped; the seek fetches them again.

A poll appends to what is held (a partition's records stay in fetch order),
so a partition whose commit is in flight keeps its records without stopping
the others from being fetched; polls stop while `max_batch` records are held.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from confluent_kafka import KafkaError

from streamlearn import logs

log = logs.get("worker")


class Backlog:
    """Fetched records per partition, each list with the restore count it was fetched under."""

    def __init__(self) -> None:
        self._held: dict[int, tuple[int, list[Any]]] = {}

    def __bool__(self) -> bool:
        return bool(self._held)

    def fill(self, consumer: Any, max_batch: int, wait_s: float, restores: dict[int, int], topic: str) -> None:
        """Poll once, up to `max_batch` records held in all, and hold what came after what was held.

        Held records of a partition that has restored since are stale (`take` would drop them):
        the new ones, fetched from the restored position, replace them.
        """
        room = max_batch - self.count()
        if room <= 0:
            return
        by_partition: dict[int, list[Any]] = defaultdict(list)
        for m in poll_batch(consumer, room, wait_s):
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    logs.event(log, logging.DEBUG, "consume_error", topic=topic, error=str(err))
                continue
            by_partition[m.partition()].append(m)
        for p, recs in by_partition.items():
            gen = restores.get(p, 0)
            held = self._held.get(p)
            if held is not None and held[0] == gen:
                held[1].extend(recs)
            else:
                self._held[p] = (gen, recs)

    def partitions(self) -> set[int]:
        """The partitions something is held for."""
        return set(self._held)

    def count(self) -> int:
        """Records held, all partitions."""
        return sum(len(recs) for _, recs in self._held.values())

    def take(self, restores: dict[int, int]) -> list[tuple[int, list[Any]]]:
        """Everything held for partitions that have not restored since it was fetched."""
        held, self._held = self._held, {}
        return [(p, recs) for p, (gen, recs) in held.items() if restores.get(p) == gen]

    def drop(self, partition: int) -> None:
        """The partition left this worker: what was fetched for it must never reach a later owner here."""
        self._held.pop(partition, None)

    def keep(self, partition: int, generation: int, records: list[Any]) -> None:
        """Records taken and not processed: back in front (they were fetched before anything held now)."""
        if records:
            held = self._held.get(partition)
            self._held[partition] = (generation, records + held[1] if held is not None and held[0] == generation else records)


def poll_batch(consumer: Any, max_batch: int, wait_s: float) -> list[Any]:
    """Whatever is fetched, as soon as there is something: wait for one record, then drain.

    `consume(n, timeout)` waits until it has n records or the timeout passes, so at a
    moderate rate every record sat out the whole poll timeout before it was even
    predicted. The wait is also cut at the next commit deadline, so a commit is never late
    because the loop was waiting for input.
    """
    first = consumer.poll(wait_s)
    if first is None:
        return []
    if max_batch <= 1:
        return [first]
    return [first, *consumer.consume(num_messages=max_batch - 1, timeout=0)]
