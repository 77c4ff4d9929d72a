"""A restarted Coordinator takes over the workers that outlived it, without moving a partition.

The Coordinator is restartable (Ray restarts it on the head) and the
PartitionWorkers are detached actors, so they keep processing while it is
away: nothing in their loop needs it. On restart it finds them by name,
pings each, and plans from the answers alone (Redis and Kafka already hold
everything else):

- a worker that answers with partitions stays their owner: no hand-off, so
  there is no moment at which two workers process one partition, and no
  pause for the partitions that were healthy;
- a worker that answers with none is a standby;
- a worker that does not answer is killed (its leases lapse; the new owner
  fences it through the epoch and the transactional id, as for any zombie);
- partitions nobody claims (their worker died while the Coordinator was
  away, or was restarted by Ray as an empty process) are orphans, handed out
  like a dead worker's: to a standby first.

A partition claimed twice (a hung worker that has not yet noticed it was
fenced, and its replacement) goes to the claimant with the higher worker id,
the later one: the other is fenced and drops it by itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_WID = re.compile(r"^w(\d+)$")


def wid_number(wid: str) -> int:
    m = _WID.match(wid)
    return int(m.group(1)) if m else -1


@dataclass
class Plan:
    owners: dict[str, list[int]] = field(default_factory=dict)
    standby: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)


def plan(partitions: list[int], replies: dict[str, dict[str, Any] | None]) -> Plan:
    """What each found worker becomes, from its ping reply (None: no answer)."""
    out = Plan()
    claimed: dict[int, str] = {}
    for wid in sorted(replies, key=wid_number):  # later workers win a double claim
        reply = replies[wid]
        if reply is None:
            out.unreachable.append(wid)
            continue
        for p in reply.get("partitions") or []:
            if p in partitions:
                claimed[int(p)] = wid
    for wid in sorted(replies, key=wid_number):
        if replies[wid] is None:
            continue
        mine = sorted(p for p, owner in claimed.items() if owner == wid)
        if mine:
            out.owners[wid] = mine
        else:
            out.standby.append(wid)
    out.orphans = sorted(set(partitions) - set(claimed))
    return out
