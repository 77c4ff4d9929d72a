"""Delayed labels on the real broker, Redis and Ray (issue 12's integration must-show)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson

from connectors import kafka_io
from streamlearn.app import caught_up
from streamlearn.eos.label_step import ensure_label_topics
from streamlearn.errors import ConfigError
from streamlearn.ops.status import read_status
from streamlearn.tools import checker
from streamlearn.tools.checker import read_app_topic
from streamlearn.tools.label_data import make_data
from tests.integration.engine_helpers import (
    checkpointed_state,
    load,
    start_run,
    stop_run,
    wait_for,
    write_config,
)
from tests.integration.label_helpers import audit, label_sections, probes, produce_data


def test_twenty_thousand_unlabelled_events_joined_exactly_once_with_delayed_labels(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]
) -> None:
    topic = unique_topic(partitions=4)
    sections = label_sections(unique_topic(partitions=4), unique_topic(partitions=4), unique_topic(partitions=4))
    cfg_path = write_config(tmp_path, kafka_bootstrap, redis_url, topic, **sections)
    cfg = load(cfg_path)
    data = make_data(20_000, seed=12)
    # Produced once the learner runs, in event-time order, so labels come in behind their events. (From a
    # backlog the consumer may read one topic well ahead of the other: the joins are the same (I5), but a
    # model that gets its labels only after predicting on every event predicts untrained.)
    # Stopped by the test once everything produced is read, not by --until-idle: an app that is caught up from its
    # start (both topics empty) would count its idle seconds before the first record, and stop by itself if the
    # producer (or this process) stalled that long on a loaded machine.
    proc = start_run(cfg_path, services_env)
    wait_for(lambda: _all_running(cfg), 300, "every partition running", proc)
    producing = threading.Thread(target=produce_data, args=(cfg, data, 4, 2000.0), daemon=True)
    producing.start()
    producing.join(timeout=600)
    assert not producing.is_alive()
    wait_for(lambda: caught_up(read_status(cfg)), 900, "both streams read to their ends", proc)
    code, log = stop_run(proc, timeout=180)
    assert code == 0, log[-3000:]

    rep = audit(cfg, probes(), {p: checkpointed_state(cfg, p) for p in range(4)})
    # I1: one committed prediction per event (the refused labels' dead letters are not answers to events).
    assert rep.i1.ok and rep.i1.predictions == 20_000 and rep.i1.dead_letters == 0, rep.i1.summary()
    # I5: one sample per event, with the outcome and label its timestamps call for.
    assert rep.i5.ok, rep.i5.summary()
    assert rep.i5.samples == 20_000 and rep.i5.outcomes == data.expected, rep.i5.summary()
    assert rep.i5.dlq_reasons == {"late_label": data.late, "duplicate_label": data.duplicate, "orphan_label": data.orphan}
    # I2 in label mode: each checkpointed model is a fresh model trained on its partition's committed sample log.
    assert not rep.model_mismatch, rep.model_mismatch
    # streamlearn status: the join's counters per partition add up to what was learned and refused.
    rows = [r["labels"] for r in read_status(cfg)["partitions"]]
    assert sum(r["joined"] for r in rows) == sum(o == "joined" for o, _ in data.expected.values())
    assert sum(r["expired"] for r in rows) == sum(o == "expired" for o, _ in data.expected.values())
    assert [sum(r[k] for r in rows) for k in ("late", "duplicate", "orphan", "evicted")] == [data.late, data.duplicate, data.orphan, 0]
    assert all(r["lag"] == 0 and r["pending"] == 0 for r in rows) and sum(sum(r["delay_hist"]) for r in rows) > 0

    # Prequential accuracy close to inline mode's on the same data (the inline hot path, same labels, no delay).
    inline_right = inline_total = 0
    for p, msgs in read_app_topic(cfg, cfg.kafka.input_topic).items():
        inline = [_Inline(m, data.truth) for m in msgs]
        ref = checker.reference_state(cfg, inline, p)
        inline_right += ref.metric.get() * ref.model_version
        inline_total += ref.model_version
    inline_acc = inline_right / inline_total
    print(f"prequential accuracy: label mode {rep.accuracy:.4f}, inline mode {inline_acc:.4f}")
    assert abs(rep.accuracy - inline_acc) <= 0.05, f"label mode {rep.accuracy:.3f} vs inline {inline_acc:.3f}"
    assert rep.accuracy >= 0.8


def _all_running(cfg: Any) -> bool:
    rows = read_status(cfg)["partitions"]
    return len(rows) == 4 and all(r["phase"] == "running" for r in rows)


class _Inline:
    """An event record with its label put inline, as inline mode would have received it."""

    def __init__(self, m: Any, truth: dict[str, bool]) -> None:
        doc = orjson.loads(m.value())
        self._value, self._offset, self._key = orjson.dumps({**doc, "label": truth[doc["id"]]}), m.offset(), m.key()

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes | None:
        return self._key


def test_a_label_topic_with_another_partition_count_fails_at_start_naming_both(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any
) -> None:
    topic = unique_topic(partitions=4)
    sections = label_sections(unique_topic(partitions=3), unique_topic(partitions=4), unique_topic(partitions=4))
    cfg = load(write_config(tmp_path, kafka_bootstrap, redis_url, topic, **sections))
    try:
        ensure_label_topics(kafka_io.admin(kafka_bootstrap), cfg, 4)
    except ConfigError as exc:
        assert "has 3 partitions" in exc.message and "has 4" in exc.message and cfg.label_topic in exc.message
    else:
        raise AssertionError("a label topic of 3 partitions for an input of 4 was accepted")
