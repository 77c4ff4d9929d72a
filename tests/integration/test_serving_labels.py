"""The publish gate in label mode (`labels.source: topic`): fed by the join, not by the inline hot path.

Real Kafka, Redis and Ray; `streamlearn run` as a subprocess. A learner on
delayed labels publishes versions whose gate window holds the joined labels
(a good candidate passes the metric comparison against the served version);
then the same app restarted with the test-only sabotage hook
(`model.publish.gate.test_force_bad`) has its candidates refused for
`metric_drop`, and the served version stays.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from connectors.version_store import VersionStore
from streamlearn.config import AppConfig
from streamlearn.ops.status import read_status
from streamlearn.tools.label_data import make_data
from tests.integration.engine_helpers import (
    load,
    start_run,
    stop_run,
    store_of,
    wait_for,
    write_config,
)
from tests.integration.label_helpers import label_sections, produce_data
from tests.integration.serving_helpers import versions_of


def _running(cfg: AppConfig) -> bool:
    rows = read_status(cfg)["partitions"]
    return len(rows) == 1 and rows[0]["phase"] == "running"


def _feed(cfg: AppConfig, n: int, seed: int) -> threading.Thread:
    """Events and their labels interleaved in event time, at a pace the learner joins as it goes."""
    t = threading.Thread(target=produce_data, args=(cfg, make_data(n, seed=seed), 1, 1000.0), daemon=True)
    t.start()
    return t


def _gated_versions(versions: VersionStore) -> list[dict[str, Any]]:
    """Versions published after a metric comparison: not the first, and with a non-empty window."""
    metas = [versions.meta(0, v) or {} for v in versions.versions(0)]
    return [m for m in metas if m.get("version", 0) > 1 and m["metric"]["window"] > 0]


def test_label_mode_gate_window_publishes_good_candidates_and_refuses_a_regressing_one(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]
) -> None:
    sections = label_sections(unique_topic(partitions=1), unique_topic(partitions=1), unique_topic(partitions=1))
    sections["model"] = {"publish": {"every_s": 1.0, "keep": 5, "gate": {"window": 200, "max_drop": 0.05}}}
    sections["processing"] = {"workers": 1, "standby_workers": 0, "checkpoint_every_s": 1.0}
    path = write_config(tmp_path, kafka_bootstrap, redis_url, unique_topic(partitions=1), **sections)
    cfg = load(path)
    versions, store = versions_of(cfg), store_of(cfg)

    # A good learner: versions are published, each gated on a window of joined labels.
    run = start_run(path, services_env)
    try:
        wait_for(lambda: _running(cfg), 300, "the partition running", run)
        feeding = _feed(cfg, 6000, seed=31)
        wait_for(lambda: len(_gated_versions(versions)) >= 2, 240, "two versions published through the gate's comparison", run)
        feeding.join(timeout=120)
    finally:
        code, out = stop_run(run, signal.SIGTERM, timeout=180)
    assert code == 0, out[-3000:]
    good = _gated_versions(versions)
    assert all(m["metric"]["window"] >= 100 and m["metric"]["value"] > 0.6 for m in good), good
    assert store.counters(0).get("publish_refused:metric_drop", 0) == 0

    # A regressing candidate (the least likely class) on the same stream: refused for metric_drop, served version stays.
    stays = versions.served(0).version
    assert stays is not None
    run = start_run(path, {**services_env, "STREAMLEARN_MODEL__PUBLISH__GATE__TEST_FORCE_BAD": "true"})
    try:
        wait_for(lambda: _running(cfg), 300, "the partition running again", run)
        bad_epoch = store.current_epoch(0)
        feeding = _feed(cfg, 4000, seed=32)
        wait_for(lambda: store.counters(0).get("publish_refused:metric_drop", 0) > 0, 240, "a candidate refused for metric_drop", run)
        feeding.join(timeout=120)
        assert all((versions.meta(0, v) or {})["epoch"] < bad_epoch for v in versions.versions(0)), "a bad candidate was published"
        assert versions.served(0).version == stays
        row = read_status(cfg)["partitions"][0]
        assert row["publish_refused"]["metric_drop"] > 0 and row["served_version"] == stays
    finally:
        stop_run(run, signal.SIGTERM, timeout=180)
