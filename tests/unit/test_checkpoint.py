"""Checkpoint blobs: authenticated before unpickling; a round trip keeps the model exact."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from streamlearn.config import ModelConfig
from streamlearn.errors import CheckpointError, CheckpointTamperedError
from streamlearn.model.spec import build_metric, build_model
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState

KEY = b"k" * 32


def state() -> ModelState:
    spec = ModelConfig(preprocessing=["river.preprocessing.StandardScaler"])
    model = build_model(spec)
    for i in range(50):
        model.learn_one({"a": i * 0.1, "b": -i}, i % 3 == 0)
    return ModelState(model, build_metric(spec), offset=50, model_version=50, events=50, extra={"dlq": 2})


def test_round_trip_keeps_predictions() -> None:
    s = state()
    back = checkpoint.decode(checkpoint.encode(s, KEY), KEY)
    assert (back.offset, back.model_version, back.events, back.extra) == (50, 50, 50, {"dlq": 2})
    probe = {"a": 0.3, "b": -2.0}
    assert back.model.predict_proba_one(probe) == s.model.predict_proba_one(probe)


def test_flipped_byte_is_refused() -> None:
    blob = bytearray(checkpoint.encode(state(), KEY))
    blob[-10] ^= 0xFF
    with pytest.raises(CheckpointTamperedError):
        checkpoint.decode(bytes(blob), KEY)


def test_wrong_key_is_refused() -> None:
    with pytest.raises(CheckpointTamperedError):
        checkpoint.decode(checkpoint.encode(state(), KEY), b"other")


class _Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (Path(self.marker),))


def test_malicious_pickle_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Boom(str(marker)))
    for blob in (evil, checkpoint.MAGIC + b"\0" * 32 + evil):
        with pytest.raises(CheckpointTamperedError):
            checkpoint.decode(blob, KEY)
    assert not marker.exists()


def test_authentic_but_unreadable_payload_is_a_checkpoint_error() -> None:
    import hashlib
    import hmac

    header = b'{"spec_hash": null}'
    payload = len(header).to_bytes(2, "big") + header + b"not a pickle"
    blob = checkpoint.MAGIC + hmac.new(KEY, payload, hashlib.sha256).digest() + payload
    with pytest.raises(CheckpointError, match="could not be unpickled"):
        checkpoint.decode(blob, KEY)


def test_dev_key_is_per_app() -> None:
    assert checkpoint.dev_key("a") != checkpoint.dev_key("b")
