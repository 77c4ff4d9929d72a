"""Inline mode's training-sample log (kafka.samples_topic set): one committed sample per learned event, exactly once.

Crash points (a SIGKILL after producing before the commit, or after the
commit before the checkpoint; at most one each) make the partitions replay: the sample log
must still hold each learned event once, in the order learned.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson

from connectors import kafka_io
from streamlearn import faults
from streamlearn.tools.checker import read_app_topic
from streamlearn.tools.datasets import synthetic_events
from tests.integration import engine_helpers as eh

EVENTS = 4000


def test_inline_sample_log_holds_each_learned_event_once_across_crashes(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]
) -> None:
    topic = unique_topic(partitions=2)
    samples = f"{topic}.samples"  # created by the app (kafka.create_topics)
    cfg_path = eh.write_config(tmp_path, kafka_bootstrap, redis_url, topic, kafka={"samples_topic": samples})
    cfg = eh.load(cfg_path)
    events = list(synthetic_events(EVENTS, seed=21, n_features=4))
    for ev in events[::10]:
        del ev["label"]  # predicted, not learned: no sample
    values = [*eh.keyed(events[:2000]), (b"bad-1", b"not json"), *eh.keyed(events[2000:]), (b"bad-2", b"{}")]
    crash_dir = tmp_path / "faults"
    env = {**services_env, "STREAMLEARN_FAULTS":
           f"after_produce_before_commit=1,after_commit_before_checkpoint=1,limit=1,seed=3,dir={crash_dir}"}
    proc = eh.start_run(cfg_path, env)
    try:
        producing = threading.Thread(target=eh.produce, args=(cfg, values, 400.0), daemon=True)
        producing.start()
        # p=1, limit=1 each: the first commit crashes before it commits, the next one (after the
        # restart) right after it commits, so both crashes land while the stream flows, whatever the timing.
        planned = ("after_produce_before_commit", "after_commit_before_checkpoint")
        eh.wait_for(lambda: all(faults.crashes(crash_dir)[p] == 1 for p in planned), 300, "both planned crashes", proc)
        producing.join(timeout=120)
        eh.wait_for(lambda: eh.all_committed(cfg), 300, "all input committed after the crashes", proc)
    finally:
        rc, out = eh.stop_run(proc)
    assert rc == 0, out[-3000:]
    try:
        inputs = read_app_topic(cfg, topic)
        got = read_app_topic(cfg, samples)
        outputs = eh.outputs(cfg)
    finally:
        kafka_io.admin(kafka_bootstrap).delete_topics([samples], operation_timeout=10)
    keys = [(o["partition"], o["offset"]) for o in outputs]
    assert len(keys) == EVENTS and len(set(keys)) == EVENTS  # I1 still: one prediction per valid event
    learned_total = 0
    for p, msgs in inputs.items():
        docs = [orjson.loads(m.value()) for m in msgs if m.value() not in (b"not json", b"{}")]
        learned = [d for d in docs if "label" in d]  # in offset order: the order the partition learned them
        log = [orjson.loads(m.value()) for m in got.get(p, [])]
        assert [s["id"] for s in log] == [d["id"] for d in learned], f"partition {p}: sample log != learned events"
        assert [s["model_version"] for s in log] == list(range(len(learned)))  # the version that predicted, each once
        assert all(s["outcome"] == "joined" and s["label_ts"] == s["event_ts"] for s in log)
        assert [(s["label"], s["features"], s["event_ts"]) for s in log] == [(d["label"], d["features"], d["ts"]) for d in learned]
        learned_total += len(learned)
    assert learned_total == EVENTS - EVENTS // 10
