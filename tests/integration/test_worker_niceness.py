"""A real `streamlearn run` starts its Ray worker processes at `ray.worker_niceness`.

Ray's raylet starts workers at nice 15 unless told otherwise; a value of 7 is
neither that nor our default (0), so the test fails if the key is ignored or
only one of them is applied. Read from the kernel (getpriority on each
process the driver's Ray started), as an operator's `ps -o ni` would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from connectors.proctree import descendants_matching
from streamlearn.tools.datasets import synthetic_events
from tests.integration.engine_helpers import (
    all_committed,
    keyed,
    load,
    produce,
    start_run,
    stop_run,
    wait_for,
    write_config,
)

NICENESS = 7


def test_worker_processes_run_at_the_configured_niceness(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str],
) -> None:
    topic = unique_topic(partitions=2)
    cfg_path = write_config(tmp_path, kafka_bootstrap, redis_url, topic, processing={"workers": 1, "standby_workers": 1},
                            ray={"worker_niceness": NICENESS})
    cfg = load(cfg_path)
    produce(cfg, keyed(synthetic_events(200, seed=3)))
    env = {k: v for k, v in services_env.items() if k not in ("RAY_ADDRESS", "RAY_worker_niceness")}
    proc = start_run(cfg_path, env)
    try:
        wait_for(lambda: all_committed(cfg), 300, "every partition committed", proc)
        # The owner and the standby, and the Coordinator: every actor process of this run.
        wait_for(lambda: len(descendants_matching(proc.pid, "ray::PartitionWorker")) >= 2, 120, "both worker processes", proc)
        workers = descendants_matching(proc.pid, "ray::PartitionWorker")
        coordinators = descendants_matching(proc.pid, "ray::Coordinator")
        assert coordinators
        assert {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in workers + coordinators} == dict.fromkeys(
            workers + coordinators, NICENESS)
        # The driver itself is not Ray's to renice.
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == os.getpriority(os.PRIO_PROCESS, 0)
    finally:
        code, out = stop_run(proc)
    assert code == 0, out[-3000:]
    assert "worker_niceness_differs" not in out
