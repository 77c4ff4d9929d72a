"""The join journal record: which ranges one chunk consumed and which clock advances it applied.

One record per processed chunk, produced into the same transaction as the
chunk's outputs, to the journal partition of the same number as the input
partition. ``{"e": [e0, e1], "l": [l0, l1], "clock": {"event": ms, "label": ms}}``:
events at offsets [e0, e1) of the input partition, labels at [l0, l1) of the
label partition (offsets, so gaps left by transaction markers are covered),
and the idle-stream clock advances decided in processing time (``clock``
absent or empty when none). A chunk with neither events nor labels is never
journalled, and chunks are contiguous, so a record's ranges alone tell
whether a state already includes it. Replaying the records in journal order through
the same step reproduces the original run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


class JournalError(ValueError):
    """A journal record that is not one of ours (the caller adds topic, partition, offset)."""


@dataclass(frozen=True)
class JournalRecord:
    events: tuple[int, int]  # [e0, e1)
    labels: tuple[int, int]  # [l0, l1)
    clock: dict[str, float] = field(default_factory=dict)  # "event" / "label": the clock value advanced to

    def encode(self) -> bytes:
        doc: dict[str, Any] = {"e": list(self.events), "l": list(self.labels)}
        if self.clock:
            doc["clock"] = self.clock
        return orjson.dumps(doc)


def decode(value: bytes | None) -> JournalRecord:
    try:
        doc = orjson.loads(value or b"")
        e0, e1 = (int(v) for v in doc["e"])
        l0, l1 = (int(v) for v in doc["l"])
        clock = {str(k): float(v) for k, v in (doc.get("clock") or {}).items()}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise JournalError(f"not a join journal record ({type(exc).__name__}: {exc}): {(value or b'')[:200]!r}") from None
    if not (e0 <= e1 and l0 <= l1) or (e0 == e1 and l0 == l1) or set(clock) - {"event", "label"}:
        raise JournalError(f"malformed join journal record: {(value or b'')[:200]!r}")
    return JournalRecord((e0, e1), (l0, l1), clock)
