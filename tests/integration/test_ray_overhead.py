"""A real `streamlearn run` keeps no idle Ray workers and has Ray's metrics export off (`ray.idle_workers`,
`ray.metrics`, both false by default).

Ray prestarts one worker process per logical CPU for the first driver and, by
default, keeps them (`ray::IDLE`, about 1 % of a core each doing nothing). With
the defaults the ones no actor took are killed about a second after the start;
the test waits with a deadline for none to be left while the app runs, and reads
the system config the GCS was started with (its `--config_list`; the other Ray processes read theirs from it).
"""

from __future__ import annotations

import base64
import json
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


def _system_config(driver_pid: int) -> dict[str, Any]:
    [gcs] = descendants_matching(driver_pid, "gcs/gcs_server")
    args = Path(f"/proc/{gcs}/cmdline").read_bytes().split(b"\0")
    [encoded] = [a.split(b"=", 1)[1] for a in args if a.startswith(b"--config_list=")]
    return dict(json.loads(base64.b64decode(encoded)))


def test_no_idle_ray_workers_and_no_ray_metrics_by_default(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str],
) -> None:
    topic = unique_topic(partitions=2)
    cfg_path = write_config(tmp_path, kafka_bootstrap, redis_url, topic, processing={"workers": 1, "standby_workers": 1})
    cfg = load(cfg_path)
    produce(cfg, keyed(synthetic_events(200, seed=5)))
    env = {k: v for k, v in services_env.items() if k != "RAY_ADDRESS"}
    proc = start_run(cfg_path, env)
    try:
        wait_for(lambda: all_committed(cfg), 300, "every partition committed", proc)
        wait_for(lambda: len(descendants_matching(proc.pid, "ray::PartitionWorker")) >= 2, 120, "owner and standby up", proc)
        wait_for(lambda: not descendants_matching(proc.pid, "ray::IDLE"), 60, "no idle Ray worker left", proc)
        config = _system_config(proc.pid)
        assert config["enable_metrics_collection"] is False
        assert config["num_workers_soft_limit"] == 0
        # The app still works with them gone: more input is predicted.
        produce(cfg, keyed(synthetic_events(100, seed=6)))
        wait_for(lambda: all_committed(cfg), 120, "the second batch committed", proc)
    finally:
        code, out = stop_run(proc)
    assert code == 0, out[-3000:]
