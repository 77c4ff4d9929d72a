"""The fused per-event calls build bit for bit the model the Pipeline's own methods build (streamlearn.model.fused)."""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable
from typing import Any

import pytest
from river import compose, feature_selection, linear_model, metrics, preprocessing, stats, tree

from streamlearn.model import fused


def _stream(n: int, seed: int = 7) -> list[tuple[dict[str, Any], Any]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        x = {f"x{j}": rnd.gauss(j, 1 + j) for j in range(6)}
        out.append((x, x["x0"] + 0.5 * x["x3"] + rnd.gauss(0, 1) > 2.0))
    return out


def _run(predict: Callable[[dict[str, Any]], Any], learn: Callable[[dict[str, Any], Any], Any],
         stream: list[tuple[dict[str, Any], Any]], regression: bool) -> list[Any]:
    seen = []
    for x, y in stream:
        seen.append(predict(dict(x)))  # a fresh dict, as each decoded event is
        learn(dict(x), float(y) if regression else y)
    return seen


PLAIN: dict[str, tuple[Callable[[], Any], bool, bool, bool]] = {
    # name: (factory, is_classifier, regression, pickles deterministically)
    "scaler|logreg": (lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression(), True, False, True),
    "scaler|minmax|linreg": (lambda: preprocessing.StandardScaler() | preprocessing.MinMaxScaler()
                             | linear_model.LinearRegression(), False, True, True),
    # Two Hoeffding trees trained alike pickle to different bytes: compared by their predictions only.
    "minmax|hoeffding": (lambda: preprocessing.MinMaxScaler() | tree.HoeffdingTreeClassifier(grace_period=50), True, False,
                         False),
}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_fused_calls_build_the_pipelines_model(name: str) -> None:
    factory, is_classifier, regression, deterministic = PLAIN[name]
    reference, model = factory(), factory()
    calls = fused.calls(model, is_classifier)
    assert calls.fused
    stream = _stream(2_000)
    ref_predict = reference.predict_proba_one if is_classifier else reference.predict_one
    got_predict = calls.predict_proba if is_classifier else calls.predict
    assert got_predict is not None
    expected = _run(ref_predict, reference.learn_one, stream, regression)
    got = _run(got_predict, calls.learn, stream, regression)
    assert pickle.dumps(got) == pickle.dumps(expected)  # every prediction, bit for bit (a NaN too)
    if deterministic:
        assert pickle.dumps(model) == pickle.dumps(reference)  # the learned state, byte for byte
    probes = [x for x, _y in _stream(200, seed=8)]
    assert pickle.dumps([model.predict_one(dict(x)) for x in probes]) == pickle.dumps([reference.predict_one(dict(x)) for x in probes])
    assert pickle.dumps([calls.predict(dict(x)) for x in probes]) == pickle.dumps([reference.predict_one(dict(x)) for x in probes])


NOT_FUSED: dict[str, Callable[[], Any]] = {
    "bare estimator": linear_model.LogisticRegression,
    "union": lambda: (preprocessing.StandardScaler() + preprocessing.MinMaxScaler()) | linear_model.LogisticRegression(),
    "supervised transformer": lambda: (feature_selection.SelectKBest(similarity=stats.PearsonCorr(), k=2)
                                       | linear_model.LogisticRegression()),
    "pipeline subclass": lambda: type("MyPipeline", (compose.Pipeline,), {})(preprocessing.StandardScaler(),
                                                                             linear_model.LogisticRegression()),
}


@pytest.mark.parametrize("name", sorted(NOT_FUSED))
def test_other_shapes_keep_the_models_own_methods(name: str) -> None:
    model = NOT_FUSED[name]()
    calls = fused.calls(model, True)
    assert not calls.fused
    assert calls.learn == model.learn_one and calls.predict == model.predict_one
    assert calls.predict_proba == model.predict_proba_one


def test_learn_during_predict_keeps_the_pipelines_methods() -> None:
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    with compose.learn_during_predict():
        assert not fused.calls(model, True).fused
    assert fused.calls(model, True).fused


def test_a_regressor_has_no_proba_call() -> None:
    model = preprocessing.StandardScaler() | linear_model.LinearRegression()
    calls = fused.calls(model, False)
    assert calls.fused and calls.predict_proba is None


def test_another_river_release_keeps_the_public_methods(monkeypatch: pytest.MonkeyPatch) -> None:
    import river

    from streamlearn.model import metric_batch

    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    assert fused.calls(model, True).fused and metric_batch.batchable(metrics.Accuracy())
    monkeypatch.setattr(river, "__version__", "0.27.0")
    assert not fused.calls(model, True).fused
    assert not metric_batch.batchable(metrics.Accuracy())
