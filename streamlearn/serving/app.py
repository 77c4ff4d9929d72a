"""The Ray Serve application: request-time predictions from the newest published versions.

A thin HTTP layer around `ServingCore`, deployed with Ray Serve so it scales
out on the same Ray cluster as the learner (`serving.replicas`).
`streamlearn serve` runs it (`serve_forever`); `serve run
streamlearn.serving:app config=app.yaml` runs it too (an application builder).

Routes: POST /predict, GET /models, GET /healthz, GET /metrics (Prometheus).

The deployment takes Starlette requests in `__call__` and routes the four
paths itself, rather than mounting a FastAPI app with `@serve.ingress`: the
per-request work is then one dict lookup instead of FastAPI's routing and
ASGI round trips in the replica. Ray Serve's access log (one formatted line
per request in the proxy and in the replica) is off; requests are counted
and timed in `GET /metrics` instead. Measured in bench/serving.py.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from ray import serve
from ray.serve.deployment import Application
from ray.serve.schema import LoggingConfig
from starlette.requests import Request
from starlette.responses import Response

from streamlearn import logs
from streamlearn.config import AppConfig, config_from_wire, load_config
from streamlearn.serving import ingress, priority
from streamlearn.serving.core import ServingCore

log = logs.get("serving")
#: Ray Serve's own logs: warnings and errors only, no line per request.
SERVE_LOGGING = LoggingConfig(log_level="WARNING", enable_access_log=False)


def _json(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


#: Requests a replica takes at once before Ray Serve's router queues them (its default is 5). A prediction
#: is tens of microseconds of CPU, so the cap protects nothing; at 5, a burst of an open-loop load waits in
#: the router's back-off instead of in the replica's event loop.
MAX_ONGOING_REQUESTS = 100


@serve.deployment(name="streamlearn-models", ray_actor_options={"num_cpus": 0}, logging_config=SERVE_LOGGING,
                  max_ongoing_requests=MAX_ONGOING_REQUESTS)
class ModelServer:
    def __init__(self, wire_config: dict[str, Any]) -> None:
        logs.setup()
        self.core = ServingCore(config_from_wire(wire_config))
        self.core.start()
        self.routes: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]] = {
            ("POST", "/predict"): self.predict, ("GET", "/models"): self.models,
            ("GET", "/healthz"): self.healthz, ("GET", "/metrics"): self.metrics}

    async def __call__(self, request: Request) -> Response:
        path = request.url.path.rstrip("/") or "/"
        handler = self.routes.get((request.method, path))
        if handler is not None:
            return await handler(request)
        if any(p == path for _, p in self.routes):
            return _json(405, {"error": f"{request.method} is not allowed on {path}", "field": "method"})
        return _json(404, {"error": f"no route {path}; routes: POST /predict, GET /models, /healthz, /metrics", "field": "path"})

    async def predict(self, request: Request) -> Response:
        return _json(*self.core.predict(await request.body(), dict(request.query_params)))

    async def models(self, _request: Request) -> Response:
        return _json(200, self.core.models())

    async def healthz(self, _request: Request) -> Response:
        return _json(*self.core.health())

    async def metrics(self, _request: Request) -> Response:
        return Response(self.core.scrape(), media_type="text/plain; version=0.0.4")

    def __del__(self) -> None:
        self.core.stop()


def build(cfg: AppConfig) -> Application:
    return ModelServer.options(num_replicas=cfg.serving.replicas).bind(cfg.to_wire())  # type: ignore[attr-defined]


def app(args: dict[str, str]) -> Application:
    """Application builder for `serve run streamlearn.serving:app config=app.yaml`."""
    return build(load_config(args.get("config") or os.environ.get("STREAMLEARN_CONFIG")))


def serve_forever(cfg: AppConfig, ray_address: str | None, host: str, port: int, ready: Any = None) -> None:
    """`streamlearn serve`: start Ray Serve on host:port, run until SIGINT/SIGTERM, shut down cleanly."""
    from streamlearn.runtime import ray_api

    stop = threading.Event()
    if ray_address is None:  # before Ray starts: its processes inherit the priority (serving/priority.py)
        priority.apply(cfg.serving.nice, cfg.serving.realtime_priority)
    work = ingress.workdir()
    if ray_address is None:  # inherited by the controller, proxy and replicas of the local Ray started below
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1" if cfg.serving.ingress == "haproxy" else "0"
        ingress.apply(ingress.ingress_env(cfg.serving.ingress, host, work))
    ray_api.init(ray_address, 1, cfg.ray.worker_niceness, metrics=cfg.ray.metrics, idle_workers=cfg.ray.idle_workers)
    for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs its own SIGTERM handler
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": host, "port": port}, logging_config=SERVE_LOGGING)
        serve.run(build(cfg), name=f"streamlearn-{cfg.app}", route_prefix="/")
        logs.event(log, logging.INFO, "serving_started", app=cfg.app, host=host, port=port,
                   ingress=cfg.serving.ingress if ray_address is None else "the cluster's RAY_SERVE_* environment")
        if ready is not None:
            ready(host, port)
        stop.wait()
    finally:
        try:
            serve.shutdown()
        finally:
            ray_api.shutdown()
            ingress.cleanup(work)
