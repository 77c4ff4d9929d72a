"""Request validation for POST /predict: bad input is a 4xx naming the field, and never reaches a model.

Accepted body: `{"id": ..., "features": {...}}` or a JSON list of them (at
most `serving.max_batch`), at most `serving.max_request_bytes`. `id` is a
string or an integer; each feature is a finite number, a string or a bool
(the same rule as the stream's decoder). Query overrides: `partition=P`,
`version=V` (integers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson


class RequestError(Exception):
    """A request the model never sees: the HTTP status, the field at fault and why."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message

    def body(self) -> dict[str, str]:
        return {"error": self.message, "field": self.field}


@dataclass(frozen=True)
class PredictRequest:
    id: str | int
    features: dict[str, Any]


def parse_body(raw: bytes, max_bytes: int, max_batch: int) -> tuple[list[PredictRequest], bool]:
    """The events of the body and whether it was a list (the answer has the same shape)."""
    if len(raw) > max_bytes:
        raise RequestError(413, "body", f"body is {len(raw)} bytes; at most serving.max_request_bytes={max_bytes}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, "body", f"body is not valid JSON: {exc}") from None
    if isinstance(doc, dict):
        return [_event(doc, "")], False
    if not isinstance(doc, list):
        raise RequestError(400, "body", f"body must be an object {{id, features}} or a list of them, got {_type(doc)}")
    if not doc:
        raise RequestError(400, "body", "body is an empty list")
    if len(doc) > max_batch:
        raise RequestError(413, "body", f"{len(doc)} events in one request; at most serving.max_batch={max_batch}")
    return [_event(item, f"[{i}].") for i, item in enumerate(doc)], True


def _event(doc: Any, where: str) -> PredictRequest:
    if not isinstance(doc, dict):
        raise RequestError(400, where.rstrip(".") or "body", f"an event must be an object {{id, features}}, got {_type(doc)}")
    if "id" not in doc:
        raise RequestError(400, f"{where}id", "field 'id' is missing")
    eid = doc["id"]
    if isinstance(eid, bool) or not isinstance(eid, str | int):
        raise RequestError(400, f"{where}id", f"'id' must be a string or an integer, got {_type(eid)}")
    if "features" not in doc:
        raise RequestError(400, f"{where}features", "field 'features' is missing")
    feats = doc["features"]
    if not isinstance(feats, dict):
        raise RequestError(400, f"{where}features", f"'features' must be an object, got {_type(feats)}")
    for name, v in feats.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise RequestError(400, f"{where}features.{name}", f"feature '{name}' is {v}")
        if not isinstance(v, int | float | str | bool):
            raise RequestError(400, f"{where}features.{name}", f"feature '{name}' has type {_type(v)}; expected number, string or bool")
    return PredictRequest(eid, feats)


def int_param(params: dict[str, str], name: str, low: int, high: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise RequestError(400, name, f"query parameter '{name}' must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise RequestError(400, name, f"query parameter '{name}' is {value}; expected {bound}")
    return value


def _type(v: Any) -> str:
    return "null" if v is None else type(v).__name__
