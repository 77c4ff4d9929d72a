"""Where a slow turn of the run loop spent its time: a latency tail, attributed.

Why: a prediction waits for its partition's commit, and every commit waits for
the loop thread; one turn that takes 300 ms puts every event of that moment
into the p99. From outside (a read_committed consumer) a stall of the loop, a
slow commit, a fork for a checkpoint, a Redis round trip and a process that
simply did not get the CPU all look the same. The loop marks the end of each
phase; a turn longer than `SLOW_TURN_MS` is logged (INFO, `slow_loop_turn`)
with the milliseconds of each phase, the CPU the thread got meanwhile and,
on Linux, how long it sat runnable on a run queue (`/proc/thread-self/schedstat`),
so a tail can be told apart as our work (CPU close to wall time), a machine
that did not give us a core (run-queue wait), or waiting on something else
(the broker, Redis, the GIL: what remains).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from streamlearn import logs

log = logs.get("worker")

SLOW_TURN_MS = 150.0  # above the 100 ms commit interval plus a commit: a turn that delays predictions
_SCHEDSTAT = "/proc/thread-self/schedstat"  # ns on CPU, ns waiting on a run queue, timeslices


class RunQueueClock:
    """Nanoseconds the creating thread has waited, runnable, for a CPU (None where the kernel does not say).

    The file is opened once, by the thread it describes (`/proc/thread-self` resolves at open), and
    re-read with pread at the start of every turn: 1.6 µs a read against 18.5 µs to open, read and
    close it (this machine, `bench/results/raw/turn-timer-s29/`)."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open(_SCHEDSTAT, os.O_RDONLY)
        except OSError:
            self._fd = None

    def read(self) -> int | None:
        fields = self.fields()
        return fields[1] if fields is not None else None

    def fields(self) -> tuple[int, int] | None:
        """(ns on a CPU, ns waiting on a run queue), read now."""
        if self._fd is None:
            return None
        try:
            on_cpu, waited = os.pread(self._fd, 128, 0).split()[:2]
            return int(on_cpu), int(waited)
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class TurnTimer:
    """Phase marks of one loop turn; `end()` logs the turn if it was slow. Cheap: two clock reads a mark.

    Made by the thread it times (the run-queue clock is that thread's); `close()` when done."""

    def __init__(self, slow_ms: float = SLOW_TURN_MS, **context: Any) -> None:
        self._runq = RunQueueClock()
        self.slow_ms = slow_ms
        self.context = context
        self.slow_turns = 0
        self._phases: dict[str, float] = {}
        self._t0 = self._last = time.perf_counter()
        self._cpu0 = time.thread_time()
        self._runq0 = self._runq.read()

    def start(self) -> None:
        self._phases.clear()
        self._t0 = self._last = time.perf_counter()
        self._cpu0 = time.thread_time()
        self._runq0 = self._runq.read()

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self._phases[phase] = self._phases.get(phase, 0.0) + (now - self._last) * 1000.0
        self._last = now

    def end(self) -> float:
        """The turn's milliseconds; logged with its phases when above slow_ms."""
        total = (time.perf_counter() - self._t0) * 1000.0
        if total > self.slow_ms:
            self.slow_turns += 1
            cpu = (time.thread_time() - self._cpu0) * 1000.0
            runq = self._runq.read()
            waited = {} if runq is None or self._runq0 is None else {"runqueue_ms": round((runq - self._runq0) / 1e6, 1)}
            logs.event(log, logging.INFO, "slow_loop_turn", **self.context, ms=round(total, 1), cpu_ms=round(cpu, 1), **waited,
                       **{f"{k}_ms": round(v, 1) for k, v in self._phases.items()})
        return total

    def close(self) -> None:
        self._runq.close()
