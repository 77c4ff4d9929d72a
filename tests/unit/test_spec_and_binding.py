"""Checkpoints bound to (app, topic, partition) and to the model spec (issue 14, findings 5 and 9)."""

from __future__ import annotations

import hashlib
import hmac
import pickle
from typing import Any

import pytest

from streamlearn.config import AppConfig, ModelConfig
from streamlearn.eos import restore
from streamlearn.errors import CheckpointError, CheckpointTamperedError
from streamlearn.model.spec import build_metric, build_model
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState

SECRET = b"s" * 32
SPEC = ModelConfig(preprocessing=["river.preprocessing.StandardScaler"])


def state(spec: ModelConfig = SPEC) -> ModelState:
    model = build_model(spec)
    for i in range(30):
        model.learn_one({"a": i * 0.1}, i % 2 == 0)
    return ModelState(model, build_metric(spec), offset=30, model_version=30, events=30, spec_id=checkpoint.spec_id(spec))


def test_a_blob_of_one_partition_does_not_verify_as_another_or_another_app() -> None:
    blob = checkpoint.encode(state(), checkpoint.partition_key(SECRET, "app", "events", 0))
    assert checkpoint.decode(blob, checkpoint.partition_key(SECRET, "app", "events", 0)).offset == 30
    for other in [("app", "events", 1), ("app", "other-topic", 0), ("other-app", "events", 0)]:
        with pytest.raises(CheckpointTamperedError, match="another app/topic/partition"):
            checkpoint.decode(blob, checkpoint.partition_key(SECRET, *other))


def test_the_blob_records_spec_and_river_version_readable_without_unpickling() -> None:
    key = checkpoint.partition_key(SECRET, "app", "events", 0)
    blob = checkpoint.encode(state(), key)
    current = checkpoint.spec_id(SPEC)
    assert checkpoint.peek_spec(blob, key) == current
    assert checkpoint.decode(blob, key).spec_id == current
    assert current.river_version and len(current.spec_hash) == 16


def test_spec_id_changes_with_any_model_key() -> None:
    base = checkpoint.spec_id(SPEC)
    assert checkpoint.spec_id(ModelConfig(preprocessing=["river.preprocessing.StandardScaler"])) == base
    for changed in [ModelConfig(estimator="river.tree.HoeffdingTreeClassifier"), SPEC.model_copy(update={"seed": 7}),
                    SPEC.model_copy(update={"params": {"l2": 0.1}}), SPEC.model_copy(update={"metric": "river.metrics.F1"})]:
        assert checkpoint.spec_id(changed) != base


def test_legacy_blobs_still_decode_with_an_unknown_spec() -> None:
    s = state()
    payload = pickle.dumps({"model": s.model, "metric": s.metric, "offset": 30, "model_version": 30, "events": 30, "extra": {}})
    blob = b"SLCK1\n" + hmac.new(SECRET, payload, hashlib.sha256).digest() + payload
    back = checkpoint.decode(blob, SECRET)
    assert back.offset == 30 and back.spec_id is None


def _cfg(policy: str, estimator: str = "river.tree.HoeffdingTreeClassifier") -> AppConfig:
    return AppConfig.model_validate({"model": {"estimator": estimator}, "checkpoint": {"on_spec_change": policy}})


def _ctx(**kw: Any) -> dict[str, Any]:
    return kw


def test_a_changed_estimator_fails_by_default_with_one_line_naming_the_choices() -> None:
    cfg = _cfg("fail")
    assert cfg.checkpoint.on_spec_change == "fail" == AppConfig().checkpoint.on_spec_change
    with pytest.raises(CheckpointError) as err:
        restore._on_spec_change(cfg, state(), checkpoint.spec_id(cfg.model), 3, _ctx)
    msg = f"{err.value.message} {err.value.hint}"
    assert "\n" not in msg and "partition=3" in msg and "configured model is spec" in msg
    assert "checkpoint.on_spec_change: reset" in msg and "keep" in msg


def test_reset_starts_fresh_and_keep_keeps_the_old_model() -> None:
    old = state()
    assert restore._on_spec_change(_cfg("reset"), old, checkpoint.spec_id(_cfg("reset").model), 0, _ctx) is None
    assert restore._on_spec_change(_cfg("keep"), old, checkpoint.spec_id(_cfg("keep").model), 0, _ctx) is old


def test_the_same_spec_restores_whatever_the_policy() -> None:
    cfg = _cfg("fail", estimator=SPEC.estimator).model_copy(update={"model": SPEC})
    s = state()
    assert restore._on_spec_change(cfg, s, checkpoint.spec_id(cfg.model), 0, _ctx) is s
