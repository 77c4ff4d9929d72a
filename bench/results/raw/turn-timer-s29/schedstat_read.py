"""What one read of this thread's run-queue wait costs: the old open/read/close against the kept file's pread.

`python bench/results/raw/turn-timer-s29/schedstat_read.py` (the loop reads it at the start of every turn,
`streamlearn.runtime.loop_timing`).
"""

from __future__ import annotations

import os
import timeit

PATH = "/proc/thread-self/schedstat"
N = 20_000


def open_read_close() -> int:
    with open(PATH, "rb") as fh:
        return int(fh.read().split()[1])


def main() -> None:
    fd = os.open(PATH, os.O_RDONLY)
    try:
        for name, fn in (("open_read_close", open_read_close), ("pread", lambda: int(os.pread(fd, 128, 0).split()[1]))):
            best = min(timeit.repeat(fn, number=N, repeat=5)) / N
            print(f"{name}: {best * 1e6:.2f} us per read (best of 5 x {N})")
    finally:
        os.close(fd)


if __name__ == "__main__":
    main()
