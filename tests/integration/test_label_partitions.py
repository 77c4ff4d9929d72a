"""Label mode with partitions added to the input topic while running (docs/labels.md, "Partitions added while running").

The new input partition waits, unowned, until the label topic has it too;
the app grows its own journal and sample topics; once the label topic has
grown, the partition is owned and its events are predicted and joined once.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka.admin import AdminClient, NewPartitions

from connectors import kafka_io
from connectors.kafka_io import make_producer
from connectors.kafka_records import Record, produce_records
from streamlearn.eos.label_topics import running_counts
from streamlearn.tools.checker import read_app_topic
from streamlearn.tools.datasets import synthetic_events
from tests.integration import engine_helpers as eh
from tests.integration.label_helpers import label_sections
from tests.polling import poll


def test_running_counts_grow_the_apps_own_topics_never_the_label_topic(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any
) -> None:
    topic, labels, journal = unique_topic(partitions=3), unique_topic(partitions=2), unique_topic(partitions=2)
    samples = f"{topic}.samples"  # missing: created by the app
    cfg = eh.load(eh.write_config(tmp_path, kafka_bootstrap, redis_url, topic, **label_sections(labels, samples, journal)))
    admin = kafka_io.admin(kafka_bootstrap)
    try:
        counts = running_counts(admin, cfg, 3)
        assert counts.usable == 2 and counts.lagging == {labels: 2}
        assert counts.counts == {labels: 2, journal: 3, samples: 3}
        assert len(kafka_io.topic_partitions(admin, journal) or []) == 3
        assert len(kafka_io.topic_partitions(admin, labels) or []) == 2  # the label producers' topic: never touched
    finally:
        admin.delete_topics([samples], operation_timeout=10)


def _events(n: int, seed: int, prefix: str) -> list[dict[str, Any]]:
    return list(synthetic_events(n, seed=seed, n_features=3, id_prefix=prefix))


def _produce(bootstrap: str, topic: str, docs: list[dict[str, Any]], partition: int) -> None:
    produce_records(make_producer(bootstrap), topic, [Record(str(d["id"]).encode(), orjson.dumps(d), partition) for d in docs])


def _labels_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": e["id"], "label": e["label"], "ts": e["ts"] + 1000} for e in events]  # a second later: joined


def test_new_input_partition_waits_for_the_label_topic_then_joins_exactly_once(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]
) -> None:
    topic, labels, journal, samples = (unique_topic(partitions=2) for _ in range(4))
    cfg_path = eh.write_config(tmp_path, kafka_bootstrap, redis_url, topic, processing={"workers": 1, "standby_workers": 1},
                               **label_sections(labels, samples, journal))
    cfg = eh.load(cfg_path)
    first = {p: _events(100, seed=p, prefix=f"p{p}-") for p in (0, 1)}
    for p, evs in first.items():
        _produce(kafka_bootstrap, topic, evs, p)
        _produce(kafka_bootstrap, labels, _labels_of(evs), p)
    proc = eh.start_run(cfg_path, services_env)
    lines: list[str] = []
    reader = threading.Thread(target=_collect, args=(proc, lines), daemon=True)
    reader.start()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})  # kept alive until the futures resolve
    try:
        _wait(lambda: _samples(cfg) == {0: 100, 1: 100}, 240, "the first 200 events joined", proc, lines)
        admin.create_partitions([NewPartitions(topic, 3)])[topic].result(timeout=30)
        new = _events(100, seed=2, prefix="p2-")
        _produce(kafka_bootstrap, topic, new, 2)
        _wait(lambda: any("label_partitions_waiting" in ln for ln in lines), 180, "the waiting warning", proc, lines)
        warning = next(ln for ln in lines if "label_partitions_waiting" in ln)
        assert labels in warning and "input_partitions=3" in warning, warning
        # Waiting: the journal and sample topics were grown before the warning; partition 2 is not owned.
        assert len(kafka_io.topic_partitions(admin, journal) or []) == 3
        assert len(kafka_io.topic_partitions(admin, samples) or []) == 3
        assert not [o for o in eh.outputs(cfg) if o["partition"] == 2]
        admin.create_partitions([NewPartitions(labels, 3)])[labels].result(timeout=30)
        _produce(kafka_bootstrap, labels, _labels_of(new), 2)
        _wait(lambda: _samples(cfg).get(2) == 100, 240, "partition 2 predicted and joined", proc, lines)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=120)
        reader.join(timeout=10)
    assert rc == 0, "".join(lines[-60:])
    got = eh.outputs(cfg)
    keys = [(o["partition"], o["offset"]) for o in got]
    assert len(keys) == 300 and len(set(keys)) == 300  # one prediction per input offset
    assert _samples(cfg) == {0: 100, 1: 100, 2: 100}  # one joined sample per event, none twice
    outcomes = {orjson.loads(m.value())["outcome"] for msgs in read_app_topic(cfg, samples).values() for m in msgs}
    assert outcomes == {"joined"}


def _samples(cfg: Any) -> dict[int, int]:
    assert cfg.samples_topic is not None
    return {p: len(msgs) for p, msgs in read_app_topic(cfg, cfg.samples_topic).items() if msgs}


def _collect(proc: subprocess.Popen[bytes], lines: list[str]) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        lines.append(raw.decode("utf-8", "replace"))


def _wait(pred: Any, timeout: float, what: str, proc: subprocess.Popen[bytes], lines: list[str]) -> None:
    def still_running() -> None:
        if proc.poll() is not None:
            raise AssertionError(f"run exited with {proc.returncode} while waiting for {what}:\n{''.join(lines[-60:])}")

    poll(pred, timeout, what, check=still_running)
