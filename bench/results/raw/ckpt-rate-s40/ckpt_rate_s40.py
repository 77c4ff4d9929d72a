"""streamlearn_eos_1w at 300,000 events under checkpoint settings (arms), rounds interleaved with io_baseline.

Run from the repository root with the shared services up (`streamlearn services up`):
    .venv/bin/python bench/results/raw/ckpt-rate-s40/ckpt_rate_s40.py ROUNDS 'ARMS_JSON' RAW_DIR
e.g. ARMS_JSON '{"min0": {"checkpoint_min_interval_s": 0}, "default": {}}'. The arms' order is reversed every other
round. Prints {arm: [[events/s, whole-system CPU s per 1k events], ...], "io": [...]}.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import common
from bench.plan import Plan
from bench.run import Bench, base_spec


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    arms: dict[str, dict[str, Any]] = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {
        "default": {}, "time5s": {"checkpoint_every_events": 0, "checkpoint_every_s": 5.0}}
    plan = Plan.full(["streamlearn_eos_1w", "io_baseline"])
    plan.events = 300_000
    svc = common.Services("127.0.0.1:9092", "redis://127.0.0.1:6379/0")
    b = Bench(plan, svc, Path(tempfile.mkdtemp(prefix="ckpt-rate-")), Path(sys.argv[3] if len(sys.argv) > 3 else "raw-ck"), 600)
    res: dict[str, list[tuple[int, Any]]] = {a: [] for a in [*arms, "io"]}
    b.throughput("io_baseline", base_spec(b, "io_baseline"), 99, plan.events, kind="throughput_warmup")
    for r in range(rounds):
        for a in (list(arms) if r % 2 == 0 else list(reversed(arms))):
            rec = b.throughput(f"eos_{a}", base_spec(b, "streamlearn_eos_1w", **arms[a]), r, plan.events)
            res[a].append((round(rec["throughput_eps"]), rec["resources"].get("cpu_s_per_1k_events")))
        rec = b.throughput("io_baseline", base_spec(b, "io_baseline"), r, plan.events)
        res["io"].append((round(rec["throughput_eps"]), rec["resources"].get("cpu_s_per_1k_events")))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
