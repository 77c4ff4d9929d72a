"""What a running streamlearn_eos_1w system spends with nothing to do: `python -m bench.idle_cpu --bootstrap B --redis-url R`.

Why idle: every CPU-second the system spends while no event arrives is
overhead that a loaded run pays too (the Coordinator's monitor and status,
Ray's daemons and idle workers, the standby, the worker's own empty turns),
but under load it hides in the noise of the 2-core machine. Idle, it is the
whole signal: the system is started exactly as `bench.run` starts it
(`bench.sysproc`, same spec), left `--settle` seconds to start, and every
process of its tree is sampled for `--window` seconds. `--json FILE` writes
the per-process CPU with the code's provenance.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench import common, provenance
from bench.resources import TreeSampler
from bench.run import SYSTEMS


def measure(bootstrap: str, redis_url: str, settle_s: float, window_s: float, system: str = "streamlearn_eos_1w",
            code: Path | None = None) -> dict[str, Any]:
    """`code`: another checkout whose streamlearn and bench.sysproc run the system (an A/B against older code)."""
    app = common.uid("idle")
    t_in, t_out = common.uid("idle-in"), common.uid("idle-out")
    common.create_topics(bootstrap, [t_in, t_out, t_out + "-dlq"])
    spec = {"guarantee": "exactly_once", "workers": 1, "model": "logreg", "categorical": False, "commit_interval_ms": 100,
            **SYSTEMS[system], "app": app, "bootstrap": bootstrap, "redis_url": redis_url, "input_topic": t_in, "output_topic": t_out}
    env = dict(os.environ, PYTHONPATH=str(code)) if code is not None else dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "bench.sysproc", orjson.dumps(spec).decode()], env=env, cwd=code)
    sampler = TreeSampler(proc.pid).start()
    try:
        time.sleep(settle_s)  # a measurement window, not synchronisation: the system runs on its own meanwhile
        t0 = time.time()
        time.sleep(window_s)
        t1 = time.time()
        sampler.stop()
    finally:
        proc.terminate()
        proc.wait(120)
        common.delete_topics(bootstrap, [t_in, t_out, t_out + "-dlq"])
    by = sampler.by_process_between(t0, t1)
    total = sum(v["cpu_s"] for v in by.values())
    return {"system": system, "settle_s": settle_s, "window_s": round(t1 - t0, 3), "cpu_s": round(total, 3),
            "core_share": round(total / (t1 - t0), 4), "by_process": by}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--settle", type=float, default=20.0, help="seconds from the start to the window (default 20)")
    ap.add_argument("--window", type=float, default=30.0, help="seconds sampled (default 30)")
    ap.add_argument("--label", default="", help="a name for this run in the JSON (e.g. old / new)")
    ap.add_argument("--code", type=Path, help="run the system from this checkout (e.g. a worktree of an older commit)")
    ap.add_argument("--json", type=Path, help="write the result here")
    args = ap.parse_args()
    load0 = provenance.loadavg()
    res = measure(args.bootstrap, args.redis_url, args.settle, args.window, code=args.code)
    system_code = provenance.code_version(args.code) if args.code is not None else provenance.code_version()
    out = {"label": args.label, **res, "system_code": system_code, "system_checkout": str(args.code or provenance.ROOT),
           "command": shlex.join(["python", "-m", "bench.idle_cpu", *sys.argv[1:]]), "machine": provenance.machine(),
           "loadavg_before": load0, "loadavg_after": provenance.loadavg()}
    print(f"{args.label or 'idle'}: {100 * res['core_share']:.1f} % of a core over {res['window_s']:.0f} s")
    for name, v in res["by_process"].items():
        print(f"  {v['cpu_s']:7.3f} CPU-s  {100 * v['cpu_s'] / res['window_s']:5.2f} %  x{v['processes']}  {name[:100]}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
