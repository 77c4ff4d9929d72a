"""`streamlearn run` without `--ray-address` starts a Ray of its own.

Regression: `ray.init()` with no address joins the last cluster `ray start`
left on the machine (it records it in /tmp/ray/ray_current_cluster). The run
then failed at start ("num_cpus ... must not be provided") or would have put
the app's actors on somebody else's nodes. Seen when a multi-node test
cluster and a local run shared a machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamlearn.tools.datasets import synthetic_events
from tests.integration.engine_helpers import REPO, keyed, load, outputs, produce, write_config
from tests.polling import poll

RAY = Path(sys.executable).parent / "ray"


@pytest.fixture
def foreign_ray_head(tmp_path: Path) -> Iterator[str]:
    """A `ray start --head` on loopback, as another user of the machine would leave one."""
    proc = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", "--port=0", "--node-ip-address=127.0.0.1", "--num-cpus=0",
         "--include-dashboard=false", "--disable-usage-stats"],
        stdout=(tmp_path / "ray-head.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    marker = Path("/tmp/ray/ray_current_cluster")
    before = marker.stat().st_mtime if marker.exists() else 0.0
    try:
        poll(lambda: (marker.exists() and marker.stat().st_mtime > before) or proc.poll() is not None, 120,
             "the foreign Ray head to record itself")
        assert proc.poll() is None, (tmp_path / "ray-head.log").read_text()[-2000:]
        yield marker.read_text().strip()
    finally:
        # Only the head we started (its own session), never `ray stop`. A graceful `ray start
        # --block` shutdown takes ~30 s; nothing of this throwaway head needs to be kept.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_local_run_never_joins_a_foreign_cluster(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str],
    foreign_ray_head: str,
) -> None:
    topic = unique_topic(partitions=2)
    cfg_path = write_config(tmp_path, kafka_bootstrap, redis_url, topic, processing={"workers": 1})
    cfg = load(cfg_path)
    produce(cfg, keyed(synthetic_events(300, seed=9)))

    env = {k: v for k, v in services_env.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-m", "streamlearn", "run", "-c", str(cfg_path), "--quiet", "--no-metrics",
                           "--until-idle", "1"], env=env, cwd=REPO, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len({o["id"] for o in outputs(cfg)}) == 300
