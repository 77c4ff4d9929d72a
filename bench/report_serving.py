"""The serving section of docs/benchmarks.md, from summary.json["serving"] (the serving row of `bench.run`).

Rendered only when the summary has a serving row, so a summary from before
the row existed renders the same page as it did.
"""

from __future__ import annotations

from typing import Any

from bench.report_text import NA, NOT_MEASURED, fmt


def _pair(a: Any, b: Any, nd: int, unit: str) -> str:
    return f"{fmt(a, nd)} / {fmt(b, nd)} {unit}" if a is not None or b is not None else NA


def _verdict(sv: dict[str, Any]) -> str:
    p99, got, want = sv.get("latency_p99_ms"), sv.get("achieved_rps"), sv.get("target_rps")
    if p99 is None or got is None or want is None:
        return NOT_MEASURED
    # Met only if the whole offered load was answered (achieved within 1 % of offered) and its p99 is in target.
    return "met" if p99 <= sv.get("target_p99_ms", 0.0) and got >= 0.99 * want else "**not met**"


def _nice(sv: dict[str, Any]) -> str:
    """The row's serving.nice and serving.realtime_priority, when it ran with them (bench/serving_row.py)."""
    out = f", `serving.nice: {sv['serve_nice']}`" if sv.get("serve_nice") is not None else ""
    return out + (f", `serving.realtime_priority: {sv['serve_realtime']}`" if sv.get("serve_realtime") is not None else "")


def _method_since_warmup(sv: dict[str, Any]) -> list[str]:
    """What rows measured with a warm-up and a generator in its own session add (absent from older summaries)."""
    if sv.get("warmup_s") is None:
        return []
    nice, rt = sv.get("client_nice"), sv.get("client_realtime")
    at = [f"nice and autogroup {nice}"] if nice is not None else []
    at += [f"SCHED_RR {rt}"] if rt is not None else []
    return [f"The first {fmt(sv['warmup_s'])} s of the same load are offered and not counted (the learner's and both Rays'",
            "start-up work ends in them). The generator stands in for callers on other machines: it runs in a session of its",
            "own" + (f" at serve's priority ({', '.join(at)})" if at else "") +
            f", and what is left of its own delay (scheduled → actual send) is reported: p99 {fmt(sv.get('late_p99_ms'), 1)} ms."]


def serving_section(summary: dict[str, Any]) -> str | None:
    sv = summary.get("serving")
    if not sv:
        return None
    rows = ["## Serving: request-time predictions beside the learner", "",
            "`python -m bench.serving` (the serving row of `bench.run`): on the same machine, `streamlearn run` (one worker)",
            "learns a paced stream offered at half of `streamlearn_eos_1w`'s throughput, `streamlearn serve` (one replica)",
            "answers `POST /predict`, and an open-loop generator (its own process, a pool of connections) offers a fixed",
            "rate of one-event requests. Latency counts from each request's scheduled send time, so a slow server is not",
            "hidden by the generator waiting for it; service time counts from the actual send. Publish → served: from the",
            "publish announcement on the model channel to the replica swapping the version in (`GET /models` `since_ms`).",
            *_method_since_warmup(sv), ""]
    if "error" in sv:
        return "\n".join([*rows, f"{NOT_MEASURED}: {sv['error']}."])
    la, lb = sv.get("loadavg_at_start") or [], sv.get("loadavg_after_load") or []
    rows += ["| ingress | offered / achieved req/s | latency p50 / p95 / p99 | service p50 / p99 | publish → served p50 / p99 | "
             "learner offered ev/s | load average at start / after the load | raw file |",
             "|---|---:|---:|---:|---:|---:|---|---|",
             f"| `{sv.get('ingress') or NA}`{_nice(sv)} | {fmt(sv.get('offered_rps'))} / {fmt(sv.get('achieved_rps'), 1)} | "
             f"{fmt(sv.get('latency_p50_ms'), 1)} / {fmt(sv.get('latency_p95_ms'), 1)} / {fmt(sv.get('latency_p99_ms'), 1)} ms | "
             f"{_pair(sv.get('service_p50_ms'), sv.get('service_p99_ms'), 1, 'ms')} | "
             f"{_pair(sv.get('publish_to_served_p50_ms'), sv.get('publish_to_served_p99_ms'), 1, 'ms')} | "
             f"{fmt(sv.get('learner_offered_eps'))} | {', '.join(fmt(x, 2) for x in la)} / {', '.join(fmt(x, 2) for x in lb)} | "
             f"`{sv.get('raw_file') or NA}` |",
             "", "| target | measured | verdict |", "|---|---|---|",
             f"| `p99 ≤ {fmt(sv.get('target_p99_ms'))} ms at {fmt(sv.get('target_rps'))} req/s`, learner at half its throughput | "
             f"p99 {fmt(sv.get('latency_p99_ms'), 1)} ms, {fmt(sv.get('achieved_rps'), 1)} of {fmt(sv.get('offered_rps'))} req/s answered "
             f"| {_verdict(sv)} |"]
    return "\n".join(rows)
