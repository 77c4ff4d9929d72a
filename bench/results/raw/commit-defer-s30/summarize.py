"""Print the A/B tables of this folder from its raw files: `python bench/results/raw/commit-defer-s30/summarize.py`.

Each arm's run is one `bench.run` raw file (latency: `streamlearn_eos_1w-latency-0.json`,
throughput: `streamlearn_eos_1w-throughput-0.json`) under `<set>/<arm>-<round>/`.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def _runs(folder: Path, kind: str) -> list[tuple[str, int, dict[str, Any]]]:
    out = []
    for d in sorted(folder.glob("*-*")):
        if not d.is_dir():
            continue
        arm, rnd = d.name.rsplit("-", 1)
        f = d / f"streamlearn_eos_1w-{kind}-0.json"
        if f.exists():
            out.append((arm, int(rnd), json.loads(f.read_text())))
    return sorted(out, key=lambda r: (r[1], r[0] != "old"))


def latency(folder: Path) -> None:
    print(f"\n## {folder.name} (latency)\n")
    print("| round | arm | offered ev/s | answered in window / sent | p50 ms | p95 ms | p99 ms | CPU-s per 1k | load average before |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    by_arm: dict[str, list[tuple[float, float]]] = {}
    for arm, rnd, rec in _runs(folder, "latency"):
        r = rec["rates"][0]
        print(f"| {rnd} | {arm} | {r['offered_eps']:,.0f} | {r['answered_in_window']:,} / {r['sent']:,} | {r['latency_p50_ms']:.0f} | "
              f"{r['latency_p95_ms']:.0f} | {r['latency_p99_ms']:.0f} | {r['cpu_s_per_1k_events']:.4f} | {rec['loadavg_before']} |")
        by_arm.setdefault(arm, []).append((r["latency_p50_ms"], r["latency_p99_ms"]))
    for arm, v in sorted(by_arm.items()):
        print(f"\n{arm}: median p50 {statistics.median(a for a, _ in v):.0f} ms, median p99 {statistics.median(b for _, b in v):.0f} ms")


def throughput(folder: Path) -> None:
    print(f"\n## {folder.name} (throughput)\n")
    print("| round | arm | ev/s | CPU-s per 1k events | owner's share of the window's CPU | load average before |")
    print("|---:|---|---:|---:|---:|---|")
    by_arm: dict[str, list[tuple[float, float]]] = {}
    for arm, rnd, rec in _runs(folder, "throughput"):
        res = rec["resources"]
        win = res.get("by_process_window", {})
        owner = sum(v["cpu_s"] for k, v in win.items() if k.endswith("-w0:PartitionWorker.__init__"))
        share = owner / res["cpu_s_window"] if res.get("cpu_s_window") else float("nan")
        print(f"| {rnd} | {arm} | {rec['throughput_eps']:,.0f} | {res['cpu_s_per_1k_events']:.4f} | {share:.2f} | {rec['loadavg_before']} |")
        by_arm.setdefault(arm, []).append((rec["throughput_eps"], res["cpu_s_per_1k_events"]))
    for arm, v in sorted(by_arm.items()):
        print(f"\n{arm}: median {statistics.median(a for a, _ in v):,.0f} ev/s, median CPU-s per 1k {statistics.median(b for _, b in v):.4f}")


def main() -> None:
    sets = sys.argv[1:] or sorted(p.name for p in HERE.iterdir() if p.is_dir())
    for name in sets:
        folder = HERE / name
        if any(folder.glob("*/streamlearn_eos_1w-latency-0.json")):
            latency(folder)
        if any(folder.glob("*/streamlearn_eos_1w-throughput-0.json")):
            throughput(folder)


if __name__ == "__main__":
    main()
