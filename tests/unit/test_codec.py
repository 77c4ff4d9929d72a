"""Decoding and validation of input records: every rejection has a code."""

from __future__ import annotations

import orjson
import pytest

from streamlearn.config import FieldsConfig
from streamlearn.errors import DecodeError
from streamlearn.model.codec import EventDecoder, encode_prediction, proba_to_json


@pytest.fixture
def binary() -> EventDecoder:
    return EventDecoder(FieldsConfig(), is_classifier=True, is_multiclass=False, classes=None, max_value_bytes=1000)


def ok(**kw: object) -> bytes:
    doc = {"id": "e-1", "features": {"a": 1.5, "c": "FR", "b": True}, "label": True, "ts": 17}
    doc.update(kw)
    return orjson.dumps(doc)


def test_valid_event(binary: EventDecoder) -> None:
    assert binary.decode(ok()) == ("e-1", {"a": 1.5, "c": "FR", "b": True}, True, 17)


def test_label_is_optional_and_int_labels_map_to_bool(binary: EventDecoder) -> None:
    assert binary.decode(orjson.dumps({"id": 3, "features": {"a": 1}}))[2] is None
    assert binary.decode(ok(label=0))[2] is False


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (None, "empty_value"),
        (b"", "empty_value"),
        (b"{not json", "invalid_json"),
        (b'{"id": "x", "features": {"a": NaN}}', "invalid_json"),
        (b'{"id": "x", "features": {"a": 1e999}}', "non_finite_number"),
        (b"\xff\xfe\xfd", "invalid_utf8"),
        (b"[" * 2000 + b"]" * 2000, "value_too_large"),
        (b"[1, 2]", "not_an_object"),
        (orjson.dumps({"features": {"a": 1}}), "missing_id"),
        (orjson.dumps({"id": [1], "features": {"a": 1}}), "bad_id"),
        (orjson.dumps({"id": "x"}), "missing_features"),
        (orjson.dumps({"id": "x", "features": [1, 2]}), "bad_features"),
        (orjson.dumps({"id": "x", "features": {"a": {"b": 1}}}), "bad_feature_type"),
        (orjson.dumps({"id": "x", "features": {"a": None}}), "bad_feature_type"),
        (orjson.dumps({"id": "x", "features": {"a": 1}, "label": "cat"}), "unknown_label"),
        (orjson.dumps({"id": "x", "features": {"a": 1}, "ts": "yesterday"}), "bad_ts"),
    ],
)
def test_rejections_have_codes(binary: EventDecoder, value: bytes | None, code: str) -> None:
    with pytest.raises(DecodeError) as exc:
        binary.decode(value)
    assert exc.value.code == code
    assert exc.value.detail


def test_deep_nesting_is_rejected_not_crashing() -> None:
    dec = EventDecoder(FieldsConfig(), is_classifier=True, is_multiclass=False, classes=None, max_value_bytes=10**7)
    with pytest.raises(DecodeError) as exc:
        dec.decode(b"[" * 5000 + b"]" * 5000)
    assert exc.value.code == "too_deep"


def test_multiclass_classes_and_regressor_labels() -> None:
    multi = EventDecoder(FieldsConfig(), is_classifier=True, is_multiclass=True, classes=["a", "b"], max_value_bytes=1000)
    assert multi.decode(orjson.dumps({"id": 1, "features": {}, "label": "a"}))[2] == "a"
    with pytest.raises(DecodeError, match="unknown_label"):
        multi.decode(orjson.dumps({"id": 1, "features": {}, "label": "z"}))
    reg = EventDecoder(FieldsConfig(), is_classifier=False, is_multiclass=False, classes=None, max_value_bytes=1000)
    assert reg.decode(orjson.dumps({"id": 1, "features": {}, "label": 2.5}))[2] == 2.5
    with pytest.raises(DecodeError, match="bad_label"):
        reg.decode(orjson.dumps({"id": 1, "features": {}, "label": True}))


def test_custom_field_names() -> None:
    dec = EventDecoder(FieldsConfig(id="uid", features="x", label="y", ts="t"), is_classifier=True,
                       is_multiclass=False, classes=None, max_value_bytes=1000)
    assert dec.decode(orjson.dumps({"uid": "u", "x": {"f": 1}, "y": False, "t": 5})) == ("u", {"f": 1}, False, 5)


def test_prediction_encoding_matches_contract() -> None:
    out = orjson.loads(encode_prediction("e-17", True, {True: 0.91, False: 0.09}, 3, 1041, 1041, 1764000000000, 1764000000100))
    assert out == {"id": "e-17", "prediction": True, "proba": {"true": 0.91, "false": 0.09}, "partition": 3,
                   "offset": 1041, "model_version": 1041, "event_ts": 1764000000000, "predicted_at": 1764000000100}
    reg = orjson.loads(encode_prediction(7, 2.5, None, 0, 0, 1, None, 1))
    assert "proba" not in reg and reg["prediction"] == 2.5


@pytest.mark.parametrize("proba", [{True: 0.91, False: 0.09}, {"a": 0.5, "b": 0.3, "c": 0.2}, {0: 0.25, 7: 0.75}])
def test_prediction_proba_keys_are_written_as_proba_to_json_writes_them(proba: dict[object, float]) -> None:
    """The encoder lets orjson write the class keys (OPT_NON_STR_KEYS); the serving path uses proba_to_json: same bytes."""
    out = encode_prediction(1, None, proba, 0, 0, 0, None, 0)
    assert orjson.loads(out)["proba"] == proba_to_json(proba)
    assert b'"proba":' + orjson.dumps(proba_to_json(proba)) in out
