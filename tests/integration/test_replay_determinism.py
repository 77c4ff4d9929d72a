"""I2 across processes beyond logistic regression (issue 14, finding 4).

A real `streamlearn run` on the real broker and Redis; the partitions' owners
are SIGKILLed three times mid-stream (checkpoints every 300 events, so every
recovery restores a checkpoint and replays; for one subject no sooner than the
default `checkpoint_min_interval_s` after the previous one, so its replays are longer). The final checkpointed model of
each partition must equal an in-process fault-free model of the same records
on 400 probes. The subjects exercise what logistic regression does not:
a Hoeffding tree on categorical features (river's nominal splitters iterate
sets of strings, whose order follows the str hash: PYTHONHASHSEED is fixed for
workers), and a seeded adaptive random forest (Poisson sampling from its RNG,
drift detectors, background learners).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from streamlearn.tools.datasets import synthetic_events
from tests.integration.engine_helpers import (
    HeldBackStream,
    all_committed,
    checkpointed_state,
    events_processed,
    load,
    reference_state,
    start_run,
    stop_run,
    store_of,
    wait_for,
    write_config,
)

EVENTS = 3000
PARTITIONS = 2
KILLS = 3
SUBJECTS = {
    "hoeffding-tree-categorical": {"estimator": "river.tree.HoeffdingTreeClassifier", "params": {"grace_period": 50},
                                   "preprocessing": []},
    "arf-seeded": {"estimator": "river.forest.ARFClassifier", "params": {"n_models": 3}, "preprocessing": []},
}
# checkpoint_min_interval_s per subject: 0 checkpoints every 300 events however fast they come; the default (1 s)
# holds a count-due checkpoint back, so that subject's recoveries replay longer, from fewer checkpoints.
MIN_INTERVAL_S = {"hoeffding-tree-categorical": 0.0, "arf-seeded": 1.0}


def _events(seed: int) -> list[dict[str, Any]]:
    return list(synthetic_events(EVENTS, seed=seed, n_features=3, n_categorical=3))


@pytest.mark.parametrize("subject", list(SUBJECTS))
def test_recovered_model_equals_the_fault_free_one_after_sigkills(
    subject: str, tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]
) -> None:
    topic = unique_topic(partitions=PARTITIONS)
    cfg_path = write_config(tmp_path, kafka_bootstrap, redis_url, topic, model=SUBJECTS[subject],
                            processing={"checkpoint_every_events": 300, "checkpoint_every_s": 0,
                                        "checkpoint_min_interval_s": MIN_INTERVAL_S[subject]})
    cfg = load(cfg_path)
    events = _events(seed=21)
    assert any(isinstance(v, str) for v in events[0]["features"].values()), "the subject needs categorical features"
    store = store_of(cfg)
    proc = start_run(cfg_path, services_env)
    try:
        wait_for(lambda: all(store.read_status(p).get("phase") == "running" for p in range(PARTITIONS)), 180,
                 "every partition owned", proc)
        # The last fifth is held back until the last kill is done, so every kill lands before the
        # stream's end however slow the recoveries are (a loaded CI machine once took longer to
        # recover three times than the paced producer took to send everything).
        producer = HeldBackStream(cfg, events, split=EVENTS * (KILLS + 1) // (KILLS + 2), rate=150.0)
        producer.start()
        for k in range(KILLS):
            p = k % PARTITIONS
            wait_for(lambda k=k: events_processed(cfg) >= (k + 1) * EVENTS // (KILLS + 2), 300, f"{k + 1} kill's share of events", proc)
            victim = int(store.read_status(p)["pid"])
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda p=p, v=victim: store.read_status(p).get("pid") not in (None, str(v))
                     and store.read_status(p).get("phase") == "running", 180, f"partition {p} owned again", proc)
        assert events_processed(cfg) < EVENTS, "the stream ended before the last kill: not a mid-stream crash"
        producer.release.set()
        producer.join(timeout=300)
        wait_for(lambda: all_committed(cfg), 300, "every partition committed to its end", proc)
    finally:
        code, log = stop_run(proc)
    assert code == 0, log[-3000:]

    assert sum(int(store.counters(p).get("recoveries", 0)) for p in range(PARTITIONS)) >= KILLS
    probes = [ev["features"] for ev in _events(seed=99)[:400]]
    for p in range(PARTITIONS):
        got, ref = checkpointed_state(cfg, p), reference_state(cfg, p)
        assert (got.offset, got.events) == (ref.offset, ref.events), f"partition {p}"
        assert [got.model.predict_proba_one(x) for x in probes] == [ref.model.predict_proba_one(x) for x in probes], \
            f"{subject}: partition {p}'s recovered model differs from the fault-free one"
