"""README.md's table, from the runs in this directory: `python -m bench.results.raw.serving-s36.table` does not work (a dash), so `PYTHONPATH=. python bench/results/raw/serving-s36/table.py`."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from bench.serving_series import near_publishes

HERE = Path(__file__).resolve().parent


def _wait(cpu: dict, needle: str) -> str:
    keys = [k for k in cpu["runq_wait_share"] if needle in k]
    return f"{sum(cpu['runq_wait_share'][k] for k in keys):.3f}" if keys else "-"


def main() -> None:
    print("| run | serve (and generator) | publish every | latency p50 / p99 ms | service p99 ms | generator's own delay p99 ms "
          "| replica / HAProxy run-queue wait s/s | learner worker CPU, cores | machine busy | slow (> 20 ms) near a publish / all near |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---|")
    for path in sorted(HERE.glob("*.json.gz")):
        d = json.loads(gzip.decompress(path.read_bytes()))
        spec, cpu = d["spec"], d["cpu"]
        prio = f"nice {spec['serve_nice']}" + (", SCHED_RR 1" if spec.get("serve_realtime") or "-rr" in path.name else "")
        if "slice" in path.name:
            prio += ", slice 100 µs"
        if "asyncio" in path.name:
            prio += "; asyncio generator"
        learner = sum(v for k, v in cpu["by_process"].items() if k.startswith("learner: ray::PartitionWorker"))
        near = near_publishes(d["series"], d.get("announcements", []))
        print(f"| `{path.name}` | {prio} | {spec['publish_every_s']:g} s | {d['latency_p50_ms']:.1f} / {d['latency_p99_ms']:.1f} | "
              f"{d['service_p99_ms']:.1f} | {d['late_p99_ms']:.1f} | {_wait(cpu, 'ServeReplica')} / {_wait(cpu, 'serve: haproxy')} | "
              f"{learner:.3f} | {cpu['machine_busy_share']:.3f} | {near['share_of_slow_near']} / {near['share_of_all_near']} |")


if __name__ == "__main__":
    main()
