"""Injected crash points for the chaos tests; inert unless STREAMLEARN_FAULTS is set.

Call sites are per batch or per protocol step, never per event, and guard on
the module constant `ENABLED`, so production pays one global lookup:

    if faults.ENABLED:
        faults.point("after_produce_before_commit")

Spec: `STREAMLEARN_FAULTS="after_produce_before_commit=0.05,during_replay=0.02"`
(probability per hit of SIGKILL-ing the current process) with optional
entries:

- `seed=N`: seeds the per-process random draw (mixed with the pid).
- `mode=stop`: SIGSTOP instead of SIGKILL. The process freezes exactly at the
  point and the test decides when it wakes (SIGCONT): how a chaos test makes
  a zombie wake in the middle of a step, e.g. between a recovery's epoch
  check and its re-take (`recover_before_take`).
- `mode=hang`: only the calling thread blocks, for good; the process lives on
  and answers pings. A run loop stuck in a client call that never returns:
  what `processing.stuck_loop_s` is there for (the Coordinator restarts it).
- `limit=N` and `dir=/path`: at most N crashes per point, counted across every
  process (and every restart) through marker files `dir/<point>.<k>` created
  with O_EXCL just before the kill, so a test can say "crash exactly once at
  point X" and afterwards count how many crashes really happened
  (`crashes(dir)`). `limit` without `dir` is refused: a per-process counter
  would reset with every restart and crash forever.

Points: take_ownership, during_replay, after_produce_before_commit,
after_commit_before_checkpoint, mid_checkpoint, recover_before_take (a
fenced producer's recovery, after it found the Redis epoch still its own and
before it re-takes the partition). mid_checkpoint fires in the
process that writes the checkpoint: the forked checkpoint child by default
(checkpoint.background), the worker itself when checkpoints are inline.
"""

from __future__ import annotations

import os
import random
import signal
import threading
from pathlib import Path

POINTS = (
    "take_ownership",
    "during_replay",
    "after_produce_before_commit",
    "after_commit_before_checkpoint",
    "mid_checkpoint",
    "recover_before_take",
)


_SIGNALS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}
_HANG = "hang"  # not a signal: the thread that reaches the point waits forever


def _parse(spec: str) -> tuple[dict[str, float], int | None, int | None, str | None, signal.Signals | str]:
    probs: dict[str, float] = {}
    seed: int | None = None
    limit: int | None = None
    directory: str | None = None
    sig: signal.Signals | str = signal.SIGKILL
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, val = item.partition("=")
        if name == "mode":
            if val not in (*_SIGNALS, _HANG):
                raise ValueError(f"STREAMLEARN_FAULTS: mode={val} is not one of {', '.join((*_SIGNALS, _HANG))}")
            sig = _SIGNALS.get(val, val)
            continue
        if name == "seed":
            seed = int(val)
            continue
        if name == "limit":
            limit = int(val)
            continue
        if name == "dir":
            directory = val
            continue
        if name not in POINTS:
            raise ValueError(f"STREAMLEARN_FAULTS: unknown crash point '{name}' (known: {', '.join(POINTS)})")
        probs[name] = float(val or 1.0)
    if limit is not None and directory is None:
        raise ValueError("STREAMLEARN_FAULTS: limit=N needs dir=/path (the crash counter must survive the crashes)")
    return probs, seed, limit, directory, sig


_SPEC = os.environ.get("STREAMLEARN_FAULTS", "")
_PROBS, _SEED, _LIMIT, _DIR, _SIGNAL = _parse(_SPEC)
ENABLED = bool(_PROBS)
_rng = random.Random((_SEED or 0) ^ os.getpid())


def _reseed_in_child() -> None:
    # A forked checkpoint child would otherwise inherit the parent's generator state, and
    # every child of a parent would make the same draw: a point at p=0.2 would fire in all
    # of them or in none.
    _rng.seed((_SEED or 0) ^ os.getpid())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_in_child)


def _claim(name: str) -> bool:
    """Take one of the point's `limit` crash slots; False when all are used."""
    if _LIMIT is None or _DIR is None:
        return True
    os.makedirs(_DIR, exist_ok=True)
    for k in range(_LIMIT):
        try:
            fd = os.open(os.path.join(_DIR, f"{name}.{k}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def point(name: str) -> None:
    """SIGKILL (or SIGSTOP, `mode=stop`; or block this thread, `mode=hang`) with the configured probability."""
    p = _PROBS.get(name)
    if p and _rng.random() < p and _claim(name):
        if not isinstance(_SIGNAL, signal.Signals):  # mode=hang
            threading.Event().wait()  # never set: this thread is stuck here until the process dies
            return
        # To this thread, not the process: a process-directed SIGSTOP may be taken by another
        # thread first, and the caller ran on (seen under load: a recovery froze only after its
        # re-take, not before it). Either signal still stops or kills the whole process.
        signal.pthread_kill(threading.get_ident(), _SIGNAL)


def crashes(directory: str | Path) -> dict[str, int]:
    """How many crashes each point caused, from the marker files of a `dir=` spec."""
    out = dict.fromkeys(POINTS, 0)
    d = Path(directory)
    if d.is_dir():
        for f in d.iterdir():
            name = f.name.rsplit(".", 1)[0]
            if name in out:
                out[name] += 1
    return out
