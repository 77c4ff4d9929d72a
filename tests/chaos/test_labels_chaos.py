"""Delayed labels under faults: SIGKILL bursts and a zombie while events and labels are being joined.

The stream (CHAOS_EVENTS unlabelled events, their labels, duplicates, late
and orphan labels; tests/integration/label_helpers.py) is produced in
event-time order while workers are killed, some in bursts, and one worker is
SIGSTOPped until its partitions are owned elsewhere, then woken up as a
zombie. After a graceful stop the committed topics must show I1 (one
prediction per event), I5 (one sample per event, with the outcome and label
its timestamps call for; every refused label dead-lettered once with its
reason) and I2 in label mode (each checkpointed model equals a fresh model
trained on its partition's committed sample log, on probes).
"""

from __future__ import annotations

import os
import random
import signal
import threading
from typing import Any

import redis as redis_lib
from confluent_kafka import Consumer, TopicPartition

from streamlearn.state import checkpoint
from streamlearn.tools.label_data import make_data
from tests.chaos.checker import scenario_config, scenario_store
from tests.chaos.harness import (
    CHAOS_EVENTS,
    PARTITIONS,
    ChaosEnv,
    Scenario,
    random_kills,
    record_result,
    redis_key,
    wait_for,
    wake_after_take_over,
)
from tests.integration.label_helpers import audit, label_sections, probes, produce_data

DONE_TIMEOUT_S = 600


def _both_committed(sc: Scenario, ends: dict[str, int]) -> bool:
    cfg = scenario_config(sc)
    c = Consumer({"bootstrap.servers": sc.env.bootstrap, "group.id": cfg.group_id, "enable.auto.commit": False, "log_level": 0})
    try:
        tps = c.committed([TopicPartition(t, p) for t in ends for p in range(PARTITIONS)], timeout=10)
        got: dict[str, int] = {}
        for tp in tps:
            got[tp.topic] = got.get(tp.topic, 0) + max(tp.offset, 0)
            high = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)[1]
            if tp.offset < high:
                return False
        return all(got.get(t, 0) >= n for t, n in ends.items())
    except Exception:
        return False
    finally:
        c.close()


def test_label_joins_survive_sigkill_bursts_and_a_zombie(chaos_env: ChaosEnv) -> None:
    tag = os.urandom(3).hex()
    sections = label_sections(f"chaos-labels-{tag}-lab", f"chaos-labels-{tag}-samples", f"chaos-labels-{tag}-journal")
    sc = Scenario(chaos_env, "labels", processing={"owner_lease_s": 3.0}, sections=sections)
    cfg = scenario_config(sc)
    data = make_data(CHAOS_EVENTS, seed=21, step_ms=400)
    n_labels = len(data.labels) + PARTITIONS
    r = redis_lib.Redis.from_url(chaos_env.redis_url)
    kills: list[dict[str, Any]] = []
    stop = threading.Event()
    d = sc.start()
    # ~15 s of stream while the faults land.
    producer = threading.Thread(target=produce_data, args=(cfg, data, PARTITIONS, (CHAOS_EVENTS + n_labels) / 15), daemon=True)
    producer.start()
    killer = threading.Thread(target=random_kills, args=(lambda: sc.owner_pids(d), stop, random.Random(12), kills), daemon=True)
    killer.start()
    wait_for(lambda: len(kills) >= 3 and any(k["burst"] for k in kills), DONE_TIMEOUT_S, "3 worker kills, one burst")
    stop.set()
    killer.join()

    # A zombie: SIGSTOP a worker that owns partitions until they are owned elsewhere, then wake it up.
    zombie, parts = sorted(wait_for(lambda: sc.owner_pids(d), 120, "a live worker owning partitions").items())[0]
    epochs = {p: int(r.get(redis_key(sc, p, "epoch")) or 0) for p in parts}
    os.kill(zombie, signal.SIGSTOP)
    wake_after_take_over(r, sc, zombie, parts, epochs)
    producer.join()
    wait_for(lambda: _both_committed(sc, {sc.topic: CHAOS_EVENTS, cfg.label_topic: n_labels}), DONE_TIMEOUT_S,
             "every event and label committed")
    sc.stop(d)

    store = scenario_store(sc)
    states = {}
    for p in range(PARTITIONS):
        stored = store.read_checkpoint(p)
        assert stored is not None
        key = checkpoint.partition_key(chaos_env.checkpoint_secret.encode(), cfg.app, cfg.kafka.input_topic, p)
        states[p] = checkpoint.decode(stored.blob, key)
    rep = audit(cfg, probes(), states)
    record_result({"scenario": sc.name, "fault": "SIGKILL bursts + a zombie during label joins", "injected": len(kills) + 1,
                   "events": rep.i1.inputs, "predictions": rep.i1.predictions, "lost": len(rep.i1.missing),
                   "duplicated": len(rep.i1.duplicated), "order_ok": not rep.i1.out_of_order,
                   "model_equal": not rep.model_mismatch, "samples": rep.i5.samples, "i5_ok": rep.i5.ok})
    assert rep.i1.ok and rep.i1.predictions == CHAOS_EVENTS, rep.i1.summary()
    assert rep.i5.ok and rep.i5.samples == CHAOS_EVENTS and rep.i5.outcomes == data.expected, rep.i5.summary()
    assert rep.i5.dlq_reasons == {"late_label": data.late, "duplicate_label": data.duplicate, "orphan_label": data.orphan}
    assert not rep.model_mismatch, rep.model_mismatch
    assert sum(int(store.read_status(p).get("epoch", 0)) for p in range(PARTITIONS)) > PARTITIONS, "recoveries happened"
