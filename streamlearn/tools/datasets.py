"""Synthetic event streams for examples, tests, the demo and benchmarks.

Generated, not downloaded: a learnable binary rule over numeric features
with label noise, optional categorical features, and optional concept drift
(the rule flips sign part way through), all from a seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

CATEGORIES = ("a", "b", "c", "d")


def synthetic_events(
    n: int,
    *,
    seed: int = 7,
    n_features: int = 10,
    n_categorical: int = 0,
    noise: float = 0.05,
    drift_at: int | None = None,
    start_ts: int = 1_764_000_000_000,
    id_prefix: str = "e-",
) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for i in range(n):
        x: dict[str, float | str] = {f"x{j}": round(rng.gauss(0.0, 1.0), 4) for j in range(n_features)}
        num = [float(x[f"x{j}"]) if j < n_features else 0.0 for j in range(3)]
        score = num[0] + 0.5 * num[1] - 0.3 * num[2]
        for j in range(n_categorical):
            c = rng.choice(CATEGORIES)
            x[f"c{j}"] = c
            score += 0.4 if c in ("a", "b") else -0.4
        if drift_at is not None and i >= drift_at:
            score = -score
        label = score > 0
        if rng.random() < noise:
            label = not label
        yield {"id": f"{id_prefix}{i}", "features": x, "label": label, "ts": start_ts + i}


def write_jsonl(path: Path, events: Iterator[dict[str, Any]]) -> int:
    n = 0
    with path.open("wb") as fh:
        for ev in events:
            fh.write(orjson.dumps(ev) + b"\n")
            n += 1
    return n
