"""Redis keys of a live rescale: the request a CLI leaves for the Coordinator, and the hand-off records.

Kept apart from `redis_store` (one job each): nothing here fences anything.
A scale request is a sequence number and a worker count; the Coordinator
applies the newest one it has not applied yet and writes its progress back,
so `streamlearn scale` needs Redis only, never a Ray connection. The
Coordinator also keeps a short-lived "alive" key, so a request to an app that
is not running fails at once instead of waiting for its timeout.

A hand-off record (one per moved partition) carries the wall time at which
the old owner made its last commit; the new owner's first commit turns it
into a pause, kept in an app-wide histogram (bucket counts, sum, count) and a
capped list of raw values for benchmarks.
"""

from __future__ import annotations

import json
import time
from typing import Any

from connectors.redis_store import CheckpointStore

# Upper bounds of the hand-off pause histogram, seconds (last commit of the old owner → first of the new).
PAUSE_BUCKETS_S = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
RAW_KEPT = 1000  # raw pauses kept for p50/p99 (newest first)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class RescaleStore:
    """One app's (and input topic's) rescale keys, next to its `CheckpointStore` keys."""

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self.r = store.r
        self.base = store.key(0, "x")[:-len(":0:x")]  # {prefix}:{app}:{topic}

    def _key(self, kind: str) -> str:
        return f"{self.base}:{kind}"

    # ---- requests (CLI / App.scale → Coordinator) ---------------------------------------
    def request(self, workers: int) -> int:
        """Ask for `workers`; the request's sequence number (later requests win)."""
        seq = int(self.r.incr(self._key("scale:seq")))
        self.r.hset(self._key("scale:request"), mapping={"seq": seq, "workers": workers, "ts_ms": int(time.time() * 1000)})
        return seq

    def pending(self, applied_seq: int) -> tuple[int, int] | None:
        """(seq, workers) of the newest request above `applied_seq`, if any."""
        raw = self.r.hmget(self._key("scale:request"), ["seq", "workers"])
        if raw[0] is None or int(raw[0]) <= applied_seq:
            return None
        return int(raw[0]), int(raw[1] or 0)

    def report(self, seq: int, phase: str, message: str, **fields: Any) -> None:
        """The Coordinator's progress on request `seq`: applying, applied or failed."""
        mapping: dict[str | bytes, bytes | float | int | str] = {"seq": seq, "phase": phase, "message": message, "ts_ms": int(time.time() * 1000),
                   "fields": json.dumps(fields)}
        self.r.hset(self._key("scale:state"), mapping=mapping)

    def state(self) -> dict[str, Any]:
        raw = {_text(k): _text(v) for k, v in self.r.hgetall(self._key("scale:state")).items()}
        if not raw:
            return {}
        return {"seq": int(raw["seq"]), "phase": raw["phase"], "message": raw["message"], **json.loads(raw.get("fields") or "{}")}

    def coordinator_alive(self, ttl_ms: int) -> None:
        self.r.set(self._key("coordinator"), int(time.time() * 1000), px=ttl_ms)

    def coordinator_running(self) -> bool:
        return bool(self.r.exists(self._key("coordinator")))

    # ---- hand-offs (worker side) ---------------------------------------------------------
    def record_release(self, partition: int, released_ms: int, owner: str, epoch: int, offset: int) -> None:
        self.r.hset(self.store.key(partition, "handoff"),
                    mapping={"released_ms": released_ms, "from": owner, "epoch": epoch, "offset": offset})

    def release_of(self, partition: int) -> int | None:
        """Wall time (ms) of the old owner's last commit, if the partition is in a planned hand-off."""
        raw = self.r.hget(self.store.key(partition, "handoff"), "released_ms")
        return int(raw) if raw is not None else None

    def record_pause(self, partition: int, pause_s: float) -> None:
        """The new owner's first commit: the hand-off is over; count it and its pause."""
        bucket = next((i for i, b in enumerate(PAUSE_BUCKETS_S) if pause_s <= b), len(PAUSE_BUCKETS_S))
        pipe = self.r.pipeline()
        pipe.delete(self.store.key(partition, "handoff"))
        pipe.hincrby(self._key("handoffs"), "count", 1)
        pipe.hincrbyfloat(self._key("handoffs"), "sum_s", pause_s)
        pipe.hincrby(self._key("handoffs"), f"b{bucket}", 1)
        pipe.lpush(self._key("handoff_pauses"), json.dumps({"partition": partition, "pause_s": round(pause_s, 4),
                                                            "ts_ms": int(time.time() * 1000)}))
        pipe.ltrim(self._key("handoff_pauses"), 0, RAW_KEPT - 1)
        pipe.execute()

    def handoffs(self) -> dict[str, Any]:
        """count, sum_s and per-bucket counts (the last one: above every bound) of the pause histogram."""
        raw = {_text(k): _text(v) for k, v in self.r.hgetall(self._key("handoffs")).items()}
        hist = [int(raw.get(f"b{i}", 0)) for i in range(len(PAUSE_BUCKETS_S) + 1)]
        return {"count": int(raw.get("count", 0)), "sum_s": float(raw.get("sum_s", 0.0)), "hist": hist}

    def pauses(self) -> list[dict[str, Any]]:
        """The raw pauses kept, oldest first."""
        return [json.loads(x) for x in reversed(self.r.lrange(self._key("handoff_pauses"), 0, -1))]
