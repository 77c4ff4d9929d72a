"""The run loop's thread in a py-spy profile: where its wall time went, inclusive, by function.

`python bench/results/raw/commit-defer-s30/loop_profile.py FILE.raw.gz [N]`. FILE is
`py-spy record --format raw --threads --idle` of the owning PartitionWorker (gzip'd):
with `--idle` a sample is taken whether the thread runs or waits, so the shares are
of wall time, and waits (a commit's Future.result, a poll) show as what they are.
"""

from __future__ import annotations

import collections
import gzip
import sys


def main() -> None:
    path, top = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30
    with gzip.open(path, "rt") as fh:
        lines = [ln.rsplit(" ", 1) for ln in fh if ln.strip()]
    loop_thread = collections.Counter(st.split(";", 1)[0] for st, _ in lines if "Run.loop" in st).most_common(1)[0][0]
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for stack, n in lines:
        frames = stack.split(";")
        if frames[0] != loop_thread:
            continue
        total += int(n)
        for name in {f.split(" (")[0] for f in frames[1:]}:
            incl[name] += int(n)
    print(f"{path}: loop thread {loop_thread!r}, {total} samples (wall time, --idle)")
    for name, count in incl.most_common(top):
        print(f"{count:7d} {100 * count / total:5.1f} %  {name}")


if __name__ == "__main__":
    main()
