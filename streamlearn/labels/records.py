"""Label-mode records: events and labels decoded into merge items, a kept one rebuilt for the DLQ, the sample encoded.

Per-record code of the join (`labels.join`), kept apart so the state machine reads on its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol

import orjson

from streamlearn.errors import DecodeError
from streamlearn.labels.pending import Features, Id
from streamlearn.model.codec import EventDecoder


class KafkaRecord(Protocol):
    def offset(self) -> int: ...
    def value(self) -> bytes | None: ...
    def key(self) -> bytes | None: ...
    def timestamp(self) -> tuple[int, int]: ...


EVENT, LABEL, REFUSED = 0, 1, 2  # kinds of merge item; within one event time events come before labels
#: A record of a chunk in merge order: (ts, kind, offset, id, features | label, raw event ts, record); for a record
#: that does not decode (REFUSED): (-inf, REFUSED, offset, error code, detail, None, record).
Item = tuple[float, int, int, Any, Any, Any, KafkaRecord]


def decode_events(decoder: EventDecoder, records: Iterable[KafkaRecord]) -> list[Item]:
    """Each event as its merge item; one that does not decode as a REFUSED item (ts -inf: the DLQ only).

    Decoding is apart from the join's step (`Joiner.run_items`) so that label pacing, which needs the
    event times before it releases anything, decodes each record once; the dead letter is still written
    by the step, into the transaction of the chunk that consumes the record.
    """
    decode = decoder.decode
    out: list[Item] = []
    append = out.append
    for rec in records:
        try:
            eid, x, _inline_label, ts = decode(rec.value())  # an inline label is ignored: labels come from the topic
        except DecodeError as exc:
            append((-math.inf, REFUSED, rec.offset(), exc.code, exc.detail, None, rec))
            continue
        append((float(ts) if ts is not None else float(rec.timestamp()[1]), EVENT, rec.offset(), eid, x, ts, rec))
    return out


def decode_labels(decoder: EventDecoder, fields: tuple[str, str, str], records: Iterable[KafkaRecord]) -> list[Item]:
    """Each label as its merge item (see `decode_events`); `fields`: the id, label and ts field names."""
    fid, flabel, fts = fields
    out: list[Item] = []
    append = out.append
    for rec in records:
        try:
            lid, label, lts = decode_label(decoder, fid, flabel, fts, rec)
        except DecodeError as exc:
            append((-math.inf, REFUSED, rec.offset(), exc.code, exc.detail, None, rec))
            continue
        append((lts, LABEL, rec.offset(), lid, label, None, rec))
    return out


class StoredRecord:
    """An early label's record, rebuilt to dead-letter it unchanged after its own record is gone."""

    __slots__ = ("_key", "_offset", "_value")

    def __init__(self, key: bytes | None, value: bytes | None, offset: int) -> None:
        self._key, self._value, self._offset = key, value, offset

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def headers(self) -> None:
        return None


def decode_label(decoder: EventDecoder, labels_id: str, labels_label: str, labels_ts: str, rec: KafkaRecord) -> tuple[Id, Any, float]:
    """(id, label, ts ms) of a label record; DecodeError (code, detail) for the DLQ otherwise."""
    value = rec.value()
    if not value:
        raise DecodeError("empty_value", "label record has no value")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise DecodeError("invalid_json", str(exc)) from None
    if type(doc) is not dict:
        raise DecodeError("not_an_object", f"top level is {type(doc).__name__}, expected an object")
    lid = doc.get(labels_id)
    if type(lid) is not str and type(lid) is not int:
        raise DecodeError("missing_id" if lid is None else "bad_id", f"field '{labels_id}' must be a string or integer")
    raw = doc.get(labels_label)
    if raw is None:
        raise DecodeError("missing_label", f"field '{labels_label}' is missing in a label record")
    label = decoder.validate_label(raw)
    ts = doc.get(labels_ts)
    if ts is None:
        ts = rec.timestamp()[1]  # the broker's record timestamp: stored, so replay sees the same
    elif type(ts) is not int and type(ts) is not float:
        raise DecodeError("bad_ts", f"field '{labels_ts}' must be epoch milliseconds, got {type(ts).__name__}")
    return lid, label, float(ts)


_dumps = orjson.dumps
_Fragment = orjson.Fragment


def encode_sample(eid: Id, features: Features, label: Any, pred: Any, version: int, ets: float, lts: float | None,
                  outcome: bytes) -> bytes:
    """The training-sample record. Features as stored: orjson bytes go in as a Fragment (never re-encoded), a
    dict is encoded in the same pass as the record (the same bytes as encoding it apart first, one pass less)."""
    return _dumps({"id": eid, "features": features if isinstance(features, dict) else _Fragment(features), "label": label,
                   "prediction": pred, "model_version": version, "event_ts": _ms(ets), "label_ts": _ms(lts),
                   "outcome": _OUTCOMES[outcome]})


_OUTCOMES = {b"joined": "joined", b"expired": "expired"}


def _ms(ts: float | None) -> int | float | None:
    return int(ts) if ts is not None and ts == int(ts) else ts
