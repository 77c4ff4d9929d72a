"""The demo's report: predictions read back, `summary.json` content, `prequential.png`.

The exactly-once check is the project's one checker
(`streamlearn.tools.checker.check_i1`): every input offset has exactly one
committed record (read_committed), a prediction or, for a malformed record,
a dead letter; none missing, none twice. The plot has two panels: the prequential metric the
workers report (what `streamlearn status` shows, sampled every second), and
a rolling accuracy computed from the committed predictions against the
labels, where the concept drift half way through is plain to see.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streamlearn.config import AppConfig
from streamlearn.tools.checker import I1Report, audit_app, read_app_topic

ROLLING_WINDOW = 500


@dataclass
class Predictions:
    i1: I1Report
    # per input partition: (offset, correct, event index) in offset order
    rows: dict[int, list[tuple[int, bool, int]]] = field(default_factory=dict)


def _index(event_id: str) -> int:
    try:
        return int(str(event_id).rsplit("-", 1)[-1])
    except ValueError:
        return -1


def read_predictions(cfg: AppConfig, labels: dict[str, bool]) -> Predictions:
    """Input, predictions and dead letters read back; the exactly-once check and the accuracy rows."""
    out = Predictions(audit_app(cfg))
    outputs = read_app_topic(cfg, cfg.kafka.output_topic)
    done: set[str] = set()
    for m in (m for msgs in outputs.values() for m in msgs):
        doc = orjson.loads(m.value() or b"{}")
        eid = str(doc.get("id"))
        if eid in labels and eid not in done:
            done.add(eid)
            out.rows.setdefault(int(doc["partition"]), []).append((int(doc["offset"]), doc.get("prediction") == labels[eid], _index(eid)))
    for rows in out.rows.values():
        rows.sort()
    return out


def _mean(xs: list[bool]) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def summarize(
    cfg: AppConfig, st: Any, labels: dict[str, bool], preds: Predictions | None, *, run_s: float, total_s: float,
    interrupted: bool, metrics_url: str | None, args: argparse.Namespace,
) -> dict[str, Any]:
    last = st.last or {}
    totals = last.get("totals", {})
    parts = []
    for r in last.get("partitions", []):
        row: dict[str, Any] = {
            "partition": r["partition"], "events": r["events"], "dlq": r["dlq"], "prequential": r["metric"]["value"],
            "metric": r["metric"]["name"], "checkpoint_offset": r["checkpoint_offset"], "committed_offset": r["committed_offset"],
            "checkpoint_bytes": r["checkpoint_bytes"], "recoveries": r["recoveries"], "epoch": r["epoch"],
            "published_version": r.get("published_version"), "served_version": r.get("served_version"),
        }
        rows = preds.rows.get(r["partition"], []) if preds else []
        if rows:
            before = [c for _o, c, i in rows if 0 <= i < st.drift_at]
            after = [c for _o, c, i in rows if i >= st.drift_at]
            row["accuracy_before_drift"] = _mean(before)
            row["accuracy_after_drift_last_1000"] = _mean(after[-1000:])
        parts.append(row)
    stream_s = _stream_seconds(st)
    events = int(totals.get("events", 0))
    valid = len(labels)
    i1 = preds.i1 if preds is not None else None
    exactly_once = {
        "checked": i1 is not None,
        "inputs": i1.inputs if i1 else None,
        "predictions_read": i1.predictions if i1 else None,
        "dead_letters": i1.dead_letters if i1 else None,
        "duplicates": len(i1.duplicated) if i1 else None,
        "missing": len(i1.missing) if i1 else None,
        "ok": bool(i1 is not None and i1.ok and i1.inputs > 0 and i1.predictions + i1.dead_letters == i1.inputs),
    }
    return {
        "app": cfg.app,
        "input_topic": cfg.kafka.input_topic,
        "output_topic": cfg.kafka.output_topic,
        "dlq_topic": cfg.kafka.dlq_topic,
        "guarantee": cfg.processing.guarantee,
        "model": "StandardScaler | LogisticRegression (one per partition)",
        "workers": args.workers,
        "records_produced": st.produced,
        "valid_events": valid,
        "malformed_records": st.total - valid,
        "drift_at_event": st.drift_at,
        "events_processed": events,
        "dlq": int(totals.get("dlq", 0)),
        "recoveries": int(totals.get("recoveries", 0)),
        "run_seconds": round(run_s, 1),
        "total_seconds": round(total_s, 1),
        "stream_seconds": round(stream_s, 1),
        "throughput_eps": round(events / stream_s, 1) if stream_s > 0 else 0.0,
        "peak_events_per_s": max((s.get("totals", {}).get("events_per_s", 0.0) for _t, s in st.samples), default=0.0),
        "produce_rate": args.rate,
        "exactly_once": exactly_once,
        "partitions": parts,
        "interrupted": interrupted,
        "producer_error": st.producer_error,
        "metrics_url": metrics_url,
    }


def published_versions(cfg: AppConfig, partitions: list[int]) -> dict[str, list[dict[str, Any]]]:
    """The versions kept per partition (newest last), with their lineage, as `streamlearn models list --json` shows them."""
    from connectors.redis_store import open_store
    from connectors.version_store import VersionStore

    versions = VersionStore(open_store(cfg.redis, cfg.app, cfg.kafka.input_topic))
    return {str(p): [m for v in versions.versions(p) if (m := versions.meta(p, v)) is not None] for p in partitions}


def _stream_seconds(st: Any) -> float:
    """From the first sample to the one where the last event was processed."""
    if not st.samples:
        return 0.0
    final_events = st.samples[-1][1].get("totals", {}).get("events", 0)
    first = st.samples[0][0]
    for t, s in st.samples:
        if s.get("totals", {}).get("events", 0) >= final_events:
            return max(t - first, 1.0)
    return max(st.samples[-1][0] - first, 1.0)


def _rolling(xs: list[bool], window: int) -> tuple[list[int], list[float]]:
    import numpy as np

    if len(xs) < window:
        return [], []
    a = np.asarray(xs, dtype=float)
    c = np.cumsum(np.insert(a, 0, 0.0))
    vals = (c[window:] - c[:-window]) / window
    return list(range(window, len(xs) + 1)), vals.tolist()


def plot(path: Path, st: Any, preds: Predictions | None, drift_at: int) -> Path | None:
    """Write the learning-curve PNG; None when there is nothing to draw yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[int, tuple[list[float], list[float]]] = {}
    metric_name = "metric"
    for t, s in st.samples:
        for r in s.get("partitions", []):
            v = r["metric"]["value"]
            if v is None or r["events"] == 0:
                continue
            metric_name = r["metric"]["name"] or metric_name
            xs, ys = series.setdefault(r["partition"], ([], []))
            xs.append(t)
            ys.append(v)
    if not series:
        return None
    panels = 2 if preds is not None and preds.rows else 1
    fig, axes = plt.subplots(panels, 1, figsize=(10, 3.6 * panels), squeeze=False)
    ax = axes[0][0]
    for p in sorted(series):
        ax.plot(*series[p], label=f"partition {p}", linewidth=1.6)
    if st.drift_produced_at is not None and st.produce_started_at is not None:
        ax.axvline(st.drift_produced_at - st.produce_started_at, color="grey", linestyle="--", linewidth=1)
        ax.annotate("concept drift produced", (st.drift_produced_at - st.produce_started_at, 0.52), fontsize=8, color="grey", xytext=(4, 0), textcoords="offset points")
    ax.set_title(f"Prequential {metric_name} per partition (cumulative, as `streamlearn status` reports it)")
    ax.set_xlabel("seconds since the stream started")
    ax.set_ylabel(metric_name.lower())
    ax.set_ylim(0.5, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    if panels == 2 and preds is not None:
        ax2 = axes[1][0]
        for p in sorted(preds.rows):
            rows = preds.rows[p]
            rx, ry = _rolling([c for _o, c, _i in rows], ROLLING_WINDOW)
            line = ax2.plot(rx, ry, label=f"partition {p}", linewidth=1.2)[0]
            drift_pos = next((k for k, (_o, _c, i) in enumerate(rows) if i >= drift_at), None)
            if drift_pos is not None:
                ax2.axvline(drift_pos, color=line.get_color(), linestyle=":", linewidth=1)
        ax2.set_title(f"Accuracy of the committed predictions, rolling over {ROLLING_WINDOW} events (dotted: drift)")
        ax2.set_xlabel("events in the partition")
        ax2.set_ylabel("accuracy")
        ax2.set_ylim(0.0, 1.0)
        ax2.grid(alpha=0.3)
        ax2.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
