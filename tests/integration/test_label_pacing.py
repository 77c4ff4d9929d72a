"""Label mode from a backlog: every label produced after every event, read in event-time step (label_pacing).

Unpaced, the consumer hands the join thousands of events before the first
label (both partitions are fetched by bytes, not by event time): with
`labels.max_pending` below the backlog the oldest pending events are evicted
(expired early) although their labels are in Kafka. Paced, the pending store
holds about one window of events and every outcome is the one the
timestamps call for. With `labels.pause_held` below a partition's backlog,
the stream held is paused in the consumer and resumed (label_pacing), and
the same holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from connectors import kafka_io
from connectors.kafka_records import Record, produce_records
from streamlearn.ops.status import read_status
from streamlearn.tools.label_data import make_data, ticks
from tests.integration.engine_helpers import (
    checkpointed_state,
    load,
    start_run,
    write_config,
)
from tests.integration.label_helpers import audit, label_sections, probes

EVENTS, PARTITIONS = 4000, 2


def test_backlog_with_labels_after_all_events_joins_as_the_windows_say(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]
) -> None:
    topic = unique_topic(partitions=PARTITIONS)
    sections = label_sections(*(unique_topic(partitions=PARTITIONS) for _ in range(3)))
    sections["labels"]["max_pending"] = 600  # about two windows of one partition's events (a window: 600 events / 2)
    # Each partition's 2,000 events are fetched before their labels: held past 300, the events are paused.
    sections["labels"]["pause_held"] = 300
    # Small polls: each poll brings mostly one topic, as a large backlog does at any max_batch.
    cfg_path = write_config(tmp_path, kafka_bootstrap, redis_url, topic, processing={"workers": 1, "max_batch": 200},
                            **sections)
    cfg = load(cfg_path)
    d = make_data(EVENTS, seed=41)
    producer = kafka_io.make_producer(kafka_bootstrap)
    for e in d.events:  # the whole backlog of events first ...
        kafka_io.produce_blocking(producer, topic, orjson.dumps(e), str(e["id"]).encode())
    producer.flush(30)
    for lab in d.labels:  # ... then every label, in one burst
        kafka_io.produce_blocking(producer, cfg.label_topic, orjson.dumps(lab), str(lab["id"]).encode())
    produce_records(producer, cfg.label_topic, [Record(key, value, p) for p, key, value in ticks(d, PARTITIONS)])

    proc = start_run(cfg_path, {**services_env, "STREAMLEARN_LOG_LEVEL": "INFO"}, "--until-idle", "5")
    # --until-idle: stops once both streams are read; its output is read meanwhile (INFO logs would fill the pipe).
    out, _ = proc.communicate(timeout=900)
    code, log = proc.returncode, out.decode("utf-8", "replace")
    assert code == 0, log[-3000:]

    assert "label_stream_paused" in log and "label_stream_resumed" in log, log[-3000:]
    rows = [r["labels"] for r in read_status(cfg)["partitions"]]
    assert sum(r["evicted"] for r in rows) == 0, rows  # no event expired early for want of room
    rep = audit(cfg, probes(), {p: checkpointed_state(cfg, p) for p in range(PARTITIONS)})
    assert rep.i1.ok and rep.i1.predictions == EVENTS, rep.i1.summary()
    assert rep.i5.ok, rep.i5.summary()
    assert rep.i5.samples == EVENTS and rep.i5.outcomes == d.expected, rep.i5.summary()
    assert rep.i5.dlq_reasons == {"late_label": d.late, "duplicate_label": d.duplicate, "orphan_label": d.orphan}
    assert not rep.model_mismatch, rep.model_mismatch
