"""The join's bounded stores: pending events, early labels, done ids, each expiring oldest first.

Each store is a dict (lookup by id) plus a deque of ids in insertion order
(expiry and eviction from the front). A plain dict would do both, but
popping from the front of a CPython dict leaves dummies that every later
``next(iter(d))`` walks over: quadratic at a million pending events. Ids
removed from the dict (an event joined before it reached the front) stay in
the deque and are skipped when they get there; the deque is bounded by the
ids inserted within about one window.

Pending values are compact on purpose (the brief: a million pending events
in a few hundred MB): the features used for the prediction are kept as the
orjson bytes that go, unchanged, into the sample record. Except while the
store is small (fewer than YOUNG_PENDING entries when one is added): then
the features dict itself is kept, as most labels come soon and encoding and
decoding every event cost about 2.5 us of the join's hot path; at most
YOUNG_PENDING dicts are ever held, whatever the store's size.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

Id = str | int  # an event id, as the event and its label carry it
Features = dict[str, Any] | bytes  # the features used for a prediction: the dict, or its orjson bytes (see module doc)
#: A pending event is stored with its features dict (not encoded) while the store holds fewer entries than this.
YOUNG_PENDING = 10_000


class PendingEvent(NamedTuple):
    ts: float  # event time (ms) the windows are measured from
    offset: int  # input offset of the event
    prediction: Any  # what was predicted (and emitted) before the label was known
    model_version: int  # the version that made the prediction
    features: Features  # the features used for the prediction (dict or orjson bytes): learned from, never a later copy


class EarlyLabel(NamedTuple):
    label: Any
    ts: float
    offset: int  # label-topic offset
    key: bytes | None  # the record, kept to dead-letter it unchanged if its event never comes
    value: bytes | None


class OrderedStore:
    """A dict whose oldest live entry is found in O(1) amortised (see module doc)."""

    __slots__ = ("items", "order")

    def __init__(self) -> None:
        self.items: dict[Id, Any] = {}
        self.order: deque[Id] = deque()

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, key: Id) -> bool:
        return key in self.items

    def add(self, key: Id, value: Any) -> None:
        """Insert a new id (an update of a present id keeps its place: assign `items[key]` directly)."""
        self.items[key] = value
        self.order.append(key)

    def get(self, key: Id) -> Any:
        return self.items.get(key)

    def pop(self, key: Id) -> Any:
        return self.items.pop(key, None)

    def oldest(self) -> tuple[Id, Any] | None:
        """The live entry inserted first (stale ids at the front are dropped on the way)."""
        order, items = self.order, self.items
        while order:
            key = order[0]
            value = items.get(key)
            if value is not None:
                return key, value
            order.popleft()
        return None

    def pop_oldest(self) -> tuple[Id, Any]:
        found = self.oldest()
        assert found is not None, "pop_oldest on an empty store"
        self.order.popleft()
        del self.items[found[0]]
        return found

    def pop_before(self, horizon: float, ts_of: Callable[[Any], float]) -> Sequence[tuple[Id, Any]]:
        """Pop, oldest first, the entries whose time is below `horizon`; stops at the first that is not.

        Called for nearly every label (each moves the label clock) and almost always with nothing to pop:
        that case is one look at the front, and allocates nothing.
        """
        order, items = self.order, self.items
        while order:
            value = items.get(order[0])
            if value is not None:
                if ts_of(value) >= horizon:
                    return ()
                break
            order.popleft()  # a stale id (removed before it reached the front)
        else:
            return ()
        popped: list[tuple[Id, Any]] = []
        while True:
            front = self.oldest()
            if front is None or ts_of(front[1]) >= horizon:
                return popped
            order.popleft()
            del items[front[0]]
            popped.append(front)

    def __getstate__(self) -> tuple[dict[Id, Any], list[Id]]:
        # Only the live ids' order matters after a restore: drop stale deque entries.
        return self.items, [k for k in self.order if k in self.items]

    def __setstate__(self, st: tuple[dict[Id, Any], list[Id]]) -> None:
        self.items, self.order = st[0], deque(st[1])


class DoneStore(OrderedStore):
    """Done ids, id -> (code, event_ts), pickled as columns.

    Why: the done ids are most of a label-mode checkpoint (two windows of event time: ~300,000 a partition
    at 250 labels a second with the default 600-s window), and as a dict of tuples plus the order list each
    id cost ~29 bytes of pickle. As columns (ids, a string of one-character codes, the times as doubles) it
    is ~20 and pickles faster; in memory nothing changes. The dict's order is the store's order: done ids
    are only appended, updated in place and expired from the front. A checkpoint written before this
    class (an `OrderedStore`) still loads as one.
    """

    __slots__ = ()

    def __getstate__(self) -> tuple[list[Id], str, bytes]:  # type: ignore[override]
        values = self.items.values()
        return list(self.items), "".join(v[0] for v in values), array("d", [v[1] for v in values]).tobytes()

    def __setstate__(self, st: tuple[list[Id], str, bytes]) -> None:  # type: ignore[override]
        ids, codes, raw = st
        times = array("d")
        times.frombytes(raw)
        self.items = dict(zip(ids, zip(codes, times, strict=True), strict=True))
        self.order = deque(ids)
