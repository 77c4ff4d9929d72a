"""Where a serving run's slow requests fall: next to the learner's publishes, or anywhere.

`python -m bench.serving --series` keeps every answered request as
[due epoch ms, generator's own delay ms, service ms] and every publish
announcement as [partition, version, arrival epoch ms, served epoch ms].
The learner publishes its partitions' versions in bursts (one forked writer
takes every partition due, docs/configuration.md `processing.checkpoint_every_s`),
so the question is whether a request slower than the target overlaps a
burst more often than any request does. `share_of_slow_near` against
`share_of_all_near` answers it: equal shares mean the slow requests do not
care about publishes.

    python -m bench.serving_series bench/results/raw/serving-s36/*.json.gz

(Runs kept in the repository are gzipped: a series is 12,000 rows.)
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

#: Announcements closer than this belong to one burst (the four partitions of one writer).
BURST_GAP_MS = 500.0


def burst_starts(announcements: list[list[Any]], gap_ms: float = BURST_GAP_MS) -> list[float]:
    """Arrival of the first announcement of each burst, in order."""
    starts: list[float] = []
    last = None
    for t in sorted(float(a[2]) for a in announcements):
        if last is None or t - last >= gap_ms:
            starts.append(t)
        last = t
    return starts


def near_publishes(series: list[list[float]], announcements: list[list[Any]], threshold_ms: float = 20.0,
                   before_ms: float = 100.0, after_ms: float = 300.0) -> dict[str, Any]:
    """How many requests over `threshold_ms` (due → answer) overlap [burst - before, burst + after], against all requests."""
    starts = burst_starts(announcements)

    def near(due: float, total: float) -> bool:
        return any(s - before_ms <= due + total and due <= s + after_ms for s in starts)

    slow = near_slow = near_all = 0
    for due, late, service in series:
        total = late + service
        hit = near(due, total)
        near_all += hit
        if total > threshold_ms:
            slow += 1
            near_slow += hit
    n = len(series)
    return {"requests": n, "bursts": len(starts), "threshold_ms": threshold_ms, "window_ms": [-before_ms, after_ms],
            "slow": slow, "slow_near": near_slow,
            "share_of_slow_near": round(near_slow / slow, 3) if slow else None,
            "share_of_all_near": round(near_all / n, 3) if n else None}


def main(argv: list[str] | None = None) -> int:
    for path in argv if argv is not None else sys.argv[1:]:
        raw = Path(path).read_bytes()
        run = json.loads(gzip.decompress(raw) if path.endswith(".gz") else raw)
        if "series" not in run:
            print(f"{path}: no series (run bench.serving with --series)")
            continue
        res = near_publishes(run["series"], run.get("announcements", []))
        print(f"{Path(path).name}: publish every {run['spec']['publish_every_s']:g} s, p99 {run['latency_p99_ms']:.1f} ms, "
              f"{res['slow']} requests over {res['threshold_ms']:g} ms, {res['share_of_slow_near']} of them near a burst "
              f"against {res['share_of_all_near']} of all ({res['bursts']} bursts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
