"""One system under test, as its own process: `python -m bench.sysproc '<json spec>'`.

A separate process per system gives each its own interpreter (no warm caches
shared between systems) and a clean VmHWM for peak memory. Kafka systems run
until SIGTERM; the orchestrator decides when the work is done by reading
their committed output.
"""

from __future__ import annotations

import gc
import os
import resource
import signal
import sys
import time
from typing import Any, Literal

import orjson

from bench import models


def _out(pred: Any, proba: dict[Any, float], part: int, offset: int, ev: dict[str, Any]) -> bytes:
    return orjson.dumps({"id": ev["id"], "prediction": pred, "proba": {str(k).lower(): v for k, v in proba.items()},
                         "partition": part, "offset": offset, "event_ts": ev.get("ts")})


PARTITION_RUN = 500  # events of one partition in a row, about what one consume() hands the systems


def model_limit(spec: dict[str, Any]) -> None:
    """The ceiling: predict → learn over pre-decoded dicts, one model per partition, no I/O."""
    from bench.common import PARTITIONS, dataset

    events = dataset(spec["n"], 5 if spec["categorical"] else 0)
    ms = [models.build(spec["model"], spec["categorical"]) for _ in range(PARTITIONS)]
    step = models.predict_learn
    # The order a consumer sees: runs of one partition's events (PARTITION_RUN at a time).
    chunks: list[tuple[int, list[dict[str, Any]]]] = []
    for start in range(0, len(events), PARTITIONS * PARTITION_RUN):
        block = events[start:start + PARTITIONS * PARTITION_RUN]
        chunks += [(p, block[p::PARTITIONS]) for p in range(PARTITIONS)]
    # The pre-decoded dataset is the harness's, not the model's: keep the cyclic GC from
    # walking its 200k dicts over and over (no system under test holds such a heap).
    gc.freeze()
    t0 = time.perf_counter()
    for p, evs in chunks:
        model = ms[p]
        for ev in evs:
            step(model, ev["features"], ev["label"])
    dur = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(orjson.dumps({"throughput_eps": len(events) / dur, "duration_s": dur, "peak_rss_mb": rss}).decode())


def io_baseline(spec: dict[str, Any]) -> None:
    """consume → orjson decode → model → produce; auto-commit, no transactions, no checkpoints."""
    from confluent_kafka import Consumer, Producer

    c = Consumer({"bootstrap.servers": spec["bootstrap"], "group.id": spec["app"], "auto.offset.reset": "earliest",
                  "enable.auto.commit": True, "fetch.wait.max.ms": 50, "log_level": 3})
    p = Producer({"bootstrap.servers": spec["bootstrap"], "linger.ms": 5, "log_level": 3})
    c.subscribe([spec["input_topic"]])
    ms: dict[int, Any] = {}
    out = spec["output_topic"]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    step = models.predict_learn
    while not stop:
        msgs = c.consume(1000, 0.05)
        for m in msgs:
            if m.error() is not None:
                continue
            part, offset, value = m.partition(), m.offset(), m.value()
            # A consumed message without an error has a partition and an offset; the input has no tombstones.
            assert part is not None and offset is not None and value is not None
            model = ms.get(part)
            if model is None:
                model = ms[part] = models.build(spec["model"], spec["categorical"])
            ev = orjson.loads(value)
            pred, proba = step(model, ev["features"], ev["label"])
            val = _out(pred, proba, part, offset, ev)
            while True:
                try:
                    p.produce(out, val, m.key(), part)
                    break
                except BufferError:
                    p.poll(0.01)
        p.poll(0)
    p.flush(10)
    c.close()


def quixstreams(spec: dict[str, Any]) -> None:
    """Quix Streams, same model per partition.

    `state: false` (the `quixstreams_eos` / `_alo` systems): models in a plain dict keyed
    by partition, no state store: the offsets are exactly-once, the models are not
    persisted (a restart starts from fresh models). `state: true` (`quixstreams_eos_state`):
    each partition's model is written into Quix's RocksDB state store (changelog topic on)
    after every event, through the transaction of a stateful apply, so the model committed
    with an offset is exactly the model that saw the events before it: the guarantee
    streamlearn gives. Quix's state is keyed by message key; the model lives under one
    fixed key of the partition's store instead. Values are pickled (river models are not JSON).
    """
    import logging
    import pickle

    from quixstreams import Application, message_context
    from quixstreams.state.rocksdb import RocksDBOptions

    guarantee: Literal["exactly-once", "at-least-once"] = "exactly-once" if spec["guarantee"] == "exactly_once" else "at-least-once"
    stateful = bool(spec.get("state"))
    app = Application(
        broker_address=spec["bootstrap"],
        consumer_group=spec["app"],
        auto_offset_reset="earliest",
        commit_interval=spec["commit_interval_ms"] / 1000.0,
        processing_guarantee=guarantee,
        state_dir=spec["state_dir"],
        use_changelog_topics=stateful,
        rocksdb_options=RocksDBOptions(dumps=pickle.dumps, loads=pickle.loads) if stateful else None,
        loglevel=logging.WARNING,
    )
    tin = app.topic(spec["input_topic"], value_deserializer="bytes")
    tout = app.topic(spec["output_topic"], value_serializer="bytes")
    ms: dict[int, Any] = {}
    step = models.predict_learn

    def handle(value: bytes) -> bytes:
        ctx = message_context()
        part = ctx.partition
        model = ms.get(part)
        if model is None:
            model = ms[part] = models.build(spec["model"], spec["categorical"])
        ev = orjson.loads(value)
        pred, proba = step(model, ev["features"], ev["label"])
        return _out(pred, proba, part, ctx.offset, ev)

    def handle_stateful(value: bytes, state: Any) -> bytes:
        ctx = message_context()
        part = ctx.partition
        tx = state._transaction  # the partition store's transaction; committed with the offsets
        model = ms.get(part)
        if model is None:
            model = tx.get("model", prefix=_QUIX_MODEL_PREFIX) or models.build(spec["model"], spec["categorical"])
            ms[part] = model
        ev = orjson.loads(value)
        pred, proba = step(model, ev["features"], ev["label"])
        tx.set("model", model, prefix=_QUIX_MODEL_PREFIX)
        return _out(pred, proba, part, ctx.offset, ev)

    sdf = app.dataframe(tin)
    sdf = sdf.apply(handle_stateful, stateful=True) if stateful else sdf.apply(handle)
    sdf.to_topic(tout)
    app.run()


_QUIX_MODEL_PREFIX = b"streamlearn-bench-model"


def bytewax_flow(spec: dict[str, Any]) -> Any:
    """Bytewax dataflow: Kafka source → per-partition stateful model → Kafka sink."""
    import bytewax.operators as op
    from bytewax.connectors.kafka import KafkaSinkMessage
    from bytewax.connectors.kafka import operators as kop
    from bytewax.dataflow import Dataflow

    flow = Dataflow("bench")
    src = kop.input("in", flow, brokers=[spec["bootstrap"]], topics=[spec["input_topic"]],
                    add_config={"isolation.level": "read_committed"})
    keyed = op.key_on("by_partition", src.oks, lambda m: str(m.partition))
    step = models.predict_learn

    def mapper(model: Any, msg: Any) -> tuple[Any, Any]:
        if model is None:
            model = models.build(spec["model"], spec["categorical"])
        ev = orjson.loads(msg.value)
        pred, proba = step(model, ev["features"], ev["label"])
        return model, KafkaSinkMessage(msg.key, _out(pred, proba, msg.partition, msg.offset, ev), partition=msg.partition)

    preds = op.stateful_map("model", keyed, mapper)
    out = op.map("unkey", preds, lambda kv: kv[1])
    kop.output("out", out, brokers=[spec["bootstrap"]], topic=spec["output_topic"])
    return flow


def bytewax(spec: dict[str, Any]) -> None:
    """Strongest Bytewax guarantee on Kafka: recovery snapshots (at-least-once; its Kafka sink is not transactional).

    Bytewax snapshots its state (the models, the input offsets) into SQLite at the end of
    every epoch: `epoch_s` is the snapshot interval (0.1 s by default, as `bytewax`;
    `bytewax_snap5s` uses 5 s, streamlearn's `checkpoint_every_s`).
    """
    from datetime import timedelta

    from bytewax.recovery import RecoveryConfig
    from bytewax.run import cli_main

    rdir = spec["state_dir"]
    os.makedirs(rdir, exist_ok=True)
    import subprocess

    subprocess.run([sys.executable, "-m", "bytewax.recovery", rdir, "1"], check=True, capture_output=True)
    cli_main(bytewax_flow(spec), workers_per_process=1, epoch_interval=timedelta(seconds=spec.get("epoch_s", spec["commit_interval_ms"] / 1000.0)),
             recovery_config=RecoveryConfig(rdir))


def streamlearn_config(spec: dict[str, Any]) -> dict[str, Any]:
    """The AppConfig a streamlearn run gets, as a plain dict: the orchestrator records it in the raw file,
    so a raw file says the settings the system ran with, not the ones the orchestrator meant."""
    model = models.streamlearn_model_config(spec["model"], spec["categorical"])
    if "publish_every_s" in spec:  # model versions ride on checkpoints (model.publish.every_s; 0: never)
        model = {**model, "publish": {"every_s": spec["publish_every_s"]}}
    return {
        "app": spec["app"],
        "kafka": {"bootstrap": spec["bootstrap"], "input_topic": spec["input_topic"], "output_topic": spec["output_topic"],
                  "dlq_topic": spec["output_topic"] + "-dlq",
                  **({"label_topic": spec["label_topic"], "samples_topic": spec["samples_topic"]} if spec.get("labels") else {})},
        "redis": {"url": spec["redis_url"]},
        "model": model,
        "processing": {"guarantee": spec["guarantee"], "workers": spec["workers"], "commit_interval_ms": spec["commit_interval_ms"],
                       "checkpoint_every_events": spec.get("checkpoint_every_events", 10_000),
                       "checkpoint_every_s": spec.get("checkpoint_every_s", 5.0),
                       **({"checkpoint_min_interval_s": spec["checkpoint_min_interval_s"]} if "checkpoint_min_interval_s" in spec else {}),
                       "owner_lease_s": spec.get("owner_lease_s", 10.0),
                       **({"max_batch": spec["max_batch"]} if "max_batch" in spec else {}),
                       **({"standby_refill_delay_s": spec["standby_refill_delay_s"]} if "standby_refill_delay_s" in spec else {})},
        # The benchmark's private Redis holds only throw-away checkpoints: the development key signs them.
        "checkpoint": {"allow_dev_key": True,
                       **({"background": spec["checkpoint_background"]} if "checkpoint_background" in spec else {})},
        "metrics": {"port": None},
        # A/B of the workers' priority (docs: ray.worker_niceness); unset: the app's default.
        **({"ray": {"worker_niceness": int(os.environ["BENCH_WORKER_NICENESS"])}} if "BENCH_WORKER_NICENESS" in os.environ else {}),
        # Label mode (`streamlearn_labels_1w`): unlabelled events, labels on a co-partitioned topic, joined exactly once.
        **({"labels": {"source": "topic", "journal_topic": spec["journal_topic"]}} if spec.get("labels") else {}),
    }


def streamlearn(spec: dict[str, Any]) -> None:
    """The real product path: Runner (Ray + Coordinator + PartitionWorkers) against the private services."""
    from streamlearn.config import AppConfig
    from streamlearn.runtime.runner import Runner

    cfg = AppConfig.model_validate(streamlearn_config(spec))

    if spec.get("in_process"):
        # Diagnostic: the same PartitionWorker loop on this process's main thread, without Ray.
        from streamlearn.runtime.worker import PartitionWorker

        w = PartitionWorker(cfg.to_wire(), "inproc")
        signal.signal(signal.SIGTERM, lambda *_: w.stop())
        w.run(list(range(spec.get("partitions", 4))))
        return
    # As `streamlearn run` (not --quiet): the status every --progress-every (5 s), for its progress line.
    Runner(cfg).run(on_status=lambda _st: None, status_every_s=5.0)


SYSTEMS = {"model_limit": model_limit, "io_baseline": io_baseline, "quixstreams": quixstreams, "bytewax": bytewax,
           "streamlearn": streamlearn}


if __name__ == "__main__":
    spec = orjson.loads(sys.argv[1])
    SYSTEMS[spec["system"]](spec)
