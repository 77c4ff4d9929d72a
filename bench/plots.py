"""PNG plots of a benchmark summary (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def render(summary: dict[str, Any], raw: list[dict[str, Any]], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    systems = {k: v for k, v in summary["systems"].items() if v.get("throughput_eps")}
    if not systems:
        return files

    names = list(systems)
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(names, [systems[n]["throughput_eps"] for n in names], color="#4c72b0")
    for i, n in enumerate(names):
        runs = systems[n].get("runs") or []
        ax.scatter([i] * len(runs), runs, color="black", s=10, zorder=3)
    ax.set_ylabel("events/s (median; dots = runs)")
    ax.set_title(f"Throughput, {summary['config']['events']} events, {summary['config']['partitions']} partitions")
    ax.tick_params(axis="x", rotation=30)
    files.append(_save(fig, out / "bench_throughput.png"))

    grid = {n: v["latency"] for n, v in summary["systems"].items() if v.get("latency")}
    if grid:
        fig, ax = plt.subplots(figsize=(9, 4))
        for n, g in grid.items():
            pts = [(float(r), d["p99"]["median"], d["p99"]["min"], d["p99"]["max"]) for r, d in g.items() if d["p99"]["median"] is not None]
            if pts:
                xs, ys = [p[0] for p in pts], [p[1] for p in pts]
                err = [[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]]
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=n)
        ax.axhline(250, color="red", linestyle="--", linewidth=1, label="p99 target 250 ms")
        ax.set_xlabel("offered events/s (the same for every system)")
        ax.set_ylabel("p99 ms (median of runs; bars: min–max)")
        ax.set_yscale("log")
        ax.set_title("End-to-end latency, produce → visible to read_committed")
        ax.legend(fontsize=7)
        files.append(_save(fig, out / "bench_latency.png"))

    ci = summary.get("variants", {}).get("commit_interval_ms")
    if ci:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ks = sorted(ci, key=int)
        ax.plot([int(k) for k in ks], [ci[k] or 0 for k in ks], marker="o")
        ax.set_xscale("log")
        ax.set_xlabel("processing.commit_interval_ms")
        ax.set_ylabel("events/s")
        ax.set_title("streamlearn_eos_1w vs commit interval")
        files.append(_save(fig, out / "bench_commit_interval.png"))

    # One line per kill: the new files hold a timeline per kill, the old ones one per file.
    rec = [(f"{r['label']} kill {i}", k["timeline"]) for r in raw if r.get("kind") == "recovery"
           for i, k in enumerate(r.get("kills") or []) if k.get("timeline")]
    rec += [(r["label"], r["timeline"]) for r in raw if r.get("kind") == "recovery" and r.get("timeline")]
    if rec:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for label, timeline in rec:
            got = {round(t * 10): c for t, c in timeline}
            lo, hi = min(got), max(got)
            xs = [b / 10.0 for b in range(lo, hi + 1)]
            ax.step(xs, [got.get(b, 0) * 40 for b in range(lo, hi + 1)], where="post", label=label, linewidth=0.8)
        ax.axvline(0, color="red", linestyle="--", linewidth=1, label="SIGKILL")
        ax.set_xlabel("seconds since SIGKILL of a worker")
        ax.set_ylabel("predictions/s (100 ms buckets, from a 1-in-4 sample)")
        ax.set_title("Recovery: committed predictions around a worker kill")
        ax.legend(fontsize=6)
        files.append(_save(fig, out / "bench_recovery.png"))
    return files


if __name__ == "__main__":
    import orjson

    root = Path(__file__).resolve().parent.parent
    res = root / "bench" / "results"
    summ = orjson.loads((res / "summary.json").read_bytes())
    raws = [orjson.loads(f.read_bytes()) for f in sorted((res / "raw").glob("*.json"))]
    for f in render(summ, raws, root / "docs" / "img"):
        print(f)
