"""Injected crash points for the chaos tests; inert unless STREAMLEARN_FAULTS is set.

Call sites are per batch or per protocol step, never per event, and guard on
the module constant `ENABLED`, so production pays one global lookup:

    if faults.ENABLED:
        faults.point("after_produce_before_commit")

Spec: `STREAMLEARN_FAULTS="after_produce_before_commit=0.05,during_replay=0.02"`
(probability per hit of SIGKILL-ing the current process) with an optional
`seed=N` entry. Points: take_ownership, during_replay,
after_produce_before_commit, after_commit_before_checkpoint, mid_checkpoint.
"""

from __future__ import annotations

import os
import random
import signal

POINTS = (
    "take_ownership",
    "during_replay",
    "after_produce_before_commit",
    "after_commit_before_checkpoint",
    "mid_checkpoint",
)


def _parse(spec: str) -> tuple[dict[str, float], int | None]:
    probs: dict[str, float] = {}
    seed: int | None = None
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, val = item.partition("=")
        if name == "seed":
            seed = int(val)
            continue
        if name not in POINTS:
            raise ValueError(f"STREAMLEARN_FAULTS: unknown crash point '{name}' (known: {', '.join(POINTS)})")
        probs[name] = float(val or 1.0)
    return probs, seed


_SPEC = os.environ.get("STREAMLEARN_FAULTS", "")
_PROBS, _SEED = _parse(_SPEC)
ENABLED = bool(_PROBS)
_rng = random.Random((_SEED or 0) ^ os.getpid())


def point(name: str) -> None:
    """SIGKILL this process with the configured probability (the crash a test wants)."""
    p = _PROBS.get(name)
    if p and _rng.random() < p:
        os.kill(os.getpid(), signal.SIGKILL)
