"""Published blobs (signed, lineage-checked) and the validation gate, without services."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from streamlearn.config import ModelConfig, PublishGateConfig
from streamlearn.errors import CheckpointTamperedError
from streamlearn.model.spec import build_metric, build_model
from streamlearn.models import blob, gate, load
from streamlearn.models.blob import ForeignModelError, PublishedModel
from streamlearn.models.record import make_meta, spec_hash
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState

SPEC = ModelConfig(estimator="river.linear_model.LogisticRegression", preprocessing=["river.preprocessing.StandardScaler"])
SECRET = b"k" * 32
KEY = checkpoint.partition_key(SECRET, "a", "t", 0)  # version blobs are signed with their partition's key


def _events(n: int, flip: bool = False) -> list[tuple[dict[str, Any], bool]]:
    return [({"x": float(i % 7) - 3.0, "y": float(i % 3)}, ((i % 7) - 3.0 > 0) != flip) for i in range(n)]


def _trained(n: int = 400, flip: bool = False) -> ModelState:
    model, metric = build_model(SPEC), build_metric(SPEC)
    for x, y in _events(n, flip):
        metric.update(y, model.predict_one(x))
        model.learn_one(x, y)
    return ModelState(model, metric, offset=n, model_version=n, events=n)


def _meta(version: int, partition: int = 0) -> dict[str, Any]:
    return make_meta(app="a", topic="t", partition=partition, version=version, epoch=1, offset=400, events_learned=400,
                     metric_name="Accuracy", metric_value=0.9, window=100, spec=spec_hash(SPEC), size_bytes=0)


def _window(model: PublishedModel, n: int = 200) -> list[tuple[dict[str, Any], Any, Any]]:
    return [(x, y, model.predict(x)[0]) for x, y in _events(n)]


def test_signed_blob_round_trips_and_exports(tmp_path: Path) -> None:
    state = _trained()
    signed = blob.sign(state, _meta(3), KEY)
    opened = blob.open_blob(signed, KEY, expect={"app": "a", "topic": "t", "partition": 0, "version": 3})
    x = {"x": 2.0, "y": 1.0}
    assert opened.version == 3 and opened.predict(x) == PublishedModel(state.model, {}, True).predict(x)
    model_path, meta_path = blob.export(signed, _meta(3), tmp_path, "a-p0-v3")
    loaded = load(model_path, SECRET)
    assert loaded.meta["version"] == 3 and loaded.predict(x) == opened.predict(x)
    assert '"version": 3' in meta_path.read_text()


def test_tampered_and_foreign_blobs_are_refused(tmp_path: Path) -> None:
    signed = blob.sign(_trained(), _meta(3), KEY)
    with pytest.raises(CheckpointTamperedError):
        blob.open_blob(signed, b"another secret")
    forged = signed[:-5] + bytes(b ^ 1 for b in signed[-5:])
    with pytest.raises(CheckpointTamperedError):
        blob.open_blob(forged, KEY)
    with pytest.raises(ForeignModelError):
        blob.open_blob(signed, KEY, expect={"partition": 1})
    model_path, _ = blob.export(forged, _meta(3), tmp_path, "m")
    with pytest.raises(CheckpointTamperedError, match=r"m\.slmodel"):
        load(model_path, SECRET)
    blob.export(signed, {**_meta(3), "partition": 1}, tmp_path, "moved")  # metadata edited: the key no longer matches
    with pytest.raises(CheckpointTamperedError):
        load(tmp_path / "moved.slmodel", SECRET)


def test_gate_passes_an_equal_candidate_and_refuses_a_regressing_one() -> None:
    cfg = PublishGateConfig()
    good = PublishedModel(_trained().model, {"version": 1}, True)
    window = _window(good)
    metric = lambda: build_metric(SPEC)  # noqa: E731
    ok = gate.evaluate(good, window, good, 1000, metric, cfg)
    assert ok.ok and ok.candidate == ok.served
    bad = PublishedModel(gate.Contrarian(good.model), {}, True)
    bad_window = [(x, y, bad.predict(x)[0]) for x, y, _ in window]
    refused = gate.evaluate(bad, bad_window, good, 1000, metric, cfg)
    assert not refused.ok and refused.reason == "metric_drop" and "max_drop" in refused.detail
    assert refused.candidate is not None and refused.served is not None and refused.served - refused.candidate > cfg.max_drop


def test_gate_first_version_and_size_and_non_finite() -> None:
    good = PublishedModel(_trained().model, {"version": 1}, True)
    metric = lambda: build_metric(SPEC)  # noqa: E731
    assert gate.evaluate(good, _window(good), None, 1000, metric, PublishGateConfig()).ok
    big = gate.evaluate(good, _window(good), None, 2 * 1024 * 1024, metric, PublishGateConfig(max_size_mb=1))
    assert (big.ok, big.reason) == (False, "too_large")

    class NaNModel:
        def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
            return {True: math.nan, False: math.nan}

    nan = gate.evaluate(PublishedModel(NaNModel(), {}, True), _window(good), good, 10, metric, PublishGateConfig())
    assert (nan.ok, nan.reason) == (False, "non_finite")


def test_gate_refuses_an_unjudged_candidate_while_a_version_is_served() -> None:
    """An empty window (a restored label-mode learner before its first join) is no evidence: even a sabotaged model passed it."""
    good = PublishedModel(_trained().model, {"version": 1}, True)
    bad = PublishedModel(gate.Contrarian(good.model), {}, True)
    metric = lambda: build_metric(SPEC)  # noqa: E731
    unjudged = gate.evaluate(bad, [], good, 1000, metric, PublishGateConfig())
    assert (unjudged.ok, unjudged.reason) == (False, "no_evidence") and "v1" in unjudged.detail
    assert gate.evaluate(good, [], None, 1000, metric, PublishGateConfig()).ok  # the first version needs no window


def test_publishing_settings_are_not_part_of_the_model_spec() -> None:
    """Changing model.publish must not make restore see a new spec (checkpoint.on_spec_change)."""
    other = SPEC.model_copy(update={"publish": SPEC.publish.model_copy(update={"every_s": 99.0})})
    assert checkpoint.spec_id(other) == checkpoint.spec_id(SPEC) and spec_hash(other) == spec_hash(SPEC)
    assert checkpoint.spec_id(SPEC.model_copy(update={"seed": 1})) != checkpoint.spec_id(SPEC)
