"""Run the README's `readme-test: run` shell blocks, verbatim and in order, against the session's Kafka and Redis.

Isolation comes only from the environment (the commands are not edited):
STREAMLEARN_APP and the topic overrides give this run its own namespace, and
STREAMLEARN_SERVICES=external makes `streamlearn services up` report the
session services instead of starting others.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.integration.serving_helpers import free_port
from tests.readme_blocks import README, runnable

ROOT = README.parent


def test_readme_shell_blocks_work_as_written(services_env: dict[str, str], kafka_bootstrap: str, redis_url: str) -> None:
    ns = f"readme-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in services_env.items() if not (k.startswith("STREAMLEARN_") and "__" in k)}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "STREAMLEARN_SERVICES": "external", "KAFKA_BOOTSTRAP": kafka_bootstrap, "REDIS_URL": redis_url,
        "STREAMLEARN_KAFKA__BOOTSTRAP": kafka_bootstrap, "STREAMLEARN_REDIS__URL": redis_url,
        "STREAMLEARN_APP": ns,
        "STREAMLEARN_KAFKA__INPUT_TOPIC": f"{ns}-events",
        "STREAMLEARN_KAFKA__OUTPUT_TOPIC": f"{ns}-predictions",
        "STREAMLEARN_KAFKA__DLQ_TOPIC": f"{ns}-dlq",
        "STREAMLEARN_METRICS__PORT": "0",
        "STREAMLEARN_SERVING__PORT": str(free_port()),
    })
    results = []
    try:
        for block in runnable():
            proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block.body], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=420)
            assert proc.returncode == 0, f"README.md:{block.line} failed:\n{block.body}\n--- stderr ---\n{proc.stderr[-3000:]}"
            results.append((block, proc))
    finally:
        from confluent_kafka.admin import AdminClient

        with contextlib.suppress(Exception):
            AdminClient({"bootstrap.servers": kafka_bootstrap}).delete_topics(
                [f"{ns}-events", f"{ns}-predictions", f"{ns}-dlq"], operation_timeout=10)

    walk = next(p for b, p in results if "streamlearn produce" in b.body)
    docs = [json.loads(line) for line in walk.stdout.splitlines() if line.startswith("{")]
    preds = [d for d in docs if "prediction" in d]
    dlq = [d for d in docs if "headers" in d]
    assert len(preds) == 5 and all({"id", "proba", "partition", "offset", "model_version"} <= d.keys() for d in preds)
    assert len(dlq) == 2 and all(d["headers"]["streamlearn.error.code"] for d in dlq)
    assert "stopped cleanly: events=1000 dlq=2 lag=0" in walk.stderr  # as the README says
    rows = [line.split() for line in walk.stdout.splitlines() if line.split()[:1] in (["0"], ["1"], ["2"], ["3"])]
    assert len(rows) == 4

    serving = next(p for b, p in results if "streamlearn serve" in b.body)
    answers = [json.loads(line) for line in serving.stdout.splitlines() if line.startswith(("{", "["))]
    health, one, many, bad = answers[:4]
    assert health["status"] == "ok" and health["served"] == 4
    assert one["id"] == "ex-16" and one["partition"] == 3 and {"prediction", "proba", "model_version"} <= one.keys()
    assert [a["partition"] for a in many] == [0, 0] and [a["id"] for a in many] == [1, 2]
    assert bad["field"] == "features.x0"
    assert "served" in serving.stdout and "latest" in serving.stdout  # models list

    cfg_out = next(p for b, p in results if "streamlearn config" in b.body)
    assert '"workers": 4' in cfg_out.stdout

    status_out = next(p for b, p in results if "--json" in b.body)
    totals = ast.literal_eval(status_out.stdout.strip())
    assert totals["events"] == 1000 and totals["dlq"] == 2 and totals["lag"] == 0
