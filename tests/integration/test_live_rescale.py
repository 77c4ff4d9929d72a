"""`streamlearn scale` on a running app under load: 1 → 3 → 1 workers, exactly once, models unchanged.

Real Kafka, Redis and local Ray; the app is the real CLI in a subprocess and
so is every `scale`. Events are produced all along, so partitions move while
records arrive. Checked with the shared exactly-once checker
(`streamlearn.tools.checker`, what tests/chaos/checker.py applies): every
input offset has exactly one committed prediction (I1) and every final model
equals the model trained on the partition's events in order (I2). Partitions
that the plan does not move keep their epoch (untouched); moved ones were
taken exactly once each (epoch + 1).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from connectors.rescale_store import RescaleStore
from streamlearn.config import AppConfig
from streamlearn.tools.datasets import synthetic_events
from tests.integration import engine_helpers as eh

PARTITIONS = 4


def scale(cfg_path: Path, env: dict[str, str], workers: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamlearn", "scale", "-c", str(cfg_path), "--workers", str(workers),
                           "--timeout", "300"], env=env, cwd=eh.REPO, capture_output=True, text=True, timeout=360)


def epochs(cfg: AppConfig) -> dict[int, int]:
    store = eh.store_of(cfg)
    return {p: store.current_epoch(p) for p in range(PARTITIONS)}


def owners(cfg: AppConfig) -> set[str]:
    store = eh.store_of(cfg)
    leases = [store.lease(p)[0] for p in range(PARTITIONS)]
    return {o.split("@", 1)[0] for o in leases if o is not None}




def scale_and_check(cfg_path: Path, cfg: AppConfig, env: dict[str, str], workers: int, proc: Any, load: eh.SteadyLoad) -> list[int]:
    """Scale under load; the moved partitions. Unmoved partitions keep their epoch, moved ones are taken once."""
    before, produced = epochs(cfg), load.produced
    res = scale(cfg_path, env, workers)
    assert load.produced > produced and load.is_alive(), "no events produced during the rescale: not under load"
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"scaled to {workers} worker(s)" in res.stdout, res.stdout
    state = RescaleStore(eh.store_of(cfg)).state()
    assert state["phase"] == "applied" and state["workers"] == workers
    moved = sorted(m["partition"] for m in state["moved"])
    eh.wait_for(lambda: len(owners(cfg)) == workers, 120, f"{workers} distinct lease owners", proc)
    after = epochs(cfg)
    assert {p: after[p] for p in before if p not in moved} == {p: before[p] for p in before if p not in moved}
    assert all(after[p] == before[p] + 1 for p in moved), (before, after, moved)
    return moved


def test_scale_up_and_down_under_load(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]
) -> None:
    topic = unique_topic(partitions=PARTITIONS)
    cfg_path = eh.write_config(tmp_path, kafka_bootstrap, redis_url, topic, processing={"workers": 1, "standby_workers": 1})
    cfg = eh.load(cfg_path)
    # No app running: one clear line and a non-zero exit, at once.
    res = scale(cfg_path, services_env, 3)
    assert res.returncode != 0 and "no running app" in res.stderr, res.stderr
    events = list(synthetic_events(60_000, seed=21))
    eh.produce(cfg, eh.keyed(events[:600]))
    proc = eh.start_run(cfg_path, services_env)
    load = eh.SteadyLoad(cfg, events[600:], rate=150.0)
    try:
        eh.wait_for(lambda: eh.all_committed(cfg), 240, "the first 600 events committed", proc)
        load.start()
        moved_up = scale_and_check(cfg_path, cfg, services_env, 3, proc, load)
        assert len(moved_up) == 2  # 4 partitions over 3 workers: w0 keeps 2
        moved_down = scale_and_check(cfg_path, cfg, services_env, 1, proc, load)
        assert len(moved_down) == 2
        load.stop.set()
        load.join(120)
        eh.wait_for(lambda: eh.all_committed(cfg), 240, "every event committed", proc)
        # Every moved partition has committed again under its new owner: each hand-off counted once.
        eh.wait_for(lambda: RescaleStore(eh.store_of(cfg)).handoffs()["count"] == 4, 60, "4 hand-offs recorded", proc)
    finally:
        rc, out = eh.stop_run(proc)
    assert rc == 0, out[-3000:]
    status = subprocess.run([sys.executable, "-m", "streamlearn", "status", "-c", str(cfg_path)], env=services_env, cwd=eh.REPO,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and "handoffs=4 pause p50=" in status.stdout and "last scale #2: applied" in status.stdout, status.stdout
    pauses = RescaleStore(eh.store_of(cfg)).pauses()
    assert sorted(x["partition"] for x in pauses) == sorted(moved_up + moved_down)
    eh.assert_exactly_once_and_models_equal(cfg, PARTITIONS, 600 + load.produced)
