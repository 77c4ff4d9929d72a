"""Prometheus endpoint of `streamlearn run`: per-partition series from the status dict.

Why a custom collector instead of counters updated in the workers: the
workers already publish their counters to Redis every
`processing.status_interval_s`, and `streamlearn.ops.status.collect` joins them
with Kafka's offsets. Reading that at scrape time keeps one source of truth
(what `streamlearn status` prints is what Prometheus sees), works for any
number of Ray nodes without a push gateway, and survives worker restarts:
counters live in the model state and the checkpoint, not in a process.

Every series carries the labels `app` and `partition` (plus `metric` for the
prequential metric). Labels never hold URLs, hosts or secrets. The names and
meanings are listed in `METRICS` below and rendered into the README by
`metrics_markdown()`. The HTTP endpoint and its Kafka + Redis source are in
`metrics_endpoint`: this module reads no service.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from streamlearn import logs

log = logs.get("metrics")

PREFIX = "streamlearn_"
Status = dict[str, Any]
StatusSource = Callable[[], Status]


@dataclass(frozen=True)
class MetricDoc:
    name: str  # without PREFIX and without the _total/_bucket suffixes Prometheus adds
    kind: str  # counter | gauge | histogram
    help: str


METRICS: tuple[MetricDoc, ...] = (
    MetricDoc("events", "counter", "Events processed (predicted and learned) by the partition's model."),
    MetricDoc("events_per_second", "gauge", "Recent processing rate of the partition, events per second."),
    MetricDoc("lag_events", "gauge", "Records in the input partition not yet processed (high watermark minus position)."),
    MetricDoc("committed_offset", "gauge", "Next input offset committed in Kafka (inside the transaction)."),
    MetricDoc("commit_latency_seconds", "histogram", "Duration of one transaction commit (outputs + input offsets)."),
    MetricDoc("budget_commits", "counter", "Batches committed early because their transaction had been open for its time budget "
              "(min(commit_interval_ms, transaction_timeout_ms/3)): a backlog, or a model too slow for the interval."),
    MetricDoc("checkpoint_age_seconds", "gauge", "Seconds since the partition's last model checkpoint was written to Redis."),
    MetricDoc("checkpoint_size_bytes", "gauge", "Size of the partition's last model checkpoint (authenticated blob)."),
    MetricDoc("checkpoint_offset", "gauge", "Input offset the last checkpoint reflects (never above committed_offset)."),
    MetricDoc("recoveries", "counter", "Times the partition was restored from checkpoint + replay after a failure."),
    MetricDoc("checkpoints_refused", "counter", "Checkpoint writes refused by the epoch/offset compare-and-set (zombie or stale writer)."),
    MetricDoc("checkpoint_child_timeouts", "counter", "Forked checkpoint children killed at checkpoint.child_timeout_s (the next checkpoint is written inline)."),
    MetricDoc("dlq", "counter", "Records sent to the dead-letter topic (undecodable or invalid)."),
    MetricDoc("prequential_metric", "gauge", "Prequential (test-then-train) metric of the partition's model; label `metric` names it."),
    MetricDoc("epoch", "gauge", "Ownership epoch of the partition in Redis; it increases on every take-over."),
    MetricDoc("partition_running", "gauge", "1 when a live worker owns the partition and processes it, else 0."),
    MetricDoc("published_version", "gauge", "Newest model version published for the partition (model.publish)."),
    MetricDoc("served_version", "gauge", "Model version `streamlearn serve` answers with for the partition (latest, rollback or pinned)."),
    MetricDoc("publish_refused", "counter", "Candidate versions refused by the validation gate; label `reason`: metric_drop, non_finite, too_large, no_evidence (an empty gate window while a version is served)."),
    MetricDoc("status_up", "gauge", "1 when the last status read from Kafka and Redis succeeded, else 0 (no `partition` label)."),
    MetricDoc("workers", "gauge", "PartitionWorkers holding the lease of at least one running partition (no `partition` label)."),
    MetricDoc("handoffs", "counter", "Partitions moved by a planned hand-off (`streamlearn scale`) and committing again (no `partition` label)."),
    MetricDoc("handoff_pause_seconds", "histogram", "Pause of a moved partition: last commit by the old owner to first commit by the new one."),
    MetricDoc("autoscale_decisions", "counter", "Decisions of processing.autoscale; label `direction`: up, down, held (the cooldown held a change back)."),
    # labels.source: topic only (streamlearn.ops.label_metrics)
    MetricDoc("labels", "counter", "Delayed-label outcomes; label `outcome`: joined, expired, evicted, late, duplicate, orphan."),
    MetricDoc("labels_pending", "gauge", "Events predicted and waiting for their label (the pending store)."),
    MetricDoc("labels_oldest_pending_age_seconds", "gauge", "Event-time age of the oldest pending event against the event clock."),
    MetricDoc("label_delay_seconds", "histogram", "Event-time delay of joined labels (label ts minus event ts)."),
)


def full_name(doc: MetricDoc) -> str:
    """The name as scraped: counters get `_total`, histograms `_bucket/_sum/_count`."""
    return PREFIX + doc.name + ("_total" if doc.kind == "counter" else "")


def metrics_markdown() -> str:
    """A Markdown table of every series, for the README (a test keeps them in sync)."""
    lines = ["| name | type | meaning |", "| --- | --- | --- |"]
    for doc in METRICS:
        lines.append(f"| `{full_name(doc)}` | {doc.kind} | {doc.help} |")
    return "\n".join(lines)


def _doc(name: str) -> MetricDoc:
    return next(d for d in METRICS if d.name == name)


def _finite(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


#: Per-partition series read straight from a status row: metric family → status field.
_ROW_FIELDS = {
    "events": "events",
    "events_per_second": "events_per_s",
    "lag_events": "lag",
    "committed_offset": "committed_offset",
    "checkpoint_age_seconds": "checkpoint_age_s",
    "checkpoint_size_bytes": "checkpoint_bytes",
    "checkpoint_offset": "checkpoint_offset",
    "recoveries": "recoveries",
    "checkpoints_refused": "checkpoints_refused",
    "checkpoint_child_timeouts": "checkpoint_child_timeouts",
    "budget_commits": "budget_commits",
    "dlq": "dlq",
    "epoch": "epoch",
    "published_version": "published_version",
    "served_version": "served_version",
}


def families(status: Status | None, app: str) -> list[Metric]:
    """Prometheus metric families from one status dict (None: the read failed)."""

    def fam(name: str, cls: type, extra: tuple[str, ...] = ()) -> Any:
        return cls(PREFIX + name, _doc(name).help, labels=["app", "partition", *extra])

    up = GaugeMetricFamily(PREFIX + "status_up", _doc("status_up").help, labels=["app"])
    up.add_metric([app], 0.0 if status is None else 1.0)
    if status is None:
        return [up]
    from streamlearn.eos.task import COMMIT_BUCKETS_MS

    out: dict[str, Any] = {
        "events": fam("events", CounterMetricFamily),
        "events_per_second": fam("events_per_second", GaugeMetricFamily),
        "lag_events": fam("lag_events", GaugeMetricFamily),
        "committed_offset": fam("committed_offset", GaugeMetricFamily),
        "commit_latency_seconds": fam("commit_latency_seconds", HistogramMetricFamily),
        "budget_commits": fam("budget_commits", CounterMetricFamily),
        "checkpoint_age_seconds": fam("checkpoint_age_seconds", GaugeMetricFamily),
        "checkpoint_size_bytes": fam("checkpoint_size_bytes", GaugeMetricFamily),
        "checkpoint_offset": fam("checkpoint_offset", GaugeMetricFamily),
        "recoveries": fam("recoveries", CounterMetricFamily),
        "checkpoints_refused": fam("checkpoints_refused", CounterMetricFamily),
        "checkpoint_child_timeouts": fam("checkpoint_child_timeouts", CounterMetricFamily),
        "dlq": fam("dlq", CounterMetricFamily),
        "prequential_metric": fam("prequential_metric", GaugeMetricFamily, ("metric",)),
        "epoch": fam("epoch", GaugeMetricFamily),
        "partition_running": fam("partition_running", GaugeMetricFamily),
        "published_version": fam("published_version", GaugeMetricFamily),
        "served_version": fam("served_version", GaugeMetricFamily),
        "publish_refused": fam("publish_refused", CounterMetricFamily, ("reason",)),
    }
    for row in status.get("partitions", []):
        labels = [app, str(row["partition"])]

        def put(name: str, value: Any, row_labels: list[str] = labels) -> None:
            v = _finite(value)
            if v is not None:
                out[name].add_metric(row_labels, v)

        for family, field in _ROW_FIELDS.items():
            put(family, row.get(field))
        put("partition_running", 1.0 if row.get("phase") == "running" else 0.0)
        for reason, n in (row.get("publish_refused") or {}).items():
            put("publish_refused", n, [*labels, reason])
        metric = row.get("metric") or {}
        if metric.get("name"):
            put("prequential_metric", metric.get("value"), [*labels, str(metric["name"])])
        hist = list(row.get("commit_hist") or [])
        if hist:
            buckets, running = [], 0
            for bound_ms, count in zip(COMMIT_BUCKETS_MS, hist, strict=False):
                running += count
                buckets.append((_le(bound_ms / 1000), running))
            buckets.append(("+Inf", sum(hist)))
            out["commit_latency_seconds"].add_metric(labels, buckets, (row.get("commit_sum_ms") or 0.0) / 1000)
    workers = GaugeMetricFamily(PREFIX + "workers", _doc("workers").help, labels=["app"])
    workers.add_metric([app], float(len(owning_workers(status))))
    from streamlearn.ops.handoff_metrics import autoscale_families, handoff_families
    from streamlearn.ops.label_metrics import label_families

    return [up, workers, *handoff_families(status, app, _doc), *autoscale_families(status, app, _doc), *out.values(),
            *label_families(status, app, _doc)]


def owning_workers(status: Status) -> set[str]:
    """Worker ids (the part of a lease owner before "@") of the running partitions."""
    return {str(row["owner"]).split("@", 1)[0] for row in status.get("partitions", [])
            if row.get("owner") and row.get("phase") == "running"}


def _le(seconds: float) -> str:
    return floatToGoString(seconds)


class StatusCollector(Collector):
    """Reads the status once per scrape (cached briefly: several scrapers share one read)."""

    def __init__(self, app: str, source: StatusSource, cache_s: float = 0.5) -> None:
        self.app = app
        self.source = source
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._cached: tuple[float, Status | None] | None = None

    def read(self) -> Status | None:
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self.cache_s:
                return self._cached[1]
            try:
                st: Status | None = self.source()
            except Exception as exc:  # a scrape must answer even while Kafka or Redis is away
                logs.event(log, logging.WARNING, "metrics_status_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                st = None
            self._cached = (now, st)
            return st

    def collect(self) -> Iterator[Metric]:
        yield from families(self.read(), self.app)
