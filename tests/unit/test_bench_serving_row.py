"""The serving row: planned and estimated by bench.run, rendered by bench.report only from data it holds."""

from __future__ import annotations

from typing import Any

from bench import report
from bench.plan import Plan, estimate_s
from tests.unit.test_bench_doc import data_values, doc_numbers, matches

BASE: dict[str, Any] = {"config": {}, "variants": {}, "machine": {"cpu_count": 2}, "systems": {}}


def _row(p99: float, achieved: float) -> dict[str, Any]:
    return {"offered_rps": 200.0, "achieved_rps": achieved, "requests": 12000, "ok": 12000, "errors": 0,
            "latency_p50_ms": 4.25, "latency_p95_ms": 9.5, "latency_p99_ms": p99, "service_p50_ms": 3.5, "service_p99_ms": 12.25,
            "publish_to_served_p50_ms": 1.5, "publish_to_served_p99_ms": 30.75, "learner_offered_eps": 11945.3,
            "loadavg_at_start": [1.5, 1.25, 1.0], "loadavg_after_load": [2.5, 1.75, 1.5], "raw_file": "serving-7.json",
            "ingress": "haproxy", "replicas": 1, "target_p99_ms": 20.0, "target_rps": 200.0}


def test_the_estimate_accounts_for_the_serving_row() -> None:
    plan = Plan.full(["io_baseline"])
    with_row = estimate_s(plan, {})
    plan.serving_s = 0.0
    without = estimate_s(plan, {})
    assert without["serving"] == 0 and with_row["serving"] > 60
    assert abs(with_row["total"] - without["total"] - with_row["serving"]) <= 1  # each figure rounded on its own


def test_no_serving_row_no_section() -> None:
    assert "## Serving" not in report.render(BASE, [])


def test_the_section_shows_only_data_and_the_verdict_follows_it() -> None:
    for p99, achieved, verdict in ((14.5, 199.6, "| met |"), (25.5, 199.6, "| **not met** |"), (14.5, 112.4, "| **not met** |")):
        summary = {**BASE, "serving": _row(p99, achieved)}
        page = report.render(summary, [])
        section = page[page.index("## Serving"):]
        target = next(line for line in section.splitlines() if line.startswith("| `p99 ≤ 20 ms at 200 req/s`"))
        assert target.endswith(verdict)
        assert f"p99 {p99:.1f} ms, {achieved:.1f} of 200 req/s answered" in target
        data = data_values([summary, report.derived(summary, [])], set())
        assert [shown for shown, v, k in doc_numbers(page) if not matches(v, k, data)] == []


def test_a_failed_row_says_so() -> None:
    page = report.render({**BASE, "serving": {"error": "bench.serving exited with 1"}}, [])
    assert "not measured: bench.serving exited with 1." in page


def test_the_row_names_the_priorities_serve_and_the_generator_ran_at() -> None:
    row = {**_row(3.5, 199.9), "serve_nice": -10, "serve_realtime": 1, "client_nice": -10, "client_realtime": 1,
           "warmup_s": 20.0, "late_p99_ms": 0.25}
    page = report.render({**BASE, "serving": row}, [])
    section = page[page.index("## Serving"):]
    assert "| `haproxy`, `serving.nice: -10`, `serving.realtime_priority: 1` |" in section
    assert "at serve's priority (nice and autogroup -10, SCHED_RR 1)" in section
    plain = report.render({**BASE, "serving": {**row, "serve_realtime": None, "client_realtime": None}}, [])
    assert "realtime_priority" not in plain and "SCHED_RR" not in plain
