"""Model spec and the hot path: determinism, and replay-from-checkpoint equals a straight run (I2)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest

from streamlearn.config import FieldsConfig, ModelConfig
from streamlearn.errors import ConfigError
from streamlearn.model import step
from streamlearn.model.codec import EventDecoder
from streamlearn.model.spec import build_metric, build_model, describe, model_kind
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState
from streamlearn.tools.datasets import synthetic_events


@dataclass
class Rec:
    off: int
    val: bytes | None
    k: bytes | None = None

    def offset(self) -> int:
        return self.off

    def value(self) -> bytes | None:
        return self.val

    def key(self) -> bytes | None:
        return self.k


SPECS = [
    ModelConfig(preprocessing=["river.preprocessing.StandardScaler"]),
    ModelConfig(estimator="river.tree.HoeffdingTreeClassifier", params={"grace_period": 50}),
]


def records(n: int, bad_every: int = 0) -> list[Rec]:
    out = []
    for i, ev in enumerate(synthetic_events(n, seed=3, n_features=4)):
        val = b"{broken" if bad_every and i % bad_every == 0 else orjson.dumps(ev)
        out.append(Rec(i, val, str(ev["id"]).encode()))
    return out


def fresh(spec: ModelConfig) -> ModelState:
    return ModelState(build_model(spec), build_metric(spec), offset=0, model_version=0, events=0)


def decoder(spec: ModelConfig) -> EventDecoder:
    kind = model_kind(build_model(spec))
    return EventDecoder(FieldsConfig(), is_classifier=kind.is_classifier, is_multiclass=kind.is_multiclass,
                        classes=None, max_value_bytes=10_000)


PROBE = [ev["features"] for ev in synthetic_events(50, seed=99, n_features=4)]


def probe(model: object) -> list[object]:
    return [model.predict_proba_one(x) for x in PROBE]  # type: ignore[attr-defined]


@pytest.mark.parametrize("spec", SPECS, ids=describe)
def test_checkpoint_then_replay_equals_straight_run(spec: ModelConfig) -> None:
    recs = records(1500, bad_every=97)
    dec = decoder(spec)
    straight = fresh(spec)
    step.process(straight, recs, dec, 0, True, None, None)

    # Crash story: live to 600, checkpoint at 400 (R), commit at 1000 (K): restore R, replay [R,K), go on.
    live = fresh(spec)
    step.process(live, recs[:400], dec, 0, True, None, None)
    blob = checkpoint.encode(live, b"key")
    restored = checkpoint.decode(blob, b"key")
    step.process(restored, recs[400:1000], dec, 0, True, None, None)  # replay, emits nothing
    step.process(restored, recs[1000:], dec, 0, True, None, None)

    assert probe(restored.model) == probe(straight.model)
    assert (restored.offset, restored.events, restored.model_version) == (straight.offset, straight.events, straight.model_version)
    assert restored.extra["dlq"] == straight.extra["dlq"] == len([r for r in recs if r.val == b"{broken"])


def test_predict_before_learn_and_emit_contract() -> None:
    spec = SPECS[0]
    dec = decoder(spec)
    st = fresh(spec)
    out: list[tuple[bytes | None, bytes]] = []
    dead: list[tuple[int, str]] = []
    recs = [Rec(0, orjson.dumps({"id": "a", "features": {"x": 1.0}, "label": True}), b"a"),
            Rec(1, b"nope", b"b"),
            Rec(2, orjson.dumps({"id": "c", "features": {"x": 1.0}}), b"c")]
    step.process(st, recs, dec, 5, True, lambda k, v: out.append((k, v)), lambda r, c, d: dead.append((r.offset(), c)))
    first = orjson.loads(out[0][1])
    # Untrained model: the first prediction is the prior, made before learning from the event.
    assert first["proba"] == {"false": 0.5, "true": 0.5}
    assert first["partition"] == 5 and first["offset"] == 0 and first["model_version"] == 1
    assert dead == [(1, "invalid_json")]
    third = orjson.loads(out[1][1])
    assert third["id"] == "c" and third["model_version"] == 1 and third["proba"]["true"] > 0.5
    assert st.offset == 3 and st.events == 2


def test_model_error_goes_to_dlq_not_crash() -> None:
    spec = ModelConfig()  # LogisticRegression without an encoder cannot take a string feature
    dec = decoder(spec)
    st = fresh(spec)
    dead: list[str] = []
    recs = [Rec(0, orjson.dumps({"id": 1, "features": {"x": "text"}, "label": True}))]
    step.process(st, recs, dec, 0, True, lambda k, v: None, lambda r, c, d: dead.append(c))
    assert dead == ["model_error"] and st.offset == 1


def test_seed_is_passed_and_bad_params_are_config_errors() -> None:
    m = build_model(ModelConfig(estimator="river.forest.ARFClassifier", params={"n_models": 2}, seed=11))
    assert m.seed == 11
    with pytest.raises(ConfigError, match=r"model\.estimator"):
        build_model(ModelConfig(params={"no_such_param": 1}))
    kind = model_kind(build_model(ModelConfig(estimator="river.linear_model.LinearRegression")))
    assert not kind.is_classifier


def test_sample_log_gets_each_learned_event_once_with_the_predicting_version() -> None:
    spec = SPECS[0]
    dec, st = decoder(spec), fresh(spec)
    samples: list[tuple[object, dict[str, float], object, int, object]] = []
    recs = [Rec(0, orjson.dumps({"id": "a", "features": {"x": 1.0}, "label": True, "ts": 7}), b"a"),
            Rec(1, orjson.dumps({"id": "b", "features": {"x": 2.0}}), b"b"),  # no label: predicted, not learned
            Rec(2, b"nope", b"c"),
            Rec(3, orjson.dumps({"id": "d", "features": {"x": -1.0}, "label": False}), b"d")]
    step.process(st, recs, dec, 0, True, None, None, None,
                 lambda rec, eid, x, label, pred, version, ts: samples.append((eid, x, label, version, ts)))
    assert samples == [("a", {"x": 1.0}, True, 0, 7), ("d", {"x": -1.0}, False, 1, None)]
    assert st.model_version == 2
