"""Outputs the real broker refuses: nothing lost, no endless replay, oversized dead letters still delivered.

- A prediction over the output topic's `max.message.bytes` (a long event id)
  halts its partition with an error naming the offset, in both guarantees;
  the offset never moves past it. Once the topic's limit is fixed, a restart
  delivers everything: 0 lost (at_least_once may duplicate, and counts them).
- The poison pill of exactly_once: a 2 MB record forwarded to a dead-letter
  topic that takes 1 MB used to abort and replay forever; it now goes to the
  DLQ with its value dropped and a header saying how big it was.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

from connectors import kafka_io
from connectors.kafka_records import Record, produce_records
from streamlearn.config import AppConfig
from streamlearn.eos.emitter import VALUE_DROPPED_HEADER
from streamlearn.tools import checker
from streamlearn.tools.datasets import synthetic_events
from tests.integration.engine_helpers import (
    load,
    start_run,
    stop_run,
    store_of,
    wait_for,
    write_config,
)

N = 300  # events per partition
BAD_AT = 120  # input offset (partition 0) of the event whose prediction is too large
# The topic limit counts a whole record batch: it must stay above librdkafka's batch.size (1,000,000) or
# batches of ordinary predictions are refused too. The bad prediction (its id) goes past it on its own.
OUT_LIMIT = 1_000_100
BAD_ID_BYTES = 1_100_000


def _produce(cfg: AppConfig, records: list[Record]) -> None:
    produce_records(kafka_io.make_producer(cfg.kafka.bootstrap), cfg.kafka.input_topic, records, flush_s=60)


def _events(partitions: int, bad_id_bytes: int = 0) -> list[Record]:
    out = []
    for i, ev in enumerate(synthetic_events(N * partitions, seed=5)):
        p, offset = i % partitions, i // partitions
        if bad_id_bytes and p == 0 and offset == BAD_AT:
            ev = {**ev, "id": "big-" + "x" * bad_id_bytes}
        out.append(Record(str(ev["id"]).encode()[:64], orjson.dumps(ev), p))
    return out


def _committed(cfg: AppConfig, p: int) -> int | None:
    if cfg.processing.guarantee == "at_least_once":
        return store_of(cfg).committed_offset(p)
    consumer = kafka_io.make_consumer(cfg.kafka.bootstrap, cfg.group_id)
    try:
        return kafka_io.committed_offsets(consumer, cfg.kafka.input_topic, [p])[p]
    finally:
        consumer.close()


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_refused_prediction_halts_the_partition_then_nothing_is_lost(
    guarantee: str, tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]
) -> None:
    topic = unique_topic(partitions=2)
    out = unique_topic(partitions=2, config={"max.message.bytes": str(OUT_LIMIT)})
    cfg_path = write_config(tmp_path, kafka_bootstrap, redis_url, topic, kafka={"output_topic": out},
                            processing={"guarantee": guarantee, "workers": 1, "max_value_bytes": 2 * BAD_ID_BYTES})
    cfg = load(cfg_path)
    _produce(cfg, _events(2, bad_id_bytes=BAD_ID_BYTES))
    store = store_of(cfg)
    proc = start_run(cfg_path, services_env)
    # Partition 1 is untouched by the failure of partition 0.
    wait_for(lambda: store.read_status(0).get("phase") == "failed" and _committed(cfg, 1) == N, 240,
             "partition 0 halted and partition 1 done", proc)
    status = store.read_status(0)
    assert f"offset {BAD_AT}" in status["error"] and "MSG_SIZE_TOO_LARGE" in status["error"], status["error"]
    halted_at = _committed(cfg, 0) or 0  # None: nothing committed yet (the whole partition came in one batch)
    assert halted_at <= BAD_AT  # never past the refused record
    code, log = stop_run(proc, signal.SIGINT)
    assert code == 0, log[-3000:]
    assert "partition_halted" in log

    # Fix the topic, start again: the refused record and everything after it are delivered.
    adm = kafka_io.admin(kafka_bootstrap)
    fix = ConfigResource(ConfigResource.Type.TOPIC, out, incremental_configs=[
        ConfigEntry("max.message.bytes", str(2 * BAD_ID_BYTES), incremental_operation=AlterConfigOpType.SET)])
    for fut in adm.incremental_alter_configs([fix]).values():
        fut.result(timeout=30)
    proc = start_run(cfg_path, services_env)
    wait_for(lambda: _committed(cfg, 0) == N and _committed(cfg, 1) == N, 240, "every offset committed after the fix", proc)
    code, log = stop_run(proc, signal.SIGINT)
    assert code == 0, log[-3000:]

    report = checker.audit_app(cfg)
    assert report.missing == [], f"lost: {report.missing[:10]}"  # 0 lost, in both modes
    if guarantee == "exactly_once":
        assert report.ok, report.summary()
    else:
        dups = Counter(n for n in Counter(report.duplicated).values())
        print(f"at_least_once duplicates after the halt and restart: {len(report.duplicated)} ({dups})")


def test_poison_pill_dead_letter_over_the_dlq_limit_is_delivered_without_its_value(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]
) -> None:
    topic = unique_topic(partitions=1)
    dlq = unique_topic(partitions=1, config={"max.message.bytes": "1048576"})  # Kafka's default limit
    cfg_path = write_config(tmp_path, kafka_bootstrap, redis_url, topic, kafka={"dlq_topic": dlq}, processing={"workers": 1})
    cfg = load(cfg_path)
    records = [Record(r.key, r.value, 0) for r in _events(1)]
    records.insert(50, Record(b"huge", b"x" * (2 * 1024 * 1024), 0))  # 2 MB: value_too_large, then too large for the DLQ
    _produce(cfg, records)
    proc = start_run(cfg_path, services_env)
    wait_for(lambda: _committed(cfg, 0) == len(records), 240, "every offset committed", proc)
    code, log = stop_run(proc, signal.SIGINT)
    assert code == 0, log[-3000:]

    report = checker.audit_app(cfg)
    assert report.ok and report.dead_letters == 1, report.summary()
    assert report.dlq_codes == {(0, 50): "value_too_large"}
    (letter,) = checker.read_app_topic(cfg, dlq)[0]
    headers = dict(letter.headers())
    assert letter.value() is None and headers[VALUE_DROPPED_HEADER] == str(2 * 1024 * 1024).encode()
