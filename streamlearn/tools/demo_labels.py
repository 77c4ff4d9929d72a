"""`make demo-labels` / `python -m streamlearn.tools.demo_labels`: delayed labels, joined exactly once.

The second demo. Where `make demo` learns from labelled events, here the
events carry no label: clicks arrive on their own topic later (some before
their impression, a few twice, a few too late, some never), as in
production. In order:

1. brings up Kafka and Redis (the project's launchers, reused when up);
2. creates this run's input and label topics (4 partitions each, co-partitioned);
3. streams impressions and their labels in event-time order (a minute of
   event time passes per 600 events) while the learner runs on local Ray
   (`labels.source: topic`, window 60 s, early window 20 s, unlabelled
   impressions learned as "no click" once their window closes);
4. stops once both streams are consumed, then audits the committed topics:
   one prediction per event (I1), one training sample per event with the
   outcome its timestamps call for (I5), each partition's model equal to a
   fresh model trained on its sample log (I2 in label mode); prints the
   per-partition `labels` status and writes `demo-output-labels/summary.json`.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from streamlearn.config import AppConfig, load_config

PARTITIONS = 4


def build_config(run_id: str, bootstrap: str, redis_url: str) -> AppConfig:
    name = f"sldemo-labels-{run_id}"
    return load_config(None, environ={}, overrides={
        "app": name,
        "kafka": {"bootstrap": bootstrap, "input_topic": f"{name}-impressions", "output_topic": f"{name}-predictions",
                  "dlq_topic": f"{name}-dlq", "label_topic": f"{name}-clicks"},
        "redis": {"url": redis_url},
        "model": {"estimator": "river.linear_model.LogisticRegression", "preprocessing": ["river.preprocessing.StandardScaler"]},
        "processing": {"workers": 2, "checkpoint_every_s": 2},
        "labels": {"source": "topic", "window_s": 60, "early_window_s": 20, "on_expiry": "default", "default_label": False,
                   "idle_advance_s": 3600},
        "checkpoint": {"allow_dev_key": True},  # a local demo, like `make demo`
        "metrics": {"port": None},
    })


def stream(cfg: AppConfig, n: int, rate: float) -> dict[str, Any]:
    """Impressions and clicks in event-time order, paced; the expected outcome of every event."""
    from streamlearn.tools.label_data import make_data, produce_stream

    d = make_data(n, seed=2026)
    produce_stream(cfg, d, PARTITIONS, rate)
    return {"expected": d.expected, "late": d.late, "duplicate": d.duplicate, "orphan": d.orphan}


def audit(cfg: AppConfig, expected: dict[str, Any]) -> dict[str, Any]:
    from connectors.redis_store import open_store
    from streamlearn.state import checkpoint
    from streamlearn.tools import checker, label_checker

    k, samples_topic = cfg.kafka, cfg.samples_topic
    assert samples_topic is not None
    events, samples, dlq = (checker.read_app_topic(cfg, t) for t in (k.input_topic, samples_topic, k.dlq_topic))
    i1 = checker.check_i1(events, checker.read_app_topic(cfg, k.output_topic), dlq, source_topic=k.input_topic)
    i5 = label_checker.check_i5(cfg, events, checker.read_app_topic(cfg, cfg.label_topic), samples, dlq)
    store, key = open_store(cfg.redis, cfg.app, k.input_topic), cfg.checkpoint_secret() or checkpoint.dev_key(cfg.app)
    probes = checker.probe_set()
    probes = [{f"x{j}": x.get(f"x{j}", 0.0) for j in range(4)} for x in probes]
    models_equal = {}
    for p, msgs in samples.items():
        stored = store.read_checkpoint(p)
        got = checkpoint.decode(stored.blob, checkpoint.partition_key(key, cfg.app, k.input_topic, p)) if stored is not None else None
        ref = label_checker.sample_log_state(cfg, msgs)
        models_equal[p] = got is not None and all(checker.same(got.model.predict_proba_one(x), ref.model.predict_proba_one(x))
                                                  for x in probes)
    learned = [orjson.loads(m.value()) for msgs in samples.values() for m in msgs]
    return {
        "events": i1.inputs, "predictions": i1.predictions, "i1_ok": i1.ok,
        "samples": i5.samples, "i5_ok": i5.ok and i5.outcomes == expected["expected"],
        "dead_letters": dict(i5.dlq_reasons),
        "expected_dead_letters": {"late_label": expected["late"], "duplicate_label": expected["duplicate"],
                                  "orphan_label": expected["orphan"]},
        "models_equal_sample_log": models_equal,
        "prequential_accuracy": round(sum(s["prediction"] == s["label"] for s in learned) / max(len(learned), 1), 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m streamlearn.tools.demo_labels", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=12_000)
    ap.add_argument("--rate", type=float, default=1500.0, help="records (impressions + clicks) per second")
    ap.add_argument("--out", default="demo-output-labels")
    args = ap.parse_args(argv)
    from connectors import kafka_io
    from connectors.services.backends import services_up
    from streamlearn.app import App

    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    print("1/4 starting Kafka and Redis ...", flush=True)
    endpoints = services_up()
    cfg = build_config(time.strftime("%Y%m%d-%H%M%S"), endpoints.kafka_bootstrap, endpoints.redis_url)
    adm = kafka_io.admin(cfg.kafka.bootstrap)
    for topic in (cfg.kafka.input_topic, cfg.label_topic):
        kafka_io.ensure_topic(adm, topic, PARTITIONS)
    print(f"2/4 app {cfg.app}: impressions on {cfg.kafka.input_topic}, clicks on {cfg.label_topic} ({PARTITIONS} partitions)",
          flush=True)
    expected: dict[str, Any] = {}
    producer = threading.Thread(target=lambda: expected.update(stream(cfg, args.events, args.rate)), daemon=True)
    producer.start()
    print(f"3/4 streaming {args.events} impressions and their clicks in event-time order; learning ...", flush=True)
    app = App(cfg).start(until_idle_s=5)
    producer.join()
    final = app.wait()
    print("4/4 auditing the committed topics (read_committed) ...", flush=True)
    summary = {"app": cfg.app, "labels": {r["partition"]: r.get("labels") for r in final.get("partitions", [])},
               **audit(cfg, expected)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
    for p, row in sorted(summary["labels"].items()):
        if row:
            print(f"  partition {p}: joined={row['joined']} expired={row['expired']} late={row['late']} "
                  f"duplicate={row['duplicate']} orphan={row['orphan']} pending={row['pending']}")
    ok = summary["i1_ok"] and summary["i5_ok"] and all(summary["models_equal_sample_log"].values()) \
        and summary["dead_letters"] == summary["expected_dead_letters"]
    print(f"events={summary['events']} predictions={summary['predictions']} samples={summary['samples']} "
          f"dead letters={summary['dead_letters']} accuracy={summary['prequential_accuracy']}")
    print(("exactly once: I1, I5 and I2 (label mode) hold" if ok else "AUDIT FAILED") + f"; wrote {out / 'summary.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
