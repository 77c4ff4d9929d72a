"""The benchmark's models, identical for every system.

`logreg`: StandardScaler | LogisticRegression. With categorical features the
scaler only sees the numeric ones and a OneHotEncoder the categorical ones:
(Select(x*) | StandardScaler) + (Select(c*) | OneHotEncoder) | LogisticRegression,
because river's StandardScaler cannot take strings and its OneHotEncoder
would one-hot every numeric value too. `hoeffding`: HoeffdingTreeClassifier,
which handles numeric and categorical features natively.

The factories are importable by dotted path so the streamlearn runs use the
very same pipeline through `model.estimator` (a callable returning a river
estimator passes the engine's checks).
"""

from __future__ import annotations

from typing import Any

from river import compose, linear_model, preprocessing, tree

N_NUMERIC = 10
N_CATEGORICAL = 5


def logreg() -> Any:
    return compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())


def logreg_mixed() -> Any:
    num = compose.Select(*(f"x{j}" for j in range(N_NUMERIC))) | preprocessing.StandardScaler()
    cat = compose.Select(*(f"c{j}" for j in range(N_CATEGORICAL))) | preprocessing.OneHotEncoder()
    return (num + cat) | linear_model.LogisticRegression()


def hoeffding() -> Any:
    return tree.HoeffdingTreeClassifier()


FACTORIES = {"logreg": logreg, "logreg_mixed": logreg_mixed, "hoeffding": hoeffding}


def factory_name(model: str, categorical: bool) -> str:
    if model == "logreg":
        return "logreg_mixed" if categorical else "logreg"
    return model


def build(model: str, categorical: bool) -> Any:
    return FACTORIES[factory_name(model, categorical)]()


def streamlearn_model_config(model: str, categorical: bool) -> dict[str, Any]:
    if model == "logreg" and not categorical:
        # The engine's own preprocessing list: the configuration a user would write.
        return {"estimator": "river.linear_model.LogisticRegression", "preprocessing": ["river.preprocessing.StandardScaler"]}
    return {"estimator": f"bench.models.{factory_name(model, categorical)}"}


def predict_learn(model: Any, x: dict[str, Any], y: Any) -> tuple[Any, dict[Any, float]]:
    """The per-event step every peer runs: predict (argmax of proba), then learn."""
    proba = model.predict_proba_one(x)
    pred = max(proba, key=proba.__getitem__) if proba else None
    model.learn_one(x, y)
    return pred, proba
