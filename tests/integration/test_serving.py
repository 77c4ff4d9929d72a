"""The serving loop end to end: learner publishes → gate → serve (push) → export, pin, rollback, unpin.

Real Kafka, Redis and Ray; `streamlearn run`, `streamlearn serve` and
`streamlearn models` as subprocesses. Deadlines are polling deadlines
(tests/polling.py); the measured delays are in bench/serving.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from connectors import kafka_io
from connectors.kafka_records import read_topic
from streamlearn.config import AppConfig
from streamlearn.models import load
from streamlearn.serving.partitioner import consistent_random, key_of, murmur2_partition
from streamlearn.state import checkpoint
from tests.integration.engine_helpers import (
    REPO,
    events_processed,
    keyed,
    partition_key,
    produce,
    start_run,
    stop_run,
    store_of,
    wait_for,
    write_config,
)
from tests.integration.engine_helpers import load as load_cfg
from tests.integration.serving_helpers import (
    free_port,
    http,
    served,
    start_serve,
    versions_of,
    wait_serving,
)
from tests.polling import poll

PUSH_DEADLINE_S = 2.0  # the "visible ≤ 2 s after publish" as the test's deadline


def _event(i: int) -> dict[str, Any]:
    x0, x1 = ((i * 37) % 101) / 50.0 - 1.0, ((i * 11) % 13) / 6.0 - 1.0
    return {"id": f"e-{i}", "features": {"x0": x0, "x1": x1}, "label": x0 + 0.3 * x1 > 0}


class Feeder(threading.Thread):
    """Keeps labelled events flowing so the learner keeps publishing versions."""

    def __init__(self, cfg: AppConfig, start: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.cfg, self.next, self.rate, self.stop = cfg, start, rate, threading.Event()

    def run(self) -> None:
        from connectors.kafka_records import produce_records

        producer = kafka_io.make_producer(self.cfg.kafka.bootstrap)

        def events() -> Iterator[tuple[bytes, bytes]]:
            while not self.stop.is_set():
                ev = _event(self.next)
                self.next += 1
                yield str(ev["id"]).encode(), orjson.dumps(ev)

        produce_records(producer, self.cfg.kafka.input_topic, events(), rate=self.rate, stop=self.stop)


def _secret(cfg: AppConfig) -> bytes:
    secret = cfg.checkpoint_secret()
    assert secret is not None  # write_config sets one, as production runs
    return secret


def _models(config: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "streamlearn", "models", *args, "-c", str(config)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _newer_published(cfg: AppConfig, p: int, than: int, timeout: float = 90) -> int:
    versions = versions_of(cfg)
    return int(poll(lambda: max([v for v in versions.versions(p) if v > than], default=0), timeout,
                    f"a version newer than {than} published for partition {p}", every_s=0.05))


@pytest.fixture
def running(tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]) -> Iterator[Any]:
    topic = unique_topic(partitions=2)
    path = write_config(tmp_path, kafka_bootstrap, redis_url, topic,
                        processing={"workers": 1, "standby_workers": 0, "checkpoint_every_s": 1.0},
                        model={"publish": {"every_s": 1.0, "keep": 5, "gate": {"window": 200, "max_drop": 0.05}}})
    cfg = load_cfg(path)
    produce(cfg, keyed(_event(i) for i in range(1500)))
    run = start_run(path, services_env)
    # One Ray start at a time: two local Rays starting together on a busy 2-core machine time out in
    # ray.init ("node timed out during startup"). The learner is up once it has processed the backlog's first events.
    wait_for(lambda: events_processed(cfg) > 0, 300, "the learner to process its first events", run)
    port = free_port()
    serve = start_serve(path, services_env, port)
    feeder = Feeder(cfg, 1500, rate=100)
    procs = {"run": run}
    try:
        wait_serving(port, serve)
        feeder.start()
        yield cfg, path, port, serve, procs
    finally:
        feeder.stop.set()
        if feeder.ident is not None:  # started (serve may have failed before it was)
            feeder.join(timeout=30)
        for proc in (procs["run"], serve):
            if proc.poll() is None:
                stop_run(proc, signal.SIGTERM, timeout=120)


def test_learner_publishes_serve_answers_pin_rollback_gate(running: Any, services_env: dict[str, str], tmp_path: Path) -> None:
    cfg, path, port, _serve, procs = running
    poll(lambda: all(r["version"] is not None for r in served(port).values()) and len(served(port)) == 2, 180,
         "both partitions served")

    # Routing: the id's partition under librdkafka's partitioner, which produced the stream.
    status, answer = http(port, "POST", "/predict", {"id": "e-7", "features": _event(7)["features"]})
    assert status == 200, answer
    p = answer["partition"]
    assert p == consistent_random(key_of("e-7"), 2)
    assert set(answer) == {"id", "prediction", "proba", "partition", "model_version"}

    # A new version published by the learner is served by push within the deadline.
    current = served(port)[p]["version"]
    newer = _newer_published(cfg, p, current)
    poll(lambda: served(port)[p]["version"] >= newer, PUSH_DEADLINE_S, f"version {newer} served", every_s=0.05)

    # Rollback (default: the kept version before the served one): served at once, and held.
    out = _models(path, services_env, "rollback", "--partition", str(p))
    older = int(out.split("serving version ")[1].split()[0])
    newest = max(versions_of(cfg).versions(p))
    assert older < newest
    poll(lambda: served(port)[p]["version"] == older and served(port)[p]["mode"] == "rollback", PUSH_DEADLINE_S,
         f"the rollback to {older} served", every_s=0.05)
    assert http(port, "POST", f"/predict?partition={p}", {"id": "any", "features": _event(5)["features"]})[1]["model_version"] == older
    _newer_published(cfg, p, newest)
    assert versions_of(cfg).served(p).version == older

    # Unpin: back to the newest version, and following again.
    _models(path, services_env, "unpin", "--partition", str(p))
    poll(lambda: served(port)[p]["mode"] == "latest" and served(port)[p]["version"] > newest, PUSH_DEADLINE_S,
         "the newest version served after unpin", every_s=0.05)

    # Pin (no --version: the version served at that instant, chosen in the same Redis script that pins it; a version
    # read here first could be trimmed by the learner's publishes, every 1 s with keep 5, before the CLI is up):
    # serving freezes on it while the learner keeps publishing.
    out = _models(path, services_env, "pin", "--partition", str(p))
    pinned = int(out.split("pinned on version ")[1].split()[0])
    poll(lambda: served(port)[p]["mode"] == "pinned", PUSH_DEADLINE_S, "the pin served", every_s=0.05)
    later = _newer_published(cfg, p, pinned)
    assert versions_of(cfg).served(p).version == pinned
    assert served(port)[p]["version"] == pinned and later > pinned

    # The served prediction equals the exported model's, for the routed partition and version.
    features = _event(123_456)["features"]
    ids = [f"q-{i}" for i in range(40)]
    routed = next(i for i in ids if consistent_random(key_of(i), 2) == p)
    status, answer = http(port, "POST", "/predict", {"id": routed, "features": features})
    assert status == 200 and answer["partition"] == p and answer["model_version"] == pinned
    out = _models(path, services_env, "export", "--partition", str(p), "--version", str(pinned), "--out", str(tmp_path / "export"))
    model_file, meta_file = out.split()
    exported = load(model_file, _secret(cfg))
    prediction, proba = exported.predict(features)
    assert (answer["prediction"], answer["proba"]) == (prediction, proba)
    meta = json.loads(Path(meta_file).read_text())
    assert meta["version"] == pinned and meta["partition"] == p and meta["offset"] > 0 and meta["spec_hash"]

    _models(path, services_env, "unpin", "--partition", str(p))  # the gate below needs serving to follow new versions
    poll(lambda: served(port)[p]["mode"] == "latest", PUSH_DEADLINE_S, "unpinned", every_s=0.05)

    # Bad requests are refused with the field named; the model never sees them.
    assert http(port, "POST", "/predict", raw=b"{not json")[0] == 400
    status, err = http(port, "POST", "/predict", {"id": "e-1"})
    assert status == 400 and err["field"] == "features"

    # The learner is SIGKILLed: serving keeps answering with the last version.
    before = served(port)[p]["version"]
    stop_run(procs["run"], signal.SIGKILL, timeout=60)
    status, answer = http(port, "POST", f"/predict?partition={p}", {"id": "after-kill", "features": features})
    # The killed driver's Ray workers (and their checkpoint children) die with it only some time later, publishing
    # meanwhile: any version between the one served before the kill and the one served after the answer.
    assert status == 200 and before <= answer["model_version"] <= served(port)[p]["version"], (before, answer)

    # A regressing candidate (test-only hook: the least likely class) is refused by the gate; the served version stays.
    env = {**services_env, "STREAMLEARN_MODEL__PUBLISH__GATE__TEST_FORCE_BAD": "true"}
    store, versions = store_of(cfg), versions_of(cfg)
    killed_epoch = store.current_epoch(p)
    procs["run"] = start_run(path, env)
    # A refusal counted from the bad learner on: the good learner may have had one of its own (max_drop 0.05), and the
    # killed learner's workers outlive it a little; with either, the epoch below could still be the killed learner's.
    wait_for(lambda: store.current_epoch(p) > killed_epoch, 180, f"the bad learner owning partition {p}", procs["run"])
    refused = store.counters(p).get("publish_refused:metric_drop", 0)
    poll(lambda: store.counters(p).get("publish_refused:metric_drop", 0) > refused, 180, "a candidate refused for metric_drop")
    epoch = store.current_epoch(p)  # the bad learner's
    stays = versions.served(p).version
    assert stays is not None and (versions.meta(p, stays) or {})["epoch"] < epoch
    assert all((versions.meta(p, v) or {})["epoch"] < epoch for v in versions.versions(p)), "a bad candidate was published"
    assert served(port)[p]["version"] == stays
    status_json = subprocess.run([sys.executable, "-m", "streamlearn", "status", "--json", "-c", str(path)], env=services_env,
                                 cwd=REPO, capture_output=True, text=True, timeout=120)
    row = next(r for r in json.loads(status_json.stdout)["partitions"] if r["partition"] == p)
    assert row["publish_refused"]["metric_drop"] > 0 and row["served_version"] == stays


def test_partitioners_match_the_real_clients(kafka_bootstrap: str, unique_topic: Any) -> None:
    """Keyed records produced by librdkafka land where our partitioners say (consistent_random and murmur2)."""
    for name, ours in (("consistent_random", consistent_random), ("murmur2", murmur2_partition)):
        topic = unique_topic(partitions=5)
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": name})
        keys = [key_of(f"e-{i}") for i in range(60)] + [key_of(i) for i in range(60)]
        for k in keys:
            producer.produce(topic, key=k, value=b"{}")
        assert producer.flush(30) == 0
        landed = {m.key(): m.partition() for m in read_topic(kafka_bootstrap, topic, list(range(5)), to_end=True, deadline_s=60)}
        assert len(landed) == len(keys)
        assert {k: ours(k, 5) for k in keys} == landed, name


def test_rollback_restart_learning_checkpoints_the_version_at_the_committed_offset(
        tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]) -> None:
    topic = unique_topic(partitions=1)
    path = write_config(tmp_path, kafka_bootstrap, redis_url, topic,
                        processing={"workers": 1, "standby_workers": 0, "checkpoint_every_s": 0.5},
                        model={"publish": {"every_s": 0.5, "gate": {"window": 100, "max_drop": 1.0}}})
    cfg = load_cfg(path)
    versions = versions_of(cfg)
    produce(cfg, keyed(_event(i) for i in range(1500)))
    # One learner for the whole test (one Ray start): a version of the first 1,500 events, then more versions.
    run = start_run(path, services_env)
    try:
        wait_for(lambda: store_of(cfg).lease(0)[0] is not None, 300, "the learner owning partition 0", run)
        first = int(poll(lambda: max(versions.versions(0), default=0), 240, "a first version published", every_s=0.1))
        produce(cfg, keyed(_event(i) for i in range(1500, 3000)))
        _newer_published(cfg, 0, first, timeout=240)
        # With the learner running, --restart-learning refuses at once, in one line saying what to do, and changes nothing.
        epoch = store_of(cfg).current_epoch(0)
        refused = subprocess.run([sys.executable, "-m", "streamlearn", "models", "rollback", "--partition", "0", "--version",
                                  str(first), "--restart-learning", "-c", str(path)], env=services_env, cwd=REPO,
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "owned by a running learner" in lines[0] and "stop `streamlearn run`" in lines[0], lines
        # Nothing changed: serving still follows the newest version, and no epoch was taken (the learner is not fenced).
        assert versions.served(0).mode == "latest" and store_of(cfg).current_epoch(0) == epoch
        assert store_of(cfg).lease(0)[0] is not None
    finally:
        code, out = stop_run(run, signal.SIGTERM, timeout=180)
    assert code == 0, out[-3000:]

    kept = versions.versions(0)
    assert len(kept) >= 2, kept
    target = kept[0]
    meta = versions.meta(0, target) or {}
    committed = store_of(cfg).read_checkpoint(0)
    assert committed is not None and meta["offset"] < committed.offset

    _models(path, services_env, "rollback", "--partition", "0", "--version", str(target), "--restart-learning")

    restarted = store_of(cfg).read_checkpoint(0)
    assert restarted is not None and restarted.offset == committed.offset  # K: nothing is replayed, nothing re-emitted
    state = checkpoint.decode(restarted.blob, partition_key(cfg, 0))
    version_model = load(_models(path, services_env, "export", "--partition", "0", "--version", str(target),
                                 "--out", str(tmp_path)).split()[0], _secret(cfg))
    probe = [_event(i)["features"] for i in range(50_000, 50_020)]
    assert [state.model.predict_proba_one(x) for x in probe] == [version_model.model.predict_proba_one(x) for x in probe]
    assert state.model_version == meta["events_learned"]
    assert versions.served(0).version == target and versions.served(0).mode == "rollback"
