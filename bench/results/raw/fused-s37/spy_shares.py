"""Shares of a `py-spy record -f raw` file: `python spy_shares.py FILE KEY...` (how py-spy-loop.txt was made).

First table: each sample counted under the first KEY its stack contains. Second: the samples inside
`model/step.py`, by the step's line and the two frames it called.
"""

from __future__ import annotations

import collections
import sys


def stacks(path: str) -> list[tuple[list[str], int]]:
    out = []
    with open(path) as fh:
        for line in fh:
            line = line.rstrip()
            if line:
                stack, n = line.rsplit(" ", 1)
                out.append((stack.split(";"), int(n)))
    return out


def main() -> None:
    path, keys = sys.argv[1], sys.argv[2:]
    samples = stacks(path)
    total = sum(n for _, n in samples)
    by_key: collections.Counter[str] = collections.Counter()
    in_step: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for frames, n in samples:
        joined = ";".join(frames)
        by_key[next((k for k in keys if k in joined), "<other>")] += n
        idx = [i for i, f in enumerate(frames) if "model/step.py" in f]
        if idx:
            i = idx[-1]
            called = [f.split(" (")[0] for f in frames[i + 1:i + 3]] + ["", ""]
            in_step[(frames[i].split("step.py:")[1].rstrip(")"), called[0] or "<self>", called[1])] += n
    print("total samples", total)
    for key, n in by_key.most_common():
        print(f"{n / total * 100:6.2f}% {key}")
    step_total = sum(in_step.values())
    print(f"\nsamples in model/step.py: {step_total}")
    for (line, first, second), n in in_step.most_common(16):
        print(f"{n / step_total * 100:6.2f}% line {line:>4} {first} > {second}")


if __name__ == "__main__":
    main()
