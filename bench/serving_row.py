"""The serving row of `bench.run`: bench/serving.py against the run's broker and Redis, into summary.json["serving"].

bench/serving.py runs as its own process (it starts a learner and
`streamlearn serve`, each with its own Ray), so the orchestrator's threads do
not share a GIL with the load generator. The learner is offered half of the
single-worker throughput this run just measured (the issue's "learner at half
its throughput on the same machine"), or half of the committed summary's when
the throughput phase did not run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from bench.measure import Bench, log
from bench.plan import Plan

ROOT = Path(__file__).resolve().parent.parent
#: The figures summary.json keeps (the raw file has the rest: CPU per process, error kinds, machine).
KEEP = ("offered_rps", "achieved_rps", "requests", "ok", "errors", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
        "service_p50_ms", "service_p95_ms", "service_p99_ms", "publish_to_served_p50_ms", "publish_to_served_p99_ms",
        "publishes_seen", "delays", "learner_offered_eps", "learner_sent", "connections", "client_cpu_share",
        "loadavg_at_start", "loadavg_after_load", "late_p99_ms", "warmup_s", "client_nice", "client_realtime")
TARGET_P99_MS, TARGET_RPS = 20.0, 200.0
#: serving.nice of the row's `streamlearn serve` where the bench may raise a priority (root or
#: CAP_SYS_NICE): request-time serving ahead of the learner and the broker, as docs/serving-latency.md
#: recommends for a shared machine. Recorded in the row; None (inherited) elsewhere.
SERVE_NICE = -10
#: serving.realtime_priority of the row's `serve` under the same condition: SCHED_RR, so a request preempts the
#: learner and the broker at once instead of waiting for its share (docs/serving-latency.md, session 36).
SERVE_REALTIME = 1


def serving_phase(b: Bench, plan: Plan, summary: dict[str, Any]) -> None:
    eos = summary.get("systems", {}).get("streamlearn_eos_1w", {}).get("throughput_eps")
    result = b.tmp / "serving-result.json"
    cmd = [sys.executable, "-m", "bench.serving", "--bootstrap", b.svc.bootstrap, "--redis-url", b.svc.redis_url,
           "--rate", str(plan.serving_rate), "--duration", str(plan.serving_s), "--raw-dir", str(b.raw_dir),
           "--result-file", str(result), "--warmup", str(plan.serving_warmup_s)]
    if eos:
        cmd += ["--learner-rate", str(eos / 2)]
    serve_nice = SERVE_NICE if os.geteuid() == 0 else None
    if serve_nice is not None:
        cmd += ["--serve-nice", str(serve_nice), "--serve-realtime", str(SERVE_REALTIME)]
    log(f"serving: {plan.serving_rate:.0f} req/s for {plan.serving_s:.0f} s beside a learner at "
        f"{'half of ' + format(eos, ',.0f') + ' ev/s' if eos else 'half its committed throughput'}")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=plan.serving_s + 900)
    if proc.returncode != 0 or not result.exists():
        log(f"serving row failed (exit {proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}")
        summary["serving"] = {"error": f"bench.serving exited with {proc.returncode}"}
        return
    out = orjson.loads(result.read_bytes())
    b.raw.append(out)
    spec = out.get("spec", {})
    summary["serving"] = {**{k: out.get(k) for k in KEEP}, "raw_file": out.get("_file"), "ingress": spec.get("ingress"),
                          "replicas": spec.get("replicas"), "serve_nice": spec.get("serve_nice"),
                          "serve_realtime": spec.get("serve_realtime"), "cpu_by_group": (out.get("cpu") or {}).get("by_group"),
                          "target_p99_ms": TARGET_P99_MS, "target_rps": TARGET_RPS}
    log(proc.stdout.strip().splitlines()[-2] if proc.stdout.strip() else "serving: no output")
