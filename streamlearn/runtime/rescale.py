"""The plan of a live rescale: which partitions move where, moving as few as possible.

Pure (no Ray, no I/O) so that it can be unit-tested exhaustively. Given the
current owners and a target worker count, the target assignment is balanced
(sizes differ by at most one) and every partition that can stay where it is
stays there: a kept worker keeps as many of its own partitions as its new
size allows; only the surplus of the fullest workers and everything held by
removed workers moves. A partition that does not move is not touched at all
(no release, no epoch bump), so it does not pause.

Which workers go on a scale-down: those holding the fewest partitions (the
fewest to move), the newest first on a tie. New workers are placeholders
(`NEW_PREFIX` + index) that the executor maps to the standbys or spawned
workers it gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamlearn.runtime.adoption import wid_number

NEW_PREFIX = "+new"


@dataclass(frozen=True)
class Move:
    partition: int
    source: str | None  # None: nobody owned it (an orphan, or a partition new to the topic)
    target: str


@dataclass
class Plan:
    target: dict[str, list[int]] = field(default_factory=dict)  # every owner after the rescale, new ones as placeholders
    moves: list[Move] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # owners that release everything and go
    added: list[str] = field(default_factory=list)  # placeholders of the new owners

    def outgoing(self, source: str) -> list[int]:
        return sorted(m.partition for m in self.moves if m.source == source)

    def incoming(self, target: str) -> list[int]:
        return sorted(m.partition for m in self.moves if m.target == target)


def plan(current: dict[str, list[int]], partitions: list[int], n: int) -> Plan:
    """The balanced assignment of `partitions` to min(n, len(partitions)) workers that moves the fewest."""
    if n < 1:
        raise ValueError(f"a rescale needs at least one worker, got {n}")
    parts = sorted(set(partitions))
    k = min(n, max(len(parts), 1))
    mine = {wid: sorted(set(ps) & set(parts)) for wid, ps in current.items()}
    # Fewest partitions first, newest first on a tie: the cheapest workers to remove.
    cheapest = sorted(mine, key=lambda w: (len(mine[w]), -wid_number(w)))
    removed = cheapest[:max(len(mine) - k, 0)]
    kept = [w for w in mine if w not in removed]
    added = [f"{NEW_PREFIX}{i}" for i in range(k - len(kept))]
    # The larger slots go to the workers holding the most already: fewer moves.
    order = sorted(kept, key=lambda w: (-len(mine[w]), wid_number(w))) + added
    base, extra = divmod(len(parts), k)
    size = {w: base + (1 if i < extra else 0) for i, w in enumerate(order)}
    target = {w: mine.get(w, [])[:size[w]] for w in order}
    owned = {p for ps in target.values() for p in ps}
    was = {p: w for w, ps in mine.items() for p in ps}
    pool = [p for p in parts if p not in owned]
    moves = []
    for w in order:
        while len(target[w]) < size[w]:
            p = pool.pop(0)
            target[w].append(p)
            moves.append(Move(p, was.get(p), w))
        target[w].sort()
    return Plan(target=target, moves=moves, removed=removed, added=added)
