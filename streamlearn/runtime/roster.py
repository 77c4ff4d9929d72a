"""One record per PartitionWorker: everything the Coordinator knows about it, in one place.

A worker's handle, partitions, run in flight and role change together (a
failover moves all of them at once), so they live on one record rather than
in parallel dicts that must be kept in step. A zombie is a role, not a
renamed key: a worker keeps its id from spawn to kill. Pure data, no Ray and
no I/O, so every decision made on it can be unit-tested.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Role(enum.Enum):
    OWNER = "owner"  # holds partitions: its run is in flight, or due again after a pause
    STANDBY = "standby"  # started and idle: takes a dead owner's partitions with no start-up cost
    ZOMBIE = "zombie"  # replaced while its run was in flight (hung); retired when that run ends


@dataclass(eq=False)
class Worker:
    wid: str
    handle: Any
    role: Role = Role.STANDBY
    partitions: list[int] = field(default_factory=list)
    run: Any = None  # the ref of its `run` call in flight; None between runs
    launched_at: float = 0.0  # monotonic time of its last `run` call: lease checks wait for a start-up
    relaunch_at: float | None = None  # after its run raised: when to call `run` again
    has_owned: bool = False  # it has held a lease once, so the start-up grace no longer applies
    standby_rank: int = 0  # standbys are taken oldest first: a just-restarted one may not be up yet
    deaths: int = 0  # process deaths seen (each one a Ray restart or a replacement)
    down_since: float | None = None  # Ray is restarting it since then (`restarts`); None: up as far as known
    probe: Any = None  # the ref of the ping in flight that asks whether it is up again
    probe_at: float = 0.0  # when to send the next such ping
    health: Any = None  # an idle standby's ping in flight when Ray does not restart it (`Supervisor.check_standbys`)

    @property
    def label(self) -> str:
        """Its name in status output: a zombie shows as "{wid}-zombie", as it always has."""
        return f"{self.wid}-zombie" if self.role is Role.ZOMBIE else self.wid


class Roster:
    """The records, their order, and the counters `workers()` reports."""

    def __init__(self) -> None:
        self.workers: dict[str, Worker] = {}
        self.worker_restarts = 0
        self.replacements = 0
        self._next_id = 0
        self._next_rank = 0

    def add(self, handle_for: Any) -> Worker:
        """A new standby; `handle_for(wid)` starts its actor (the id names the actor)."""
        wid = f"w{self._next_id}"
        self._next_id += 1
        w = Worker(wid, handle_for(wid))
        self.workers[wid] = w
        self.to_standby(w)
        return w

    def adopt(self, wid: str, handle: Any) -> Worker:
        """A worker that outlived the previous Coordinator, under its own id; new ids follow the highest."""
        w = Worker(wid, handle)
        self.workers[wid] = w
        self.skip_id(wid)
        self.to_standby(w)
        return w

    def skip_id(self, wid: str) -> None:
        """Never hand out `wid` (or a lower id) again: an actor of that name exists or just did."""
        if wid.startswith("w") and wid[1:].isdigit():
            self._next_id = max(self._next_id, int(wid[1:]) + 1)

    def to_standby(self, w: Worker) -> None:
        w.role, w.partitions, w.relaunch_at = Role.STANDBY, [], None
        w.standby_rank = self._next_rank
        self._next_rank += 1

    def drop(self, w: Worker) -> None:
        self.workers.pop(w.wid, None)

    def with_role(self, role: Role) -> list[Worker]:
        return [w for w in self.workers.values() if w.role is role]

    def standby(self) -> list[Worker]:
        return sorted(self.with_role(Role.STANDBY), key=lambda w: w.standby_rank)

    def spares(self, up_only: bool = False) -> list[Worker]:
        """Standbys in the order they are given partitions: known to be up first, then the longest restarting."""
        spares = sorted(self.standby(), key=lambda w: w.down_since is not None)  # stable: oldest first in each group
        return [w for w in spares if w.down_since is None] if up_only else spares

    def next_standby(self, up_only: bool = False) -> Worker | None:
        spares = self.spares(up_only)
        return spares[0] if spares else None

    def live(self) -> list[Worker]:
        """Workers that are ours to call: owners and standbys, not zombies."""
        return [w for w in self.workers.values() if w.role is not Role.ZOMBIE]

    def running(self) -> dict[Any, Worker]:
        return {w.run: w for w in self.workers.values() if w.run is not None}

    def probing(self) -> dict[Any, Worker]:
        """The pings in flight to workers Ray is restarting (`restarts`)."""
        return {w.probe: w for w in self.workers.values() if w.probe is not None}

    def view(self) -> dict[str, Any]:
        """What `Coordinator.workers()` has always returned, inside every `status()`: kept to the letter."""
        return {"assignment": {w.wid: list(w.partitions) for w in self.with_role(Role.OWNER)},
                "standby": [w.wid for w in self.standby()],
                "zombies": sorted(w.label for w in self.with_role(Role.ZOMBIE)),
                "worker_restarts": self.worker_restarts, "replacements": self.replacements}
