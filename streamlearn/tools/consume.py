"""`streamlearn consume`: print committed predictions (read_committed) as JSON lines."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import IO, Any

import orjson

from connectors import kafka_io, kafka_records
from streamlearn.config import AppConfig
from streamlearn.errors import ConfigError


def read_topic(cfg: AppConfig, topic: str, max_records: int | None, timeout_s: float) -> Iterator[Any]:
    """Every committed record of the topic from the beginning; stops after `timeout_s` without news."""
    adm = kafka_io.admin(cfg.kafka.bootstrap, cfg.kafka.consumer)
    parts = kafka_io.topic_partitions(adm, topic)
    if parts is None:
        raise ConfigError(f"topic '{topic}' does not exist on {cfg.kafka.bootstrap}", hint="run `streamlearn run` first, or check kafka.output_topic")
    extra = {k: v for k, v in cfg.kafka.consumer.items() if k.startswith(("security.", "sasl.", "ssl."))}
    yield from kafka_records.read_topic(cfg.kafka.bootstrap, topic, parts, extra=extra, group_id=f"{cfg.group_id}-reader",
                                        idle_s=timeout_s, max_records=max_records)


def consume_to(out: IO[str], cfg: AppConfig, max_records: int | None, timeout_s: float, dlq: bool = False) -> int:
    topic = cfg.kafka.dlq_topic if dlq else cfg.kafka.output_topic
    n = 0
    for m in read_topic(cfg, topic, max_records, timeout_s):
        if dlq:
            headers = {k: v.decode("utf-8", "replace") for k, v in (m.headers() or [])}
            value = m.value() or b""
            doc = {"partition": m.partition(), "offset": m.offset(), "headers": headers,
                   "value": value[:200].decode("utf-8", "replace"), "value_bytes": len(value)}
            out.write(orjson.dumps(doc).decode() + "\n")
        else:
            out.write((m.value() or b"").decode("utf-8", "replace") + "\n")
        n += 1
    out.flush()
    return n


def main_consume(cfg: AppConfig, max_records: int | None, timeout_s: float, dlq: bool) -> int:
    n = consume_to(sys.stdout, cfg, max_records, timeout_s, dlq)
    print(f"read {n} records", file=sys.stderr)
    return 0
