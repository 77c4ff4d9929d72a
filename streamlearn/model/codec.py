"""Record value ⇄ event: decode and validate input, encode predictions.

This is on the per-event hot path, so it is written for speed: one orjson
parse, a handful of type checks, no per-event objects beyond the tuple the
worker needs. Anything that fails raises DecodeError with a short machine
code (it becomes the DLQ header `streamlearn.error.code`) and a detail.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from streamlearn.config import FieldsConfig
from streamlearn.errors import DecodeError

_FEATURE_TYPES = frozenset((float, int, str, bool))


def _json_error(exc: orjson.JSONDecodeError, value: bytes) -> DecodeError:
    msg = str(exc)
    if "UTF-8" in msg:
        return DecodeError("invalid_utf8", msg)
    if "depth limit" in msg:
        return DecodeError("too_deep", msg)
    if "infinity" in msg:
        return DecodeError("non_finite_number", msg)
    return DecodeError("invalid_json", msg + " (NaN and Infinity are not JSON)" if "NaN" in value[:4096].decode("utf-8", "replace") else msg)


def _reject_feature(feats: dict[str, Any]) -> None:
    """Slow path of the feature check: raise for the first feature that is not allowed."""
    for name, v in feats.items():
        t = type(v)
        if t is float:
            if not math.isfinite(v):
                raise DecodeError("non_finite_number", f"feature '{name}' is {v}")
        elif t is not int and t is not str and t is not bool:
            raise DecodeError("bad_feature_type", f"feature '{name}' has type {'null' if v is None else t.__name__}; expected number, string or bool")


#: (id, features, label, ts) of a decoded event: a plain tuple, not a NamedTuple, because building
#: one costs about 0.45 µs more per event on this path (`bench.ab_hotpath`), and every caller unpacks it.
Event = tuple[str | int, dict[str, Any], Any, int | float | None]


class EventDecoder:
    """Decodes one record value; configured once per worker."""

    def __init__(
        self,
        fields: FieldsConfig,
        *,
        is_classifier: bool,
        is_multiclass: bool,
        classes: list[Any] | None,
        max_value_bytes: int,
    ) -> None:
        self._id = fields.id
        self._features = fields.features
        self._label = fields.label
        self._ts = fields.ts
        self._is_classifier = is_classifier
        self._binary = is_classifier and not is_multiclass and classes is None
        self._classes = frozenset(classes) if classes is not None else None
        self._max_bytes = max_value_bytes

    def decode(self, value: bytes | None) -> Event:
        if not value:
            raise DecodeError("empty_value", "record has no value")
        if len(value) > self._max_bytes:
            raise DecodeError("value_too_large", f"{len(value)} bytes > processing.max_value_bytes={self._max_bytes}")
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise _json_error(exc, value) from None
        if type(doc) is not dict:
            raise DecodeError("not_an_object", f"top level is {type(doc).__name__}, expected an object")

        # A missing key and an explicit null are the same error, so one .get() serves both.
        eid = doc.get(self._id)
        if type(eid) is not str and type(eid) is not int:
            if eid is None:
                raise DecodeError("missing_id", f"field '{self._id}' is missing")
            raise DecodeError("bad_id", f"field '{self._id}' must be a string or integer, got {type(eid).__name__}")

        feats = doc.get(self._features)
        if type(feats) is not dict:
            if feats is None:
                raise DecodeError("missing_features", f"field '{self._features}' is missing")
            raise DecodeError("bad_features", f"field '{self._features}' must be an object, got {type(feats).__name__}")
        # Fast path: one C-level pass collects the value types. orjson refuses non-finite
        # numbers while parsing (reported above as non_finite_number), so a float here is
        # always finite; the per-feature loop only runs to name the offending feature.
        if not _FEATURE_TYPES.issuperset(map(type, feats.values())):
            _reject_feature(feats)

        label = doc.get(self._label)
        if label is not None:
            if self._binary and type(label) is bool:
                pass
            else:
                label = self._check_label(label)

        ts = doc.get(self._ts)
        if ts is not None and type(ts) is not int and type(ts) is not float:
            raise DecodeError("bad_ts", f"field '{self._ts}' must be epoch milliseconds, got {type(ts).__name__}")
        return (eid, feats, label, ts)

    def validate_label(self, label: Any) -> Any:
        """A label from elsewhere than an event (a label record, a configured default): checked like one."""
        if self._binary and type(label) is bool:
            return label
        return self._check_label(label)

    def _check_label(self, label: Any) -> Any:
        if self._is_classifier:
            if self._binary:
                if type(label) is bool:
                    return label
                if type(label) is int and label in (0, 1):
                    return bool(label)
                raise DecodeError("unknown_label", f"label {label!r} is not a class of this binary model (expected true/false)")
            if type(label) not in (str, int, bool):
                raise DecodeError("bad_label", f"label has type {type(label).__name__}; expected string, integer or bool")
            if self._classes is not None and label not in self._classes:
                raise DecodeError("unknown_label", f"label {label!r} is not in model.classes")
            return label
        if type(label) is bool or (type(label) is not int and type(label) is not float):
            raise DecodeError("bad_label", f"label must be a number for a regressor, got {type(label).__name__}")
        if not math.isfinite(label):
            raise DecodeError("non_finite_number", f"label is {label}")
        return label


def proba_to_json(proba: dict[Any, float]) -> dict[str, float]:
    return {("true" if k is True else "false" if k is False else str(k)): v for k, v in proba.items()}


def encode_prediction(
    event_id: str | int,
    prediction: Any,
    proba: dict[Any, float] | None,
    partition: int,
    offset: int,
    model_version: int,
    event_ts: int | float | None,
    predicted_at: int,
) -> bytes:
    # One dict literal and one dumps. The class keys of `proba` (bool, int or str: what the decoder
    # lets a label be) are written by orjson's OPT_NON_STR_KEYS as proba_to_json would write them
    # (true/false, the int's digits, the str), about 0.8 µs an event less than building that dict.
    if proba is None:
        return _dumps({"id": event_id, "prediction": prediction, "partition": partition, "offset": offset,
                       "model_version": model_version, "event_ts": event_ts, "predicted_at": predicted_at})
    return _dumps({"id": event_id, "prediction": prediction, "proba": proba, "partition": partition,
                   "offset": offset, "model_version": model_version, "event_ts": event_ts, "predicted_at": predicted_at},
                  option=_NON_STR_KEYS)


_dumps = orjson.dumps
_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS
