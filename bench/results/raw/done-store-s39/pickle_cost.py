"""The in-process figures of README.md: `PYTHONPATH=. .venv/bin/python bench/results/raw/done-store-s39/pickle_cost.py`."""

from __future__ import annotations

import pickle
import time

from streamlearn.labels.join import EXPIRED, JOINED, LABELLED
from streamlearn.labels.pending import DoneStore, OrderedStore


def _filled(store: OrderedStore, n: int) -> OrderedStore:
    """As tests/unit/test_done_store.py fills one."""
    codes = (JOINED, JOINED, EXPIRED, LABELLED)
    for i in range(n):
        store.add(f"e{i}" if i % 5 else i, (codes[i % 4], 1_700_000_000_000.0 + i * 0.5))
    return store


def main() -> None:
    for cls in (OrderedStore, DoneStore):
        store = _filled(cls(), 300_000)
        t0 = time.process_time()
        blob = pickle.dumps(store, protocol=5)
        dump_s = time.process_time() - t0
        t0 = time.process_time()
        pickle.loads(blob)
        load_s = time.process_time() - t0
        print(f"{cls.__name__}: {len(blob) / 1e6:.2f} MB, dumps {dump_s * 1000:.0f} ms, loads {load_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
