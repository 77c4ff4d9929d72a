"""The done ids' checkpoint form: columns, smaller, and the same store after a restore."""

from __future__ import annotations

import pickle

from streamlearn.labels.join import EXPIRED, JOINED, LABELLED, JoinState
from streamlearn.labels.pending import DoneStore, OrderedStore
from tests.unit.test_labels_join import _random_run


def _filled(store: OrderedStore, n: int) -> OrderedStore:
    codes = (JOINED, JOINED, EXPIRED, LABELLED)
    for i in range(n):
        store.add(f"e{i}" if i % 5 else i, (codes[i % 4], 1_700_000_000_000.0 + i * 0.5))
    store.items["e1"] = (LABELLED, store.items["e1"][1])  # updated in place: keeps its place
    return store


def test_done_ids_come_back_equal_in_order_and_expire_the_same() -> None:
    done = _filled(DoneStore(), 2000)
    back = pickle.loads(pickle.dumps(done))
    assert type(back) is DoneStore
    assert list(back.items.items()) == list(done.items.items()) and list(back.order) == list(done.order)
    horizon = 1_700_000_000_000.0 + 700
    ts = lambda v: v[1]  # noqa: E731
    assert list(back.pop_before(horizon, ts)) == list(done.pop_before(horizon, ts))
    assert back.oldest() == done.oldest() and len(back) == len(done) == 600


def test_the_columns_pickle_a_third_smaller_than_the_tuples() -> None:
    n = 50_000
    columns = len(pickle.dumps(_filled(DoneStore(), n), protocol=5))
    tuples = len(pickle.dumps(_filled(OrderedStore(), n), protocol=5))
    assert columns < tuples * 0.75, (columns, tuples)


def test_a_join_state_checkpointed_before_done_ids_were_columns_still_loads() -> None:
    live = _random_run(3)
    old = OrderedStore()  # what a checkpoint written before DoneStore holds
    for k, v in live.js.done.items.items():
        old.add(k, v)
    was = JoinState(label_offset=live.js.label_offset, journal_offset=0, done=old)
    back = pickle.loads(pickle.dumps(was))
    assert type(back.done) is OrderedStore and back.done.items == live.js.done.items
    again = pickle.loads(pickle.dumps(live.js))
    assert type(again.done) is DoneStore and again.done.items == live.js.done.items and len(again.done) > 20
