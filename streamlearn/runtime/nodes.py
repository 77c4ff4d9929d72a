"""Which Ray node each worker runs on, for `Coordinator.workers()`.

A worker knows its node (`ray_api.node()`, in its ping reply); the
Coordinator learns it from pings sent by its monitor without waiting on
them: at most one ping in flight per worker, read once it is ready, so a
hung worker costs one pending reference and never a stalled monitor. Asked
again every `REFRESH_S`, because Ray may restart a dead actor on another
node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from streamlearn.runtime.supervisor import RayPort

REFRESH_S = 5.0
FIELDS = ("node_id", "node_ip")


class NodeMap:
    def __init__(self, ray: RayPort, clock: Callable[[], float]) -> None:
        self.ray, self.clock = ray, clock
        self._known: dict[str, dict[str, str]] = {}
        self._pending: dict[Any, str] = {}  # ping ref → worker id
        self._next_ask = clock()

    def tick(self, handles: Mapping[str, Any]) -> None:
        """Read the pings that answered; forget workers that are gone; every REFRESH_S, ask again."""
        for ref in self.ray.ready(list(self._pending)):
            wid = self._pending.pop(ref)
            out = self.ray.outcome(ref)
            if out.failure is None and wid in handles and isinstance(out.value, dict):
                self._known[wid] = {k: str(out.value[k]) for k in FIELDS if out.value.get(k)}
        self._known = {wid: n for wid, n in self._known.items() if wid in handles}
        self._pending = {ref: wid for ref, wid in self._pending.items() if wid in handles}
        if self.clock() < self._next_ask:
            return
        self._next_ask = self.clock() + REFRESH_S
        asking = set(self._pending.values())
        for wid, handle in handles.items():
            if wid not in asking:
                self._pending[self.ray.call(handle, "ping")] = wid

    def node_of(self, wid: str) -> str | None:
        """The node id its last ping reported (None: not answered yet, or outside Ray)."""
        return self._known.get(wid, {}).get("node_id") or None

    def view(self, wids: list[str]) -> dict[str, dict[str, str]]:
        """wid → {"node_id", "node_ip"} ({} until its first ping answered, or outside Ray)."""
        return {wid: dict(self._known.get(wid, {})) for wid in wids}
