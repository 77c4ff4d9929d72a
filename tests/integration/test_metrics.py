"""The Prometheus endpoint of a real `streamlearn run`: per-partition series move while input arrives."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from connectors.kafka_io import make_producer
from connectors.kafka_records import Record, produce_records
from streamlearn.tools.datasets import synthetic_events
from tests.polling import poll

PARTITIONS = 2
BATCH = 1500
DEADLINE_S = 240.0

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def _scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _per_partition(samples: Samples, name: str) -> dict[str, float]:
    return {dict(k)["partition"]: v for k, v in samples.get(name, {}).items() if "partition" in dict(k)}


def _poll(what: str, fn: Callable[[], object], proc: subprocess.Popen[bytes], log: Path) -> object:
    def still_running() -> None:
        if proc.poll() is not None:
            pytest.fail(f"streamlearn run exited with {proc.returncode} while waiting for {what}:\n{log.read_text()[-3000:]}")

    def answered() -> object:
        try:
            return fn()
        except OSError:  # endpoint not answering yet
            return None

    try:
        return poll(answered, DEADLINE_S, what, every_s=0.5, check=still_running)
    except AssertionError as exc:
        pytest.fail(f"{exc}\n{log.read_text()[-3000:]}")


def _produce(bootstrap: str, topic: str, start: int, n: int) -> None:
    events = list(synthetic_events(start + n, seed=11))[start:]
    records = [Record(ev["id"].encode(), orjson.dumps(ev), (start + i) % PARTITIONS) for i, ev in enumerate(events)]
    produce_records(make_producer(bootstrap), topic, records, flush_s=30)


def test_metrics_endpoint_tracks_a_live_run(
    unique_topic: Callable[..., str], kafka_bootstrap: str, redis_url: str, services_env: dict[str, str], tmp_path: Path
) -> None:
    topic = unique_topic(partitions=PARTITIONS)
    app = f"metrics-{uuid.uuid4().hex[:8]}"
    cfg = {
        "app": app,
        "kafka": {"bootstrap": kafka_bootstrap, "input_topic": topic, "output_topic": f"{topic}-out", "dlq_topic": f"{topic}-dlq"},
        "redis": {"url": redis_url},
        "model": {"estimator": "river.linear_model.LogisticRegression", "preprocessing": ["river.preprocessing.StandardScaler"]},
        "processing": {"workers": 1, "checkpoint_every_s": 1.0, "status_interval_s": 0.5},
        "metrics": {"port": 0, "host": "127.0.0.1"},
        "checkpoint": {"secret": f"metrics-secret-{uuid.uuid4().hex}"},
    }
    cfg_path = tmp_path / "app.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    _produce(kafka_bootstrap, topic, 0, BATCH)

    log = tmp_path / "run.log"
    env = {k: v for k, v in services_env.items() if not k.startswith("STREAMLEARN_") or k == "STREAMLEARN_CACHE_DIR"}
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlearn", "run", "-c", str(cfg_path), "--progress-every", "3600"],
            stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    try:
        found = _poll("the metrics URL", lambda: re.search(r"metrics on (http://\S+/metrics)", log.read_text()), proc, log)
        assert isinstance(found, re.Match)
        url = found.group(1)

        def events_reach(total: int) -> Samples | None:
            s = _scrape(url)
            ev = _per_partition(s, "streamlearn_events_total")
            return s if len(ev) == PARTITIONS and sum(ev.values()) == total else None

        first = _poll(f"{BATCH} events", lambda: events_reach(BATCH), proc, log)
        assert isinstance(first, dict)
        ev1 = _per_partition(first, "streamlearn_events_total")
        assert set(ev1) == {"0", "1"} and all(v > 0 for v in ev1.values())
        assert first["streamlearn_status_up"][(("app", app),)] == 1.0
        assert all(dict(k)["app"] == app for k in first["streamlearn_events_total"])

        _produce(kafka_bootstrap, topic, BATCH, BATCH)
        second = _poll(f"{2 * BATCH} events", lambda: events_reach(2 * BATCH), proc, log)
        assert isinstance(second, dict)
        ev2 = _per_partition(second, "streamlearn_events_total")
        assert all(ev2[p] > ev1[p] for p in ev1), (ev1, ev2)

        # Once caught up: no lag, commits observed, a metric value and a checkpoint per partition.
        def settled() -> Samples | None:
            s = _scrape(url)
            lag = _per_partition(s, "streamlearn_lag_events")
            size = _per_partition(s, "streamlearn_checkpoint_size_bytes")
            ok = (len(lag) == PARTITIONS and all(v == 0 for v in lag.values())
                  and len(size) == PARTITIONS and all(v > 0 for v in size.values()))
            return s if ok else None

        s = _poll("lag 0 and a checkpoint per partition", settled, proc, log)
        assert isinstance(s, dict)
        commits = _per_partition(s, "streamlearn_commit_latency_seconds_count")
        assert set(commits) == {"0", "1"} and all(v > 0 for v in commits.values())
        inf = {dict(k)["partition"]: v for k, v in s["streamlearn_commit_latency_seconds_bucket"].items() if dict(k)["le"] == "+Inf"}
        assert inf == commits
        acc = {dict(k)["partition"]: v for k, v in s["streamlearn_prequential_metric"].items()}
        assert set(acc) == {"0", "1"} and all(0.5 < v <= 1.0 for v in acc.values()), acc
        assert all(dict(k)["metric"] == "Accuracy" for k in s["streamlearn_prequential_metric"])
        running = _per_partition(s, "streamlearn_partition_running")
        assert running == {"0": 1.0, "1": 1.0}
        assert all(v == 0 for v in _per_partition(s, "streamlearn_dlq_total").values())

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=180) == 0, log.read_text()[-3000:]
        assert "stopped cleanly" in log.read_text()
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        from confluent_kafka.admin import AdminClient

        AdminClient({"bootstrap.servers": kafka_bootstrap}).delete_topics([f"{topic}-out", f"{topic}-dlq"], operation_timeout=10)
