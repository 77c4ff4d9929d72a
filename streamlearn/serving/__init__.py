"""Request-time predictions from published model versions (`streamlearn serve`).

`streamlearn.serving:app` is a Ray Serve application builder:
``serve run streamlearn.serving:app config=app.yaml``. The modules: ``core``
(route, validate, predict; no Ray), ``partitioner`` (id → input partition),
``requests`` (validation), ``registry`` (verified served models),
``subscriber`` (push from Redis), ``app`` (the Ray Serve deployment).
"""

from __future__ import annotations

from typing import Any


def app(args: dict[str, str]) -> Any:
    """Ray Serve application builder (imports Ray Serve only when called)."""
    from streamlearn.serving.app import app as build

    return build(args)


__all__ = ["app"]
