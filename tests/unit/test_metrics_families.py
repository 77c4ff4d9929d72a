"""The status dict → Prometheus text mapping, without services."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from streamlearn.eos.task import COMMIT_BUCKETS_MS
from streamlearn.ops import metrics


def _row(p: int, **over: object) -> dict[str, object]:
    hist = [0] * (len(COMMIT_BUCKETS_MS) + 1)
    hist[2] = 3  # three commits in (2 ms, 5 ms]
    hist[-1] = 1  # one above the largest bucket
    row: dict[str, object] = {
        "partition": p, "owner": "w0", "phase": "running", "epoch": 4, "committed_offset": 120,
        "checkpoint_offset": 100, "checkpoint_age_s": 1.5, "checkpoint_bytes": 2048, "events": 120,
        "dlq": 2, "lag": 7, "events_per_s": 55.5, "metric": {"name": "Accuracy", "value": 0.9},
        "commits": 4, "commit_sum_ms": 6012.0, "commit_hist": hist, "recoveries": 1, "checkpoints_refused": 0, "checkpoint_child_timeouts": 0,
        "budget_commits": 9,
        "published_version": 7, "served_version": 6, "served_mode": "pinned", "publish_refused": {"metric_drop": 2},
    }
    row.update(over)
    return row


def _scrape(status: dict[str, object] | None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(metrics.StatusCollector("shop", lambda: status if status is not None else _raise()))
    out = {}
    for fam in text_string_to_metric_families(generate_latest(reg).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _raise() -> dict[str, object]:
    raise ConnectionError("kafka away")


def test_per_partition_series_carry_app_and_partition() -> None:
    got = _scrape({"partitions": [_row(0), _row(1, events=5, metric={"name": "Accuracy", "value": None})]})
    lab0 = (("app", "shop"), ("partition", "0"))
    assert got[("streamlearn_events_total", lab0)] == 120
    assert got[("streamlearn_events_total", (("app", "shop"), ("partition", "1")))] == 5
    assert got[("streamlearn_lag_events", lab0)] == 7
    assert got[("streamlearn_dlq_total", lab0)] == 2
    assert got[("streamlearn_recoveries_total", lab0)] == 1
    assert got[("streamlearn_budget_commits_total", lab0)] == 9
    assert got[("streamlearn_checkpoint_size_bytes", lab0)] == 2048
    assert got[("streamlearn_epoch", lab0)] == 4
    assert got[("streamlearn_partition_running", lab0)] == 1
    assert got[("streamlearn_prequential_metric", (("app", "shop"), ("metric", "Accuracy"), ("partition", "0")))] == 0.9
    # No value yet: no sample rather than a fake 0.
    assert not any(k[0] == "streamlearn_prequential_metric" and ("partition", "1") in k[1] for k in got)
    assert got[("streamlearn_status_up", (("app", "shop"),))] == 1


def test_commit_histogram_is_cumulative_in_seconds() -> None:
    got = _scrape({"partitions": [_row(0)]})
    lab = (("app", "shop"), ("partition", "0"))
    bucket = {dict(k[1])["le"]: v for k, v in got.items() if k[0] == "streamlearn_commit_latency_seconds_bucket"}
    assert bucket["0.002"] == 0
    assert bucket["0.005"] == 3
    assert bucket["5.0"] == 3
    assert bucket["+Inf"] == 4
    assert got[("streamlearn_commit_latency_seconds_count", lab)] == 4
    assert abs(got[("streamlearn_commit_latency_seconds_sum", lab)] - 6.012) < 1e-9


def test_failed_status_read_answers_with_status_up_zero() -> None:
    got = _scrape(None)
    assert got == {("streamlearn_status_up", (("app", "shop"),)): 0.0}


LABELS = {"joined": 90, "expired": 7, "evicted": 1, "late": 2, "duplicate": 3, "orphan": 1, "pending": 40,
          "oldest_pending_age_s": 12.5, "delay_hist": [5, 80, 5] + [0] * 10, "delay_sum_s": 150.0, "lag": 0}


def test_every_documented_name_is_exported() -> None:
    got = _scrape({"partitions": [_row(0, labels=LABELS)]})
    names = {k[0] for k in got}
    for doc in metrics.METRICS:
        base = metrics.full_name(doc)
        assert base in names or f"{base}_count" in names, base


def test_workers_counts_distinct_owners_of_running_partitions() -> None:
    got = _scrape({"partitions": [_row(0, owner="w0@host:11"), _row(1, owner="w0@host:11"), _row(2, owner="w3@other:12"),
                                  _row(3, owner=None, phase="unowned")]})
    assert got[("streamlearn_workers", (("app", "shop"),))] == 2


def test_delayed_label_series_in_label_mode_only() -> None:
    got = _scrape({"partitions": [_row(0, labels=LABELS), _row(1)]})
    assert got[("streamlearn_labels_total", (("app", "shop"), ("outcome", "duplicate"), ("partition", "0")))] == 3
    assert got[("streamlearn_labels_pending", (("app", "shop"), ("partition", "0")))] == 40
    assert got[("streamlearn_label_delay_seconds_bucket", (("app", "shop"), ("le", "1.0"), ("partition", "0")))] == 85
    assert got[("streamlearn_label_delay_seconds_count", (("app", "shop"), ("partition", "0")))] == 90
    assert not any(name.startswith("streamlearn_label") and dict(lb).get("partition") == "1" for name, lb in got)
    assert not any(name.startswith("streamlearn_label") for name, _ in _scrape({"partitions": [_row(0)]}))
