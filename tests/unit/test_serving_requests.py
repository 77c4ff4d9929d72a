"""POST /predict validation: every bad request is a 4xx naming the field; good ones parse."""

from __future__ import annotations

import pytest

from streamlearn.serving.requests import RequestError, int_param, parse_body


def _err(raw: bytes, max_bytes: int = 10_000, max_batch: int = 10) -> RequestError:
    with pytest.raises(RequestError) as info:
        parse_body(raw, max_bytes, max_batch)
    return info.value


def test_one_event_and_a_list_parse() -> None:
    one, is_list = parse_body(b'{"id": "e-1", "features": {"x": 1.5, "c": "FR", "b": true}}', 10_000, 10)
    assert not is_list and one[0].id == "e-1" and one[0].features == {"x": 1.5, "c": "FR", "b": True}
    many, is_list = parse_body(b'[{"id": 1, "features": {}}, {"id": 2, "features": {"x": 0}}]', 10_000, 10)
    assert is_list and [e.id for e in many] == [1, 2]


@pytest.mark.parametrize(("raw", "status", "field"), [
    (b"not json", 400, "body"),
    (b'"a string"', 400, "body"),
    (b"[]", 400, "body"),
    (b'{"features": {}}', 400, "id"),
    (b'{"id": true, "features": {}}', 400, "id"),
    (b'{"id": [1], "features": {}}', 400, "id"),
    (b'{"id": "e"}', 400, "features"),
    (b'{"id": "e", "features": [1, 2]}', 400, "features"),
    (b'{"id": "e", "features": {"x": null}}', 400, "features.x"),
    (b'{"id": "e", "features": {"x": {"nested": 1}}}', 400, "features.x"),
    (b'[{"id": "a", "features": {}}, {"id": "b", "features": {"y": [1]}}]', 400, "[1].features.y"),
    (b'[{"id": "a", "features": {}}, 3]', 400, "[1]"),
])
def test_bad_requests_name_the_field(raw: bytes, status: int, field: str) -> None:
    err = _err(raw)
    assert (err.status, err.field) == (status, field)
    assert err.body()["field"] == field and err.body()["error"]


def test_too_large_bodies_and_batches_are_413() -> None:
    assert _err(b'{"id": "e", "features": {"x": 1}}' + b" " * 200, max_bytes=100).status == 413
    assert _err(b"[" + b",".join([b'{"id": 1, "features": {}}'] * 3) + b"]", max_batch=2).status == 413


def test_query_overrides_are_checked_integers() -> None:
    assert int_param({"partition": "2"}, "partition", 0, 3) == 2
    assert int_param({}, "partition", 0, 3) is None
    for bad in ("x", "9", "-1"):
        with pytest.raises(RequestError) as info:
            int_param({"partition": bad}, "partition", 0, 3)
        assert info.value.field == "partition" and info.value.status == 400
