"""Redis keys of the autoscaler's decisions: a bounded list of the last ones and a count per direction.

Why in Redis: an operator asks "why does my app have 3 workers?" with
`streamlearn status`, which needs Kafka and Redis only, never a Ray
connection; and the counts must outlive a Coordinator restart, as a
Prometheus counter should. Kept apart from `rescale_store` (one job each):
a decision is what the Coordinator chose, the rescale is how it was done.

A decision is `up` or `down` (from → to workers) or `held` (the lag asked for
a change, the cooldown held it back). The list is capped at `KEPT`, newest
first.
"""

from __future__ import annotations

import json
import time
from typing import Any

from connectors.redis_store import CheckpointStore

KEPT = 50  # decisions kept in the list (newest first); the counts cover all of them
DIRECTIONS = ("up", "down", "held")


class AutoscaleStore:
    """One app's (and input topic's) autoscale keys, next to its `CheckpointStore` keys."""

    def __init__(self, store: CheckpointStore) -> None:
        self.r = store.r
        self.base = store.key(0, "x")[:-len(":0:x")]  # {prefix}:{app}:{topic}

    def _key(self, kind: str) -> str:
        return f"{self.base}:autoscale:{kind}"

    def record(self, direction: str, workers_from: int, workers_to: int, lag: float, reason: str) -> dict[str, Any]:
        """Append one decision (and count it); the record written."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        rec = {"ts_ms": int(time.time() * 1000), "direction": direction, "from": int(workers_from), "to": int(workers_to),
               "lag": round(float(lag), 1), "reason": reason}
        pipe = self.r.pipeline(transaction=True)
        pipe.lpush(self._key("decisions"), json.dumps(rec))
        pipe.ltrim(self._key("decisions"), 0, KEPT - 1)
        pipe.hincrby(self._key("counts"), direction, 1)
        pipe.execute()
        return rec

    def decisions(self, n: int = KEPT) -> list[dict[str, Any]]:
        """The last `n` decisions, newest first."""
        return [json.loads(raw) for raw in self.r.lrange(self._key("decisions"), 0, max(n, 1) - 1)]

    def counts(self) -> dict[str, int]:
        """Decisions ever recorded for this app, per direction (0 for none)."""
        raw = self.r.hgetall(self._key("counts"))
        got = {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}
        return {d: got.get(d, 0) for d in DIRECTIONS}
