"""Before/after of the worker loop on a real broker: `python -m bench.ab_worker OLD_CHECKOUT [--rounds N] [--json]`.

Runs `bench.profile_worker --no-profile` (one worker, 4 partitions, a pre-produced
backlog, no Ray) alternately from OLD_CHECKOUT (a `git worktree` of the earlier
commit: its `streamlearn/` is imported first) and from this checkout, against the
broker and Redis given (default: `streamlearn services up`'s). Alternating puts a
slow phase of the shared machine on both sides alike; the median and the range
of each side are reported. `--json` writes bench/results/raw/worker-ab-<time>.json; `--labels` runs label mode.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench import provenance

_LINE = re.compile(r"events/s \(first→last committed prediction\): (\d+) over [\d.]+s; process CPU ([\d.]+) s per 1k")
ROOT = Path(__file__).resolve().parent.parent


def one_run(checkout: Path, args: argparse.Namespace) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    cmd = [sys.executable, "-m", "bench.profile_worker", "--no-profile", "--bootstrap", args.bootstrap,
           "--redis-url", args.redis_url, "-n", str(args.n)] + (["--labels"] if args.labels else [])
    out = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True, timeout=600, check=True).stdout
    m = _LINE.search(out)
    if m is None:
        raise SystemExit(f"no result line from {checkout}: {out[-500:]}")
    return {"eps": float(m.group(1)), "cpu_s_per_1k": float(m.group(2))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old_checkout", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--labels", action="store_true", help="label mode (profile_worker --labels)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    old_dir = args.old_checkout.resolve()
    load0 = provenance.loadavg()
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for r in range(args.rounds):
        order = [("before", old_dir), ("after", ROOT)] if r % 2 == 0 else [("after", ROOT), ("before", old_dir)]
        for side, checkout in order:
            res = one_run(checkout, args)
            runs[side].append(res)
            print(f"round {r} {side:6s}: {res['eps']:7.0f} ev/s, process CPU {res['cpu_s_per_1k']:.4f} s per 1k events", flush=True)
    summary: dict[str, Any] = {}
    for side, rs in runs.items():
        eps = [x["eps"] for x in rs]
        cpu = [x["cpu_s_per_1k"] for x in rs]
        summary[side] = {"eps_median": statistics.median(eps), "eps_min": min(eps), "eps_max": max(eps),
                         "cpu_s_per_1k_median": statistics.median(cpu)}
        print(f"{side:6s}: median {statistics.median(eps):.0f} ev/s ({min(eps):.0f} to {max(eps):.0f}), "
              f"CPU {statistics.median(cpu):.4f} s per 1k events")
    # Paired by round (the two sides ran back to back): the figure a slow phase of the machine moves least.
    ratios = [a["eps"] / b["eps"] for a, b in zip(runs["after"], runs["before"], strict=True)]
    summary["after_over_before"] = {"per_round": [round(x, 3) for x in ratios], "median": statistics.median(ratios)}
    print(f"after / before, paired by round: {', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}")
    cpu_ratios = [a["cpu_s_per_1k"] / b["cpu_s_per_1k"] for a, b in zip(runs["after"], runs["before"], strict=True)]
    summary["cpu_after_over_before"] = {"per_round": [round(x, 3) for x in cpu_ratios], "median": statistics.median(cpu_ratios)}
    print(f"CPU per event after / before, paired: {', '.join(f'{x:.2f}' for x in cpu_ratios)}; "
          f"median {statistics.median(cpu_ratios):.2f}")
    load1 = provenance.loadavg()
    print(f"load average before {load0} after {load1}")
    if args.json:
        old_rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=old_dir, capture_output=True, text=True).stdout.strip()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        rec = {"label": "worker", "kind": "worker_ab", "run": stamp, "n": args.n, "rounds": args.rounds, "labels": args.labels,
               "git": provenance.code_version(), "old_git": old_rev, "command": " ".join(sys.argv),
               "loadavg_before": load0, "loadavg_after": load1, "summary": summary, "runs": runs}
        out = ROOT / "bench" / "results" / "raw" / f"worker-ab-{stamp}.json"
        out.write_bytes(orjson.dumps(rec, option=orjson.OPT_INDENT_2))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
