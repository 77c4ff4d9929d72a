"""Ray failures are told apart by exception type: the Coordinator's decisions hang on it."""

from __future__ import annotations

import pytest
from ray.exceptions import (
    ActorDiedError,
    ActorUnavailableError,
    GetTimeoutError,
    RayActorError,
    RayError,
    RayTaskError,
    TaskCancelledError,
    WorkerCrashedError,
)

from streamlearn.runtime import ray_api
from streamlearn.runtime.ray_api import Failure


def raised(cause: Exception) -> RayError:
    """What ray.get raises when the method raised `cause`: a class derived from both."""
    err: RayError = RayTaskError("run", "Traceback ...", cause).as_instanceof_cause()
    return err


@pytest.mark.parametrize(("exc", "failure"), [
    (raised(ValueError("bad config")), Failure.RAISED),
    # A method that raised a Ray error of its own (a nested call) still just raised.
    (raised(ActorDiedError()), Failure.RAISED),
    (raised(TimeoutError("slow")), Failure.RAISED),
    (ActorUnavailableError("The actor is temporarily unavailable", None), Failure.RESTARTING),
    (RayActorError(), Failure.RESTARTING),
    (ActorDiedError(), Failure.DEAD),
    (GetTimeoutError(), Failure.TIMEOUT),
    (TaskCancelledError(), Failure.LOST),
    (WorkerCrashedError(), Failure.LOST),
])
def test_classify_by_type(exc: RayError, failure: Failure) -> None:
    assert ray_api.classify(exc) is failure


def test_outcome_of_a_method_that_raised_names_its_own_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def get(ref: object, timeout: float | None = None) -> object:
        raise raised(KeyError("partition"))

    monkeypatch.setattr(ray_api.ray, "get", get)
    out = ray_api.outcome(object())
    assert out.failure is Failure.RAISED
    assert out.error_type == "KeyError" and out.describe().startswith("KeyError: ")
    with pytest.raises(RayTaskError):
        out.unwrap()


def test_outcome_of_a_dead_actor_and_of_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    results: list[object] = [ActorDiedError(), {"result": "stopped"}]

    def get(ref: object, timeout: float | None = None) -> object:
        r = results.pop(0)
        if isinstance(r, Exception):
            raise r
        return r

    monkeypatch.setattr(ray_api.ray, "get", get)
    dead = ray_api.outcome(object())
    assert dead.failure is Failure.DEAD and dead.error_type == "ActorDiedError"
    ok = ray_api.outcome(object())
    assert ok.failure is None and ok.unwrap() == {"result": "stopped"} and ok.describe() == ""


def test_errors_that_are_not_rays_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    def get(ref: object, timeout: float | None = None) -> object:
        raise RuntimeError("a bug, not a failure to decide on")

    monkeypatch.setattr(ray_api.ray, "get", get)
    with pytest.raises(RuntimeError):
        ray_api.outcome(object())
