"""Chaos audit of a finished scenario: the shared checker (streamlearn.tools.checker) on its topics and Redis.

It shares no state with the engine: its own read_committed consumers read
the prediction and dead-letter topics from the beginning, a plain one the
input, and the fault-free reference model is rebuilt in-process.

- I1, I2: `streamlearn.tools.checker`, applied to the scenario.
- I4: `I4Sampler` samples the Redis checkpoint offset, then Kafka's
  committed offset, repeatedly during the run; the first must never exceed
  the second. (Committed offsets only grow, so reading them second can only
  hide nothing: a violation seen is a violation.)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Self

from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr

from connectors.redis_store import CheckpointStore, open_store
from streamlearn.config import AppConfig, load_config
from streamlearn.state import checkpoint
from streamlearn.tools.checker import (
    I1Report,
    check_i1,
    model_differences,
    probe_set,
    read_partitions,
    reference_state,
)
from tests.chaos.harness import PARTITIONS, Scenario, record_result


def read_topic(bootstrap: str, topic: str, read_committed: bool = True) -> dict[int, list[Any]]:
    """All records of a scenario topic per partition."""
    return read_partitions(bootstrap, topic, range(PARTITIONS), read_committed=read_committed)


def scenario_config(sc: Scenario, socket_timeout_s: float | None = None) -> AppConfig:
    """The scenario's config as the driver sees it (its Redis URL comes from the environment, not the file)."""
    cfg = load_config(sc.config_path, environ={})
    redis = {"url": SecretStr(sc.env.redis_url), **({"socket_timeout_s": socket_timeout_s} if socket_timeout_s else {})}
    return cfg.model_copy(update={"redis": cfg.redis.model_copy(update=redis)})


def scenario_store(sc: Scenario, socket_timeout_s: float | None = None) -> CheckpointStore:
    cfg = scenario_config(sc, socket_timeout_s)
    return open_store(cfg.redis, cfg.app, cfg.kafka.input_topic)


def check_i1_of(sc: Scenario, inputs: dict[int, list[Any]]) -> I1Report:
    return check_i1(inputs, read_topic(sc.env.bootstrap, sc.out_topic), read_topic(sc.env.bootstrap, sc.dlq_topic))


@dataclass
class I2Report:
    partitions: dict[int, str] = field(default_factory=dict)  # "" when equal, else why not

    @property
    def ok(self) -> bool:
        return all(v == "" for v in self.partitions.values())


def check_i2(sc: Scenario, inputs: dict[int, list[Any]], committed: dict[int, int | None]) -> I2Report:
    cfg = scenario_config(sc)
    store = scenario_store(sc)
    probes = probe_set()
    rep = I2Report()
    for p in range(PARTITIONS):
        ref = reference_state(cfg, inputs.get(p, []), p)
        stored = store.read_checkpoint(p)
        if stored is None:
            rep.partitions[p] = "no checkpoint"
            continue
        why = []
        if stored.offset != committed.get(p):
            why.append(f"checkpoint offset {stored.offset} != committed {committed.get(p)}")
        key = checkpoint.partition_key(sc.env.checkpoint_secret.encode(), cfg.app, cfg.kafka.input_topic, p)
        why += model_differences(checkpoint.decode(stored.blob, key), ref, probes)
        rep.partitions[p] = "; ".join(why)
    return rep


class BackgroundSampler:
    """A thread that samples while the `with` block runs: `_run` loops until `_stop` is set."""

    join_s = 15.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(self.join_s)

    def _run(self) -> None:
        raise NotImplementedError


class I4Sampler(BackgroundSampler):
    """Background sampler of (checkpoint offset, committed offset) per partition."""

    def __init__(self, sc: Scenario, every_s: float = 0.25) -> None:
        self.sc = sc
        self.every_s = every_s
        self.samples = 0
        self.violations: list[tuple[int, int, int]] = []
        super().__init__()

    def _run(self) -> None:
        cfg = scenario_config(self.sc)
        store = scenario_store(self.sc, socket_timeout_s=1.0)
        c = Consumer({"bootstrap.servers": self.sc.env.bootstrap, "group.id": cfg.group_id, "enable.auto.commit": False, "log_level": 0})
        tps = [TopicPartition(cfg.kafka.input_topic, p) for p in range(PARTITIONS)]
        try:
            while not self._stop.wait(self.every_s):
                try:
                    ck = {p: store.checkpoint_meta(p).get("offset") for p in range(PARTITIONS)}
                    committed = {tp.partition: tp.offset for tp in c.committed(tps, timeout=2)}
                except Exception:  # a service is down on purpose: no observation this round
                    continue
                for p, off in ck.items():
                    if off is None:
                        continue
                    self.samples += 1
                    k = committed.get(p, -1)
                    if k is None or k < 0 or off > k:
                        self.violations.append((p, off, k if k is not None else -1))
        finally:
            c.close()


def committed_offsets(sc: Scenario) -> dict[int, int | None]:
    cfg = load_config(sc.config_path, environ={})
    c = Consumer({"bootstrap.servers": sc.env.bootstrap, "group.id": cfg.group_id, "enable.auto.commit": False, "log_level": 0})
    try:
        tps = c.committed([TopicPartition(sc.topic, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        c.close()
    return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in tps}


def caught_up(sc: Scenario, expected_total: int) -> bool:
    """True once Kafka's committed offsets cover every produced input record."""
    try:
        committed = committed_offsets(sc)
    except Exception:
        return False
    return sum(v or 0 for v in committed.values()) >= expected_total


@dataclass
class Verdict:
    i1: I1Report
    i2: I2Report
    committed: dict[int, int | None]
    inputs: dict[int, list[Any]]

    def row(self) -> dict[str, Any]:
        return {
            "events": self.i1.inputs,
            "predictions": self.i1.predictions,
            "dead_letters": self.i1.dead_letters,
            "lost": len(self.i1.missing),
            "duplicated": len(self.i1.duplicated),
            "order_ok": not self.i1.out_of_order,
            "model_equal": self.i2.ok,
        }


def audit(sc: Scenario) -> Verdict:
    """After a graceful stop: I1 over every input offset, I2 on every partition."""
    inputs = read_topic(sc.env.bootstrap, sc.topic, read_committed=False)
    committed = committed_offsets(sc)
    i1 = check_i1_of(sc, inputs)
    i2 = check_i2(sc, inputs, committed)
    return Verdict(i1, i2, committed, inputs)


def assert_exactly_once(v: Verdict, expect_dead_letters: int = 0) -> None:
    assert v.i1.ok, "I1 violated: " + v.i1.summary()
    assert v.i1.dead_letters == expect_dead_letters, f"unexpected dead letters: {list(v.i1.dlq_codes.items())[:10]}"
    assert v.i2.ok, f"I2 violated: {v.i2.partitions}"
    assert v.i1.predictions + v.i1.dead_letters == v.i1.inputs


def finish(sc: Scenario, i4: I4Sampler, fault: str, injected: int, **extra: Any) -> Verdict:
    """After a graceful stop: audit, record the row for the report, assert I1, I2 and I4."""
    v = audit(sc)
    record_result({"scenario": sc.name, "fault": fault, "injected": injected, **v.row(),
                   "i4_samples": i4.samples, "i4_violations": len(i4.violations), **extra})
    assert_exactly_once(v)
    assert i4.samples > 0 and not i4.violations, f"I4 violated: {i4.violations[:5]}"
    return v

