"""The demo's world: its app config, a clean slate, its drifting stream and the paced producer.

`demo` runs the steps in order; these are the parts that do not depend on
the live view or the runner: what the demo configures, what it removes of
earlier runs, the records it streams (with malformed ones for the DLQ), and
`DemoState`, which the producer thread, the live view, the stop condition
and the report share.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streamlearn.config import AppConfig

DEMO_PREFIX = "sldemo-"
MODEL = {
    "estimator": "river.linear_model.LogisticRegression",
    "params": {"l2": 0.0},
    "preprocessing": ["river.preprocessing.StandardScaler"],
    "metric": "river.metrics.Accuracy",
}


@dataclass
class DemoState:
    """What the live view, the stop condition and the report share."""

    total: int
    drift_at: int
    produced: int = 0
    producing_done: bool = False
    produce_started_at: float | None = None
    drift_produced_at: float | None = None
    samples: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    producer_error: str | None = None


def build_config(run_id: str, bootstrap: str, redis_url: str, workers: int) -> AppConfig:
    app = f"{DEMO_PREFIX}{run_id}"
    return AppConfig.model_validate(
        {
            "app": app,
            "kafka": {"bootstrap": bootstrap, "input_topic": f"{app}-events", "output_topic": f"{app}-predictions", "dlq_topic": f"{app}-dlq"},
            "redis": {"url": redis_url},
            "model": {**MODEL, "publish": {"every_s": 3.0}},  # versions advance visibly during the demo
            "processing": {"workers": workers, "checkpoint_every_s": 2.0, "checkpoint_every_events": 2_000, "status_interval_s": 0.5},
            "metrics": {"port": 0},
            # A local, throw-away demo: signing with the per-app development key is fine here
            # (the run warns); a real deployment sets STREAMLEARN_CHECKPOINT_SECRET instead.
            "checkpoint": {"allow_dev_key": True},
        }
    )


def write_app_yaml(cfg: AppConfig, path: Path) -> None:
    """The demo's config as a file, so `streamlearn status -c demo-output/app.yaml` works afterwards."""
    import yaml

    data = cfg.model_dump(mode="json", exclude_defaults=True)
    data["kafka"]["bootstrap"] = cfg.kafka.bootstrap
    data["redis"] = {"url": cfg.redis.url.get_secret_value()}
    data["metrics"] = {"port": 0}
    path.write_text("# written by `make demo`: inspect this run with\n#   streamlearn status -c " + str(path) + "\n" + yaml.safe_dump(data, sort_keys=False))


def forget_previous_runs(cfg: AppConfig, keep_app: str) -> int:
    """Delete earlier demo runs' topics, consumer groups and Redis keys (best effort)."""
    from connectors import kafka_io
    from connectors.redis_store import client_for

    removed = 0
    adm = kafka_io.admin(cfg.kafka.bootstrap)
    with contextlib.suppress(Exception):
        old = [t for t in adm.list_topics(timeout=10).topics if t.startswith(DEMO_PREFIX) and not t.startswith(keep_app)]
        if old:
            for fut in adm.delete_topics(old, operation_timeout=15).values():
                with contextlib.suppress(Exception):
                    fut.result(timeout=20)
            removed += len(old)
    with contextlib.suppress(Exception):
        groups = [g.group_id for g in adm.list_consumer_groups(request_timeout=10).result(timeout=15).valid
                  if g.group_id.startswith(f"streamlearn-{DEMO_PREFIX}") and keep_app not in g.group_id]
        if groups:
            for fut in adm.delete_consumer_groups(groups, request_timeout=10).values():
                with contextlib.suppress(Exception):
                    fut.result(timeout=15)
    with contextlib.suppress(Exception):
        r = client_for(cfg.redis)
        keys = [k for k in r.scan_iter(match=f"{cfg.redis.key_prefix}:{DEMO_PREFIX}*", count=1000)
                if not k.decode().startswith(f"{cfg.redis.key_prefix}:{keep_app}:")]
        for i in range(0, len(keys), 500):
            r.delete(*keys[i : i + 500])
        r.close()
    return removed


def make_events(n: int, seed: int, drift_at: int, malformed: int) -> tuple[list[tuple[bytes, bytes]], dict[str, bool]]:
    """(key, value) records in produce order and the label of every valid id."""
    from streamlearn.tools.datasets import synthetic_events

    records: list[tuple[bytes, bytes]] = []
    labels: dict[str, bool] = {}
    bad_every = n // malformed if malformed else 0
    for i, ev in enumerate(synthetic_events(n, seed=seed, drift_at=drift_at)):
        labels[ev["id"]] = ev["label"]
        records.append((ev["id"].encode(), orjson.dumps(ev)))
        if bad_every and i % bad_every == bad_every // 2 and len(records) - len(labels) < malformed:
            k = len(records) - len(labels)
            value = b"{not json" if k % 2 == 0 else orjson.dumps({"id": f"bad-{k}", "features": "oops"})
            records.append((f"bad-{k}".encode(), value))
    return records, labels


def produce(cfg: AppConfig, records: list[tuple[bytes, bytes]], rate: float, st: DemoState, drift_index: int) -> None:
    """Paced producer thread; stops early when the demo is stopped."""
    from connectors import kafka_io
    from connectors.kafka_records import produce_records

    # Index of the first record after the drift (malformed records are not counted as events).
    valid = [i for i, (key, _v) in enumerate(records) if not key.startswith(b"bad-")]
    drift_record = valid[drift_index] + 1 if drift_index < len(valid) else -1

    def sent(n: int) -> None:
        st.produced = n
        if n == drift_record:
            st.drift_produced_at = time.monotonic()

    try:
        producer = kafka_io.make_producer(cfg.kafka.bootstrap, {"linger.ms": 20})
        st.produce_started_at = time.monotonic()
        produce_records(producer, cfg.kafka.input_topic, records, rate=rate, stop=st.stop, on_sent=sent, flush_s=30)
    except Exception as exc:  # shown in the summary; the learner still stops cleanly
        st.producer_error = f"{type(exc).__name__}: {exc}"
    finally:
        st.producing_done = True


def all_consumed(st: DemoState, status: dict[str, Any]) -> bool:
    if not st.producing_done or not status.get("partitions"):
        return False
    t = status["totals"]
    return t["lag"] == 0 and t["events"] + t["dlq"] >= st.produced
