"""Merge one phase of a partial `bench.run` into bench/results/summary.json, saying so.

A change that only one phase measures (say the recovery rows after a recovery
change) does not need the 37-minute full run again; but a page that mixes
runs must say which figures came from where. This copies the phase's fields of
each system from the partial run's summary and appends a `reruns` record (the
rows, the partial run's commit, command and load average, and why), which
`bench.report` prints in the provenance table. The raw files are the partial
run's own (run it with `--raw-dir bench/results/raw`).

    python -m bench.run --systems streamlearn_eos_1w,streamlearn_eos_2w --runs 0 --no-latency --no-variants \\
        --no-serving --raw-dir bench/results/raw --out /tmp/rerun.json
    python -m bench.merge_rerun /tmp/rerun.json --phase recovery --why "the recovery change in <commit>"
    python -m bench.report --write --plots
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SUMMARY = Path(__file__).resolve().parent / "results" / "summary.json"
#: The fields of `systems.<name>` each phase writes (bench/run.py).
PHASE_FIELDS = {"recovery": ("recovery_", "first_output_after_kill_")}


def merge(summary: dict[str, Any], partial: dict[str, Any], phase: str, why: str) -> list[str]:
    """Copy the phase's fields of every system the partial run measured; returns the rows merged."""
    prefixes = PHASE_FIELDS[phase]
    rows = []
    for name, fields in partial.get("systems", {}).items():
        picked = {k: v for k, v in fields.items() if k.startswith(prefixes)}
        if not picked:
            continue
        summary.setdefault("systems", {}).setdefault(name, {}).update(picked)
        rows.append(f"{name} {phase}")
    prov = partial.get("provenance", {})
    summary.setdefault("reruns", []).append({
        "rows": rows, "phase": phase, "why": why, "commit": prov.get("git", {}).get("commit"),
        "dirty": prov.get("git", {}).get("dirty"), "command": prov.get("command"),
        "loadavg_at_start": (partial.get("machine") or {}).get("loadavg_at_start"), "wall_s": partial.get("wall_s")})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("partial", type=Path, help="the partial run's summary (bench.run --out)")
    ap.add_argument("--phase", choices=sorted(PHASE_FIELDS), required=True)
    ap.add_argument("--why", required=True, help="why these rows were measured again (shown on the page)")
    ap.add_argument("--summary", type=Path, default=SUMMARY)
    args = ap.parse_args(argv)
    summary = json.loads(args.summary.read_text())
    rows = merge(summary, json.loads(args.partial.read_text()), args.phase, args.why)
    if not rows:
        raise SystemExit(f"{args.partial}: no system has {args.phase} fields; nothing merged")
    args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"merged {', '.join(rows)} into {args.summary}")


if __name__ == "__main__":
    main()
