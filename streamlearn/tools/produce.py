"""`streamlearn produce`: stream a JSONL or CSV file into the input topic.

CSV rows become events: the `fields.id` column is the id (row number if
absent), the `fields.label` column the label, every other column a feature
(numbers parsed as numbers). JSONL lines are sent as they are, so malformed
lines reach the DLQ exactly as a real producer would send them.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from connectors import kafka_io
from connectors.kafka_records import Record, produce_records
from streamlearn.config import AppConfig
from streamlearn.errors import ConfigError


def _scalar(raw: str) -> Any:
    low = raw.strip().lower()
    if low in {"true", "false"}:
        return low == "true"
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def read_events(path: Path, cfg: AppConfig) -> Iterator[tuple[Any, bytes]]:
    """(id or None, value bytes) per input line/row."""
    f = cfg.fields
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                eid = _scalar(row.pop(f.id)) if f.id in row else i
                label = row.pop(f.label, None)
                ts = row.pop(f.ts, None)
                doc: dict[str, Any] = {f.id: eid, f.features: {k: _scalar(v) for k, v in row.items() if v != ""}}
                if label not in (None, ""):
                    doc[f.label] = _scalar(label)
                if ts not in (None, ""):
                    doc[f.ts] = _scalar(ts)
                yield eid, orjson.dumps(doc)
    elif path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        with path.open("rb") as fh:
            for line in fh:
                line = line.rstrip(b"\r\n")
                if not line:
                    continue
                try:
                    eid = orjson.loads(line).get(f.id)
                except (orjson.JSONDecodeError, AttributeError):
                    eid = None
                yield eid, line
    else:
        raise ConfigError(f"--input {path}: unsupported file type '{path.suffix}'", hint="use .jsonl (one JSON event per line) or .csv")


def keyed_records(path: Path, cfg: AppConfig, key_field: str) -> Iterator[Record]:
    """The file's events as records keyed by `key_field` (no key when the event has none)."""
    for eid, value in read_events(path, cfg):
        key: bytes | None = None
        if key_field == cfg.fields.id:
            key = None if eid is None else str(eid).encode()
        else:
            try:
                kv = orjson.loads(value).get(key_field)
                key = None if kv is None else str(kv).encode()
            except (orjson.JSONDecodeError, AttributeError):
                key = None
        yield Record(key, value)


def produce_file(cfg: AppConfig, path: Path, rate: float | None, key_field: str | None, partitions: int, quiet: bool = False,
                 labels: bool = False) -> int:
    """Events to the input topic, or (`labels`) labels to the label topic: both keyed by id, so co-partitioned."""
    flag, what = ("--labels", "labels") if labels else ("--input", "events")
    if not path.exists():
        raise ConfigError(f"{flag} {path} does not exist", hint="pass a .jsonl or .csv file")
    adm = kafka_io.admin(cfg.kafka.bootstrap, cfg.kafka.producer)
    topic = cfg.label_topic if labels else cfg.kafka.input_topic
    if labels:
        # Co-partitioned with the input: a label lands on the partition number its event did.
        partitions = len(kafka_io.topic_partitions(adm, cfg.kafka.input_topic) or []) or partitions
    kafka_io.ensure_topic(adm, topic, partitions)
    producer = kafka_io.make_producer(cfg.kafka.bootstrap, cfg.kafka.producer)
    start = time.monotonic()

    def progress(n: int) -> None:
        if not quiet and n % 10_000 == 0:
            print(f"produced {n} {what} to {topic}", file=sys.stderr)

    n = produce_records(producer, topic, keyed_records(path, cfg, key_field or cfg.fields.id), rate=rate, on_sent=progress)
    if not quiet:
        print(f"produced {n} {what} to {topic} in {time.monotonic() - start:.1f}s", file=sys.stderr)
    return n
