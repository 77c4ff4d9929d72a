"""Run the README's `readme-test: run` shell blocks, verbatim and in order, against the session's Kafka and Redis.

Isolation comes only from the environment (the commands are not edited):
each block runs with STREAMLEARN_APP and topic overrides derived from the
example config file it names (`-c examples/X.yaml`): every name in that file
gets this run's prefix, so the walk-throughs of two apps (examples/app.yaml,
examples/labels-app.yaml) stay two apps inside one namespace, as they are for
a reader. STREAMLEARN_SERVICES=external makes `streamlearn services up`
report the session services instead of starting others.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from tests.integration.serving_helpers import free_port
from tests.readme_blocks import README, runnable

ROOT = README.parent
# The names an example app file may set, as environment overrides; the journal topic defaults from the input topic.
_NAMED = {("kafka", "input_topic"), ("kafka", "output_topic"), ("kafka", "dlq_topic"), ("kafka", "label_topic"),
          ("kafka", "samples_topic"), ("labels", "journal_topic")}


def namespaced(config_file: str, ns: str) -> dict[str, str]:
    """STREAMLEARN_* overrides giving the app of `config_file` its own names under the prefix `ns`."""
    data = yaml.safe_load((ROOT / config_file).read_text())
    env = {"STREAMLEARN_APP": f"{ns}-{data.get('app', 'streamlearn')}"}
    for section, key in _NAMED:
        name = (data.get(section) or {}).get(key)
        if name:
            env[f"STREAMLEARN_{section.upper()}__{key.upper()}"] = f"{ns}-{name}"
    return env


def block_config(body: str) -> str:
    """The one example config file a block names (every runnable block names exactly one)."""
    files = set(re.findall(r"-c (examples/[\w.-]+\.yaml)", body))
    assert len(files) == 1, f"a README block must name exactly one example config, got {sorted(files)}:\n{body}"
    return files.pop()


def test_readme_shell_blocks_work_as_written(services_env: dict[str, str], kafka_bootstrap: str, redis_url: str) -> None:
    ns = f"readme-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in services_env.items() if not (k.startswith("STREAMLEARN_") and "__" in k)}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "STREAMLEARN_SERVICES": "external", "KAFKA_BOOTSTRAP": kafka_bootstrap, "REDIS_URL": redis_url,
        "STREAMLEARN_KAFKA__BOOTSTRAP": kafka_bootstrap, "STREAMLEARN_REDIS__URL": redis_url,
        "STREAMLEARN_METRICS__PORT": "0",
        "STREAMLEARN_SERVING__PORT": str(free_port()),
    })
    results = []
    topics: set[str] = set()
    try:
        for block in runnable():
            names = namespaced(block_config(block.body), ns)
            topics.update(v for k, v in names.items() if k != "STREAMLEARN_APP")
            proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block.body], cwd=ROOT, env={**env, **names},
                                  capture_output=True, text=True, timeout=420)
            assert proc.returncode == 0, f"README.md:{block.line} failed:\n{block.body}\n--- stderr ---\n{proc.stderr[-3000:]}"
            results.append((block, proc))
    finally:
        from confluent_kafka.admin import AdminClient

        # Journal topics default from the input topic: the label app's is `{input}.join-journal`.
        topics.update(f"{t}.join-journal" for t in list(topics))
        with contextlib.suppress(Exception):
            AdminClient({"bootstrap.servers": kafka_bootstrap}).delete_topics(sorted(topics), operation_timeout=10)

    walk = next(p for b, p in results if "streamlearn produce" in b.body)
    docs = [json.loads(line) for line in walk.stdout.splitlines() if line.startswith("{")]
    preds = [d for d in docs if "prediction" in d]
    dlq = [d for d in docs if "headers" in d]
    assert len(preds) == 5 and all({"id", "proba", "partition", "offset", "model_version"} <= d.keys() for d in preds)
    assert len(dlq) == 2 and all(d["headers"]["streamlearn.error.code"] for d in dlq)
    assert "stopped cleanly: events=1000 dlq=2 lag=0" in walk.stderr  # as the README says
    rows = [line.split() for line in walk.stdout.splitlines() if line.split()[:1] in (["0"], ["1"], ["2"], ["3"])]
    assert len(rows) == 4

    labels = next(p for b, p in results if "--labels" in b.body)
    assert "stopped cleanly: events=1000" in labels.stderr
    rows = {int(line.split(" ", 1)[0]): ast.literal_eval(line.split(" ", 1)[1])
            for line in labels.stdout.splitlines() if line[:1].isdigit() and " {" in line}
    assert sorted(rows) == [0, 1, 2, 3]
    total = {k: sum(r[k] for r in rows.values()) for k in ("joined", "expired", "pending", "late", "duplicate", "orphan")}
    assert total["joined"] + total["expired"] + total["pending"] == 1000  # each impression joined, expired or waiting
    assert total["duplicate"] == 30  # "30 twice": the first label of an id wins
    assert total["joined"] + total["late"] + total["duplicate"] + total["orphan"] <= 963  # the rest wait as early labels
    refused = [json.loads(line) for line in labels.stdout.splitlines() if line.startswith("{")]
    assert len(refused) == 3
    assert {d["headers"]["streamlearn.error.code"] for d in refused} <= {"late_label", "duplicate_label", "orphan_label"}

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

    status_out = next(p for b, p in results if "--json" in b.body and "totals" in b.body)
    totals = ast.literal_eval(status_out.stdout.strip())
    assert totals["events"] == 1000 and totals["dlq"] == 2 and totals["lag"] == 0
