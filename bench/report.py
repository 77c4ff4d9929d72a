"""Markdown tables from bench/results/summary.json: `python -m bench.report` (pasted into docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

ORDER = ["model_limit", "io_baseline", "streamlearn_eos_1w", "streamlearn_eos_2w", "streamlearn_alo_1w",
         "quixstreams_eos", "quixstreams_alo", "bytewax"]


def fmt(v: Any, nd: int = 0) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return str(v)


def table(summary: dict[str, Any]) -> str:
    rows = ["| system | throughput ev/s (median) | runs | offered ev/s | p50 ms | p99 ms | recovery s | peak RSS MB/worker |",
            "|---|---:|---|---:|---:|---:|---:|---:|"]
    for name in ORDER:
        s = summary["systems"].get(name)
        if not s or s.get("throughput_eps") is None:
            rows.append(f"| {name} | {s.get('note', 'not run') if s else 'not run'} | | | | | | |")
            continue
        runs = ", ".join(f"{r:,.0f}" for r in s.get("runs", []))
        rows.append(f"| {name} | {fmt(s['throughput_eps'])} | {runs} | {fmt(s.get('offered_eps'))} | {fmt(s.get('latency_p50_ms'))} | "
                    f"{fmt(s.get('latency_p99_ms'))} | {fmt(s.get('recovery_s'), 1)} | {fmt(s.get('peak_rss_mb'))} |")
    return "\n".join(rows)


if __name__ == "__main__":
    summ = orjson.loads((Path(__file__).resolve().parent / "results" / "summary.json").read_bytes())
    print(table(summ))
    print()
    print(orjson.dumps(summ.get("variants", {}), option=orjson.OPT_INDENT_2).decode())
