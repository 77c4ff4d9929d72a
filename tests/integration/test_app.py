"""The public Python API (`streamlearn.App`), embedded in a program of its own.

The program runs in a subprocess, as a user's would: it starts its own local
Ray, so the test process stays free of Ray state.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from streamlearn.tools.datasets import synthetic_events
from tests.integration.engine_helpers import REPO, keyed, load, outputs, produce, write_config

PROGRAM = """
import json, sys
from streamlearn import App
from tests.polling import poll

app = App.from_file(sys.argv[1], overrides={"processing": {"workers": 1, "standby_workers": 0}})
first = app.run(until_idle_s=1, install_signals=False)
assert app.config.processing.workers == 1
before = app.status()["totals"]

# Background run, stopped from the caller: a graceful stop commits and checkpoints.
app.start()
poll(lambda: all(r["phase"] == "running" for r in app.status()["partitions"]), 120, "the background run")
final = app.stop()
print(json.dumps({"first": first["totals"], "status": before, "final": final["totals"],
                  "nodes": first["workers"]["nodes"], "row_nodes": [r["node_id"] for r in first["partitions"]]}))
"""


def test_app_runs_until_idle_reports_status_and_stops_gracefully(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]
) -> None:
    topic = unique_topic(partitions=2)
    cfg_path = write_config(tmp_path, kafka_bootstrap, redis_url, topic)
    cfg = load(cfg_path)
    produce(cfg, keyed(synthetic_events(1_000, seed=3)))

    done = subprocess.run([sys.executable, "-c", PROGRAM, str(cfg_path)], env=services_env, cwd=REPO,
                          capture_output=True, timeout=400, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["first"]["events"] == 1_000 and report["first"]["lag"] == 0
    assert report["status"]["events"] == 1_000  # read back from Kafka + Redis after the run ended
    assert report["final"]["events"] == 1_000 and report["final"]["lag"] == 0
    # The worker's Ray node, in the Coordinator's workers() view and in each partition's status.
    ((wid, node),) = report["nodes"].items()
    assert wid == "w0" and len(node["node_id"]) == 56 and node["node_ip"], report["nodes"]
    assert report["row_nodes"] == [node["node_id"]] * 2
    ids = [o["id"] for o in outputs(cfg)]
    assert len(ids) == 1_000 and len(set(ids)) == 1_000
