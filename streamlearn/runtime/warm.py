"""A run's clients, made and connected before the run is called: a standby's head start.

A takeover's first Kafka calls used to open the connections: the consumer's
first watermark request paid for bootstrap, metadata and the leader's
connection (measured 0.7 s under load), its first `committed()` for finding
the group coordinator, and its first fetch after `assign` for the fetch
connection. A standby waits idle for seconds or hours before it is needed,
so it does all of that while waiting, in a background thread started with
the actor: open the Redis connection, list the topics, read one
watermark and the group's committed offsets, then settle its heap.

Only reads, and nothing that claims a partition: no epoch, no lease and,
above all, no transactional producer (init_transactions would fence the
partition's owner). Those stay in the run, in the protocol's order. A
warm-up that fails leaves nothing behind: the run makes its own clients, as
it always did.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer

from connectors import kafka_io
from connectors.redis_store import CheckpointStore, open_store
from streamlearn import logs
from streamlearn.config import AppConfig

log = logs.get("worker")

WARM_WAIT_S = 30.0  # a run called during the warm-up waits for it (it would do the same work itself)


@dataclass
class Clients:
    """What `run_loop.Run` needs from Kafka and Redis before it takes any partition."""

    store: CheckpointStore
    consumer: Consumer
    out_partitions: int
    dlq_limit: int

    def close(self) -> None:
        self.consumer.close()


def connect(cfg: AppConfig) -> Clients:
    """The run's clients, not yet warm (what `Run` did itself before)."""
    store = open_store(cfg.redis, cfg.app, cfg.kafka.input_topic)
    consumer = kafka_io.make_consumer(cfg.kafka.bootstrap, cfg.group_id, cfg.kafka.consumer)
    adm = kafka_io.admin(cfg.kafka.bootstrap, cfg.kafka.consumer)
    out_parts = len(kafka_io.topic_partitions(adm, cfg.kafka.output_topic) or [0])
    # The DLQ's own limit when readable, else one safely under Kafka's 1 MB default.
    dlq_limit = min(kafka_io.topic_max_message_bytes(adm, cfg.kafka.dlq_topic) or 1_000_000, kafka_io.LARGE_MESSAGE_BYTES)
    return Clients(store, consumer, out_parts, dlq_limit)


def warm_up(cfg: AppConfig, clients: Clients) -> None:
    """Open the connections a takeover needs first: Redis, the input's leader, the group coordinator."""
    topic = cfg.kafka.input_topic
    clients.store.current_epoch(0)
    parts = sorted(p for p in clients.consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    if parts:
        kafka_io.watermarks(clients.consumer, topic, parts[0])
        kafka_io.committed_offsets(clients.consumer, topic, parts)


class Standby:
    """Clients prepared in a background thread; `take` hands them to one run (or None: make your own)."""

    def __init__(self, cfg: AppConfig, name: str, settle: Callable[[], None] | None = None) -> None:
        self._cfg = cfg
        # The run's first step (`heap.settle`: a full collection of the import heap, 0.2-0.3 s
        # measured under load) done here too, so that the run's own call finds nothing to do.
        self._settle = settle
        self._clients: Clients | None = None
        self._done = threading.Event()
        self._taken = False
        self._lock = threading.Lock()
        threading.Thread(target=self._prepare, name=f"warm-{name}", daemon=True).start()

    def _prepare(self) -> None:
        t0 = time.monotonic()
        clients = None
        try:
            clients = connect(self._cfg)
            warm_up(self._cfg, clients)
            if self._settle is not None:
                self._settle()
            logs.event(log, logging.INFO, "standby_warm", topic=self._cfg.kafka.input_topic,
                       ms=round((time.monotonic() - t0) * 1000, 1))
        except Exception as exc:  # the run makes its own clients and reports the problem itself
            logs.event(log, logging.WARNING, "standby_warm_failed", topic=self._cfg.kafka.input_topic,
                       error=f"{type(exc).__name__}: {str(exc)[:200]}")
            if clients is not None:
                clients.close()
            clients = None
        with self._lock:
            if self._taken and clients is not None:  # nobody waits for it any more
                clients.close()
                clients = None
            self._clients = clients
        self._done.set()

    def take(self, wait_s: float = WARM_WAIT_S) -> Clients | None:
        self._done.wait(wait_s)
        with self._lock:
            self._taken = True
            clients, self._clients = self._clients, None
        return clients
