"""Shared plumbing of the benchmark: private services, topics, datasets, the committed-output reader.

Why a reader of our own: every system is measured the same way, by a
read_committed consumer of its output topic in the orchestrator process.
Throughput is the arrival rate of committed predictions (first to last);
latency is arrival time minus the produce time the producer wrote into the
event's `ts` (the systems copy it into the output as `event_ts`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.kafka_io import admin, topic_partitions
from connectors.kafka_records import Record, TopicReader, produce_records
from streamlearn.tools.datasets import synthetic_events

PARTITIONS = 4


@dataclass
class Services:
    bootstrap: str
    redis_url: str
    owned: list[Any] = field(default_factory=list)

    def pids(self) -> list[int]:
        """The private broker's and Redis's processes (none when reusing someone else's services)."""
        return [pid for svc in self.owned if isinstance(pid := getattr(svc, "pid", None), int)]

    def stop(self) -> None:
        for svc in self.owned:
            with contextlib.suppress(Exception):  # best effort at exit
                svc.stop()


def start_services(root: Path) -> Services:
    """A private broker and Redis (own state dirs, free ports): other users of the machine stay unaffected."""
    from connectors.services.kafka_local import LocalKafka
    from connectors.services.redis_local import LocalRedis

    kafka = LocalKafka(state_dir=root / "kafka", port=0, controller_port=0).start()
    redis = LocalRedis(state_dir=root / "redis", port=0).start()
    return Services(kafka.bootstrap, redis.url, [kafka, redis])


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topics(bootstrap: str, names: list[str], partitions: int = PARTITIONS) -> None:
    adm = AdminClient({"bootstrap.servers": bootstrap})
    futs = adm.create_topics([NewTopic(n, partitions, 1) for n in names])
    for f in futs.values():
        f.result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = adm.list_topics(timeout=10)
        if all(n in md.topics and len(md.topics[n].partitions) == partitions for n in names):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topics {names} not visible")


def delete_topics(bootstrap: str, names: list[str]) -> None:
    adm = AdminClient({"bootstrap.servers": bootstrap})
    for f in adm.delete_topics(names).values():
        with contextlib.suppress(Exception):
            f.result(30)


def dataset(n: int, n_categorical: int) -> list[dict[str, Any]]:
    return list(synthetic_events(n, seed=7, n_features=10, n_categorical=n_categorical, noise=0.05))


def make_producer(bootstrap: str) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10000,
                     "queue.buffering.max.messages": 500000, "compression.type": "none", "log_level": 3})


def produce_backlog(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    """The whole dataset up front, round-robin over partitions (throughput runs drain a backlog)."""
    records = (Record(ev["id"].encode(), orjson.dumps(ev), i % PARTITIONS) for i, ev in enumerate(events))
    produce_records(make_producer(bootstrap), topic, records)


LABEL_DELAY_MS = 100  # label mode: each label's ts this long after its event's, well inside the join window


def labels_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The label records of label mode, one per event, in event order: with produce_backlog each lands in its
    event's partition (co-partitioned, keyed by id), its ts LABEL_DELAY_MS after the event's."""
    return [{"id": ev["id"], "label": ev["label"], "ts": ev["ts"] + LABEL_DELAY_MS} for ev in events]


class PacedProducer(threading.Thread):
    """Offers `rate` events/s for `duration_s`, stamping `ts` with the produce time (epoch ms, float)."""

    def __init__(self, bootstrap: str, topic: str, events: list[dict[str, Any]], rate: float, duration_s: float) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.events = bootstrap, topic, events
        self.rate, self.duration_s = rate, duration_s
        self.sent = 0
        self.started_at = 0.0
        self.stop_flag = threading.Event()

    def _stamped(self) -> Iterator[Record]:
        """Events in dataset order (cycling when the run outlasts it), `ts` stamped as each is sent."""
        t0 = self.started_at
        for i in itertools.count():
            if time.time() - t0 >= self.duration_s:
                return
            ev = dict(self.events[i % len(self.events)])
            ev["ts"] = time.time() * 1000.0
            yield Record(ev["id"].encode(), orjson.dumps(ev), i % PARTITIONS)

    def _count(self, n: int) -> None:
        self.sent = n

    def run(self) -> None:
        # linger 2 ms: thousands of one-record produce requests per second would load the
        # shared broker far more than the systems under test do.
        prod = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 2, "log_level": 3})
        self.started_at = time.time()
        produce_records(prod, self.topic, self._stamped(), rate=self.rate, stop=self.stop_flag, on_sent=self._count, flush_s=30)


class OutputReader(threading.Thread):
    """read_committed consumer of an output topic: arrival times per batch and, optionally, latencies."""

    def __init__(self, bootstrap: str, topic: str, expected: int | None = None, latency: bool = False) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.expected, self.latency = bootstrap, topic, expected, latency
        self.count = 0
        self.batches: list[tuple[float, int]] = []  # (arrival epoch s, messages)
        self.samples: list[tuple[float, float, int]] = []  # (arrival epoch s, event ts epoch ms, partition)
        self.stop_flag = threading.Event()
        self.done = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        parts = topic_partitions(admin(self.bootstrap), self.topic, timeout_s=30) or []
        reader = TopicReader(self.bootstrap, self.topic, parts, extra={"fetch.wait.max.ms": 10}, group_id=uid("bench-reader"))
        self.ready.set()
        loads = orjson.loads
        try:
            for msgs in reader.batches(poll_s=0.02, max_records=2000):
                if self.stop_flag.is_set():
                    break
                if not msgs:
                    continue
                now = time.time()
                n = 0
                for m in msgs:
                    n += 1
                    # Latency from every 4th prediction: parsing all of them would take CPU from the system under test.
                    if self.latency and (self.count + n) % 4 == 0:
                        value, part = m.value(), m.partition()
                        # A consumed message without an error has a partition, and a prediction is never a tombstone.
                        assert value is not None and part is not None
                        ts = loads(value).get("event_ts")
                        if ts is not None:
                            self.samples.append((now, ts, part))
                if n:
                    self.count += n
                    self.batches.append((now, n))
                if self.expected is not None and self.count >= self.expected:
                    self.done.set()
                    break
        finally:
            reader.close()

    def throughput(self, n: int) -> dict[str, float]:
        """Events/s from the first committed prediction to the one that completes n."""
        if not self.batches:
            return {"throughput_eps": 0.0, "duration_s": 0.0}
        t_first, first_n = self.batches[0]
        seen, t_last = 0, self.batches[-1][0]
        for t, k in self.batches:
            seen += k
            if seen >= n:
                t_last = t
                break
        dur = max(t_last - t_first, 1e-6)
        return {"throughput_eps": (min(seen, n) - first_n) / dur, "duration_s": dur}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100.0 * (len(s) - 1))))
    return s[k]


# ---- processes -----------------------------------------------------------------------------------
def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the kernel's high-water mark of the process's resident set."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def machine_info() -> dict[str, Any]:
    import platform

    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    import confluent_kafka
    import river

    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "mem_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "river": river.__version__,
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "loadavg_at_start": os.getloadavg(),
    }
