"""Helpers for engine integration tests: configs, runs of the real CLI, readers, references."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import yaml

from connectors import kafka_io
from connectors.kafka_records import produce_records, read_topic
from connectors.redis_store import CheckpointStore, open_store
from streamlearn.config import AppConfig, load_config
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState
from streamlearn.tools import checker
from streamlearn.tools.checker import check_i1, model_differences, probe_set, read_partitions
from tests.polling import poll

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, bootstrap: str, redis_url: str, input_topic: str, **sections: dict[str, Any]) -> Path:
    app = f"it-{uuid.uuid4().hex[:8]}"
    doc: dict[str, Any] = {
        "app": app,
        "kafka": {"bootstrap": bootstrap, "input_topic": input_topic, "output_topic": f"{input_topic}-out", "dlq_topic": f"{input_topic}-dlq"},
        "redis": {"url": redis_url, "key_prefix": "sltest"},
        "model": {"estimator": "river.linear_model.LogisticRegression", "preprocessing": ["river.preprocessing.StandardScaler"]},
        # Checkpoints by count as often as they come (no least interval): more of them for a crash to fall between.
        "processing": {"workers": 2, "commit_interval_ms": 100, "checkpoint_every_s": 1.0, "checkpoint_every_events": 2000,
                       "checkpoint_min_interval_s": 0},
        "metrics": {"port": None},
        # A real secret, as production runs (no development key): the driver refuses to start without one.
        "checkpoint": {"secret": f"it-secret-{uuid.uuid4().hex}"},
    }
    for name, values in sections.items():
        doc.setdefault(name, {}).update(values)
    path = tmp_path / f"{app}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def produce(cfg: AppConfig, values: Iterable[tuple[bytes | None, bytes | None]], rate: float | None = None) -> int:
    return produce_records(kafka_io.make_producer(cfg.kafka.bootstrap), cfg.kafka.input_topic, values, rate=rate)


def keyed(events: Iterable[dict[str, Any]]) -> list[tuple[bytes | None, bytes | None]]:
    return [(str(ev["id"]).encode(), orjson.dumps(ev)) for ev in events]


def start_run(config: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streamlearn", "run", "-c", str(config), "--quiet", "--no-metrics", *extra],
        env={**env, "PYTHONUNBUFFERED": "1"}, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def stop_run(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 120) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(sig)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode("utf-8", "replace")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    def still_running() -> None:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
            raise AssertionError(f"run exited with {proc.returncode} while waiting for {what}:\n{out[-4000:]}")

    poll(predicate, timeout, what, check=still_running)


def store_of(cfg: AppConfig) -> CheckpointStore:
    return open_store(cfg.redis, cfg.app, cfg.kafka.input_topic)


def partitions_of(cfg: AppConfig) -> list[int]:
    parts = kafka_io.topic_partitions(kafka_io.admin(cfg.kafka.bootstrap), cfg.kafka.input_topic)
    assert parts is not None
    return parts


def events_processed(cfg: AppConfig) -> int:
    store = store_of(cfg)
    return sum(int(store.read_status(p).get("events", 0)) for p in partitions_of(cfg))


def committed_and_high(cfg: AppConfig) -> dict[int, tuple[int | None, int]]:
    consumer = kafka_io.make_consumer(cfg.kafka.bootstrap, cfg.group_id)
    try:
        parts = partitions_of(cfg)
        committed = kafka_io.committed_offsets(consumer, cfg.kafka.input_topic, parts)
        return {p: (committed[p], kafka_io.watermarks(consumer, cfg.kafka.input_topic, p)[1]) for p in parts}
    finally:
        consumer.close()


def all_committed(cfg: AppConfig) -> bool:
    return all(k is not None and k >= high for k, high in committed_and_high(cfg).values())


def committed_records(cfg: AppConfig, topic: str) -> list[Any]:
    """Every committed record of `topic`, read up to each partition's end (its last stable offset).

    Up to the end rather than until some seconds pass without a record: the read
    returns as soon as it has everything, and an open transaction that never ends
    fails it (ReadTimeout) instead of going unnoticed.
    """
    parts = kafka_io.topic_partitions(kafka_io.admin(cfg.kafka.bootstrap), topic)
    assert parts is not None, f"topic {topic} does not exist"
    return list(read_topic(cfg.kafka.bootstrap, topic, parts, to_end=True, deadline_s=90))


def outputs(cfg: AppConfig) -> list[dict[str, Any]]:
    return [orjson.loads(m.value()) for m in committed_records(cfg, cfg.kafka.output_topic)]


def dead_letters(cfg: AppConfig) -> list[Any]:
    return committed_records(cfg, cfg.kafka.dlq_topic)


def input_records(cfg: AppConfig, p: int) -> list[Any]:
    return list(read_topic(cfg.kafka.bootstrap, cfg.kafka.input_topic, [p], to_end=True, deadline_s=60))


def reference_state(cfg: AppConfig, p: int) -> ModelState:
    """The fault-free model of the partition's input records (streamlearn.tools.checker)."""
    return checker.reference_state(cfg, input_records(cfg, p), p)


def checkpointed_state(cfg: AppConfig, p: int) -> ModelState:
    stored = store_of(cfg).read_checkpoint(p)
    assert stored is not None, f"no checkpoint for partition {p}"
    return checkpoint.decode(stored.blob, partition_key(cfg, p))


def partition_key(cfg: AppConfig, p: int) -> bytes:
    """The MAC key of partition p's checkpoints, as the worker derives it."""
    secret = cfg.checkpoint_secret()
    base = secret if secret is not None else checkpoint.dev_key(cfg.app)
    return checkpoint.partition_key(base, cfg.app, cfg.kafka.input_topic, p)


def load(path: Path) -> AppConfig:
    return load_config(path, environ={k: v for k, v in os.environ.items() if k == "STREAMLEARN_CHECKPOINT_SECRET"})


def in_process_config(tmp_path: Path, bootstrap: str, redis_url: str, unique_topic: Any, partitions: int,
                      **processing: Any) -> AppConfig:
    """One worker's config over `partitions` partitions, with output and DLQ topics of as many partitions."""
    return load(write_config(
        tmp_path, bootstrap, redis_url, unique_topic(partitions=partitions),
        kafka={"output_topic": unique_topic(partitions=partitions), "dlq_topic": unique_topic(partitions=partitions)},
        processing={"workers": 1, **processing}))


@contextlib.contextmanager
def worker_in_process(cfg: AppConfig, partitions: int, name: str) -> Iterator[None]:
    """`PartitionWorker.run` on a thread of this process (what is under test is its loop, not Ray),
    stopped gracefully on leaving the block, which must then have ended as "stopped"."""
    from streamlearn.runtime.worker import PartitionWorker

    worker = PartitionWorker(cfg.to_wire(), name)
    result: dict[str, Any] = {}
    loop = threading.Thread(target=lambda: result.update(worker.run(list(range(partitions)))), daemon=True)
    loop.start()
    try:
        yield
    finally:
        worker.stop()
        loop.join(120)
    assert not loop.is_alive() and result.get("result") == "stopped", result


def assert_exactly_once_and_models_equal(cfg: AppConfig, partitions: int, total: int) -> None:
    """After a graceful stop: I1 over every input record (`total` of them) and I2 on every partition."""
    bootstrap = cfg.kafka.bootstrap
    inputs = read_partitions(bootstrap, cfg.kafka.input_topic, range(partitions), read_committed=False)
    assert sum(len(v) for v in inputs.values()) == total
    i1 = check_i1(inputs, read_partitions(bootstrap, cfg.kafka.output_topic, range(partitions)),
                  read_partitions(bootstrap, cfg.kafka.dlq_topic, range(partitions)))
    assert i1.ok and i1.predictions == total, i1.summary()
    committed = committed_and_high(cfg)
    probes = probe_set()
    for p in range(partitions):
        stored = store_of(cfg).read_checkpoint(p)
        assert stored is not None and stored.offset == committed[p][0]
        got = checkpoint.decode(stored.blob, partition_key(cfg, p))
        assert model_differences(got, reference_state(cfg, p), probes) == [], f"I2 violated on partition {p}"


class HeldBackStream(threading.Thread):
    """`events[:split]` produced at `rate`, then `events[split:]` only once `release` is set.

    For tests whose fault (a kill, a stop) must land mid-stream however slowly a loaded
    machine processes: the tail cannot be sent before the fault, so the stream cannot end first.
    """

    def __init__(self, cfg: AppConfig, events: list[dict[str, Any]], split: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.cfg, self.events, self.split, self.rate = cfg, events, split, rate
        self.release = threading.Event()

    def run(self) -> None:
        produce(self.cfg, keyed(self.events[:self.split]), self.rate)
        self.release.wait(600)
        produce(self.cfg, keyed(self.events[self.split:]), self.rate)


class SteadyLoad(threading.Thread):
    """Events produced in chunks of `chunk_s` seconds' worth at `rate` until stopped (or the events run out).

    One producer for every chunk: a new idempotent producer per chunk holds the chunk's first
    records until it has connected, which on a broker started a moment before took long enough for
    a consumer to see each chunk as one burst (p50 297 ms, max 601 ms behind the records'
    timestamps, against 16 / 79 ms with one producer; alike on a warm broker:
    bench/results/raw/ckpt-rounds-s31/feed_arrival*.txt): a period that a test checkpointing
    every `chunk_s` aliased with.
    """

    def __init__(self, cfg: AppConfig, events: list[dict[str, Any]], rate: float, chunk_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.cfg, self.events, self.rate, self.chunk = cfg, events, rate, max(int(rate * chunk_s), 1)
        self.stop, self.produced = threading.Event(), 0

    def run(self) -> None:
        producer = kafka_io.make_producer(self.cfg.kafka.bootstrap)
        while not self.stop.is_set() and self.produced < len(self.events):
            chunk = self.events[self.produced:self.produced + self.chunk]
            self.produced += produce_records(producer, self.cfg.kafka.input_topic, keyed(chunk), rate=self.rate)
