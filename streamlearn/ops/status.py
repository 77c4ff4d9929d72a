"""Per-partition status assembled from Redis (what workers publish) and Kafka (offsets).

Used by the Coordinator, `streamlearn status` and the metrics endpoint; it
needs no Ray, so an operator can ask from any machine that reaches Kafka
and Redis.
"""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka import Consumer

from connectors import kafka_io
from connectors.autoscale_store import AutoscaleStore
from connectors.redis_store import CheckpointStore, connect, open_store, redacted
from connectors.rescale_store import RescaleStore
from connectors.version_store import VersionStore
from streamlearn.config import AppConfig
from streamlearn.errors import ConfigError, ServiceUnavailableError
from streamlearn.labels.join import COUNTERS as LABEL_COUNTERS
from streamlearn.models.publisher import REFUSED_COUNTER

STATUS_DECISIONS = 10  # autoscale decisions shown by `streamlearn status` (Redis keeps more: autoscale_store.KEPT)


def _num(raw: str | None, cast: type = int) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return cast(raw)
    except ValueError:
        return None


def collect(cfg: AppConfig, store: CheckpointStore, consumer: Consumer, partitions: list[int]) -> dict[str, Any]:
    topic = cfg.kafka.input_topic
    now_ms = int(time.time() * 1000)
    if cfg.processing.guarantee == "exactly_once":
        committed = kafka_io.committed_offsets(consumer, topic, partitions)
    else:
        committed = {p: store.committed_offset(p) for p in partitions}
    label_committed = kafka_io.committed_offsets(consumer, cfg.label_topic, partitions) if cfg.label_mode else {}
    rows: list[dict[str, Any]] = []
    versions = VersionStore(store)
    for p in partitions:
        st = store.read_status(p)
        meta = store.checkpoint_meta(p)
        owner, lease_ms = store.lease(p)
        counters = store.counters(p)
        _low, high = kafka_io.watermarks(consumer, topic, p)
        k = committed.get(p)
        served = versions.served(p)
        kept = versions.versions(p)
        position = _num(st.get("position"))
        done = position if position is not None else (k or 0)
        rows.append(
            {
                "partition": p,
                "owner": owner,
                "worker": owner.split("@", 1)[0] if owner else None,
                "node_id": st.get("node_id") or None,  # the Ray node of the worker that last published (None: not in Ray)
                "node_ip": st.get("node_ip") or None,
                "lease_ms": lease_ms,
                "phase": st.get("phase", "unowned") if owner else ("stopped" if st.get("phase") == "stopped" else "unowned"),
                "epoch": store.current_epoch(p),
                "committed_offset": k,
                "checkpoint_offset": meta.get("offset"),
                "checkpoint_age_s": round((now_ms - meta["ts_ms"]) / 1000, 1) if meta.get("ts_ms") else None,
                "checkpoint_bytes": meta.get("size"),
                "events": _num(st.get("events")) or 0,
                "dlq": _num(st.get("dlq")) or 0,
                "model_version": _num(st.get("model_version")) or 0,
                "high_watermark": high,
                "lag": max(high - max(done, k or 0), 0),
                "events_per_s": _num(st.get("eps"), float) or 0.0,
                "metric": {"name": st.get("metric_name"), "value": _num(st.get("metric_value"), float)},
                "commits": _num(st.get("commits")) or 0,
                "commit_sum_ms": _num(st.get("commit_sum_ms"), float) or 0.0,
                "commit_hist": [int(x) for x in st.get("commit_hist", "").split(",") if x],
                "budget_commits": _num(st.get("budget_commits")) or 0,
                "recoveries": counters.get("recoveries", 0),
                "checkpoints_refused": counters.get("checkpoints_refused", 0),
                "error": st.get("error") or None,
                "checkpoint_child_timeouts": counters.get("checkpoint_child_timeouts", 0),
                "published_version": kept[-1] if kept else None,
                "served_version": served.version,
                "served_mode": served.mode,
                "publish_refused": {n[len(REFUSED_COUNTER):]: v for n, v in counters.items() if n.startswith(REFUSED_COUNTER)},
                "updated_age_s": round((now_ms - int(st["updated_ms"])) / 1000, 1) if st.get("updated_ms") else None,
            }
        )
        if cfg.label_mode:
            rows[-1]["labels"] = _labels_row(cfg, consumer, st, p, label_committed.get(p))
            rows[-1]["lag"] += rows[-1]["labels"]["lag"]  # caught up means both streams read
    def total(field: str) -> Any:
        return sum(r[field] for r in rows)

    # Workers holding the lease of a running partition (the part of the owner before "@").
    workers = {str(r["owner"]).split("@", 1)[0] for r in rows if r["owner"] and r["phase"] == "running"}

    return {
        "app": cfg.app,
        "input_topic": topic,
        "guarantee": cfg.processing.guarantee,
        "partitions": rows,
        "worker_nodes": worker_nodes(rows),
        "totals": {
            "events": total("events"),
            "dlq": total("dlq"),
            "lag": total("lag"),
            "events_per_s": round(total("events_per_s"), 1),
            "recoveries": total("recoveries"),
            "workers": len(workers),
        },
        "handoffs": handoff_summary(RescaleStore(store)),
        "autoscale": autoscale_summary(cfg, AutoscaleStore(store)),
    }


def autoscale_summary(cfg: AppConfig, decisions: AutoscaleStore) -> dict[str, Any]:
    """processing.autoscale's decisions: counts per direction and the last ones (newest first)."""
    return {"enabled": cfg.processing.autoscale.enabled, "counts": decisions.counts(),
            "decisions": decisions.decisions(STATUS_DECISIONS)}


def worker_nodes(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """worker id → its node and the partitions it holds a lease on (what a node's loss would move)."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["worker"] is not None:
            w = out.setdefault(r["worker"], {"node_id": r["node_id"], "node_ip": r["node_ip"], "partitions": []})
            w["partitions"].append(r["partition"])
    return out


def handoff_summary(rescale: RescaleStore) -> dict[str, Any]:
    """Planned hand-offs (live rescale) so far: count, pause histogram, and p50/p99 of the last pauses kept."""
    out = rescale.handoffs()
    pauses = sorted(float(x["pause_s"]) for x in rescale.pauses())
    for q in (50, 99):
        out[f"pause_p{q}_s"] = pauses[min(len(pauses) - 1, int(len(pauses) * q / 100))] if pauses else None
    out["scale"] = rescale.state() or None  # the last `streamlearn scale` request and how it went
    return out


def _labels_row(cfg: AppConfig, consumer: Consumer, st: dict[str, str], p: int, committed: int | None) -> dict[str, Any]:
    """Label mode: the join's counters as the worker published them, and the label partition's lag from Kafka."""
    low, high = kafka_io.watermarks(consumer, cfg.label_topic, p)
    try:
        published = json.loads(st.get("labels") or "{}")
    except ValueError:
        published = {}
    row: dict[str, Any] = {name: int(published.get(name, 0)) for name in LABEL_COUNTERS}
    row["pending"] = int(published.get("pending", 0))
    row["oldest_pending_age_s"] = float(published.get("oldest_pending_age_s", 0.0))
    row["delay_hist"] = [int(x) for x in published.get("delay_hist", [])]
    row["delay_sum_s"] = float(published.get("delay_sum_s", 0.0))
    row["lag"] = max(high - (committed if committed is not None else low), 0)
    return row


def check_services(cfg: AppConfig) -> None:
    """Fail fast, naming the service and where, before Ray starts."""
    url = cfg.redis.url.get_secret_value()
    try:
        connect(url, socket_timeout_s=3.0, ssl_ca_certs=cfg.redis.ssl_ca_certs).ping()
    except Exception as exc:
        raise ServiceUnavailableError(
            f"Redis at {redacted(url)} is not reachable ({type(exc).__name__}: {exc})",
            hint="start it with `streamlearn services up`, or fix redis.url / STREAMLEARN_REDIS__URL",
        ) from None
    try:
        kafka_io.topic_partitions(kafka_io.admin(cfg.kafka.bootstrap, cfg.kafka.consumer), cfg.kafka.input_topic, timeout_s=10.0)
    except kafka_io.KafkaUnavailable as exc:
        raise ServiceUnavailableError(
            f"Kafka at {cfg.kafka.bootstrap} is not reachable ({exc})",
            hint="start it with `streamlearn services up`, or fix kafka.bootstrap / STREAMLEARN_KAFKA__BOOTSTRAP",
        ) from None


def read_status(cfg: AppConfig) -> dict[str, Any]:
    """The app's status read from Kafka and Redis alone (no Ray): `streamlearn status`, ``App.status``."""
    check_services(cfg)
    parts = kafka_io.topic_partitions(kafka_io.admin(cfg.kafka.bootstrap, cfg.kafka.consumer), cfg.kafka.input_topic)
    if parts is None:
        raise ConfigError(f"kafka.input_topic: topic '{cfg.kafka.input_topic}' does not exist", hint="produce to it first")
    store = open_store(cfg.redis, cfg.app, cfg.kafka.input_topic)
    consumer = kafka_io.make_consumer(cfg.kafka.bootstrap, cfg.group_id, cfg.kafka.consumer)
    try:
        return collect(cfg, store, consumer, parts)
    finally:
        consumer.close()
