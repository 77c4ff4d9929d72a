"""The Ray Serve application: request-time predictions from the newest published versions.

A thin FastAPI ingress around `ServingCore`, deployed with Ray Serve so it
scales out on the same Ray cluster as the learner (`serving.replicas`).
`streamlearn serve` runs it (`serve_forever`); `serve run
streamlearn.serving:app config=app.yaml` runs it too (an application builder).

Routes: POST /predict, GET /models, GET /healthz, GET /metrics (Prometheus).
No `from __future__ import annotations` here: FastAPI reads the handlers'
annotations (`Request`) at run time.
"""

import logging
import os
import signal
import threading
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from ray import serve
from ray.serve.deployment import Application

from streamlearn import logs
from streamlearn.config import AppConfig, config_from_wire, load_config
from streamlearn.serving.core import ServingCore

log = logs.get("serving")
api = FastAPI(title="streamlearn serving", docs_url=None, redoc_url=None)


def _json(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@serve.deployment(name="streamlearn-models", ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class ModelServer:
    def __init__(self, wire_config: dict[str, Any]) -> None:
        logs.setup()
        self.core = ServingCore(config_from_wire(wire_config))
        self.core.start()

    @api.post("/predict")
    async def predict(self, request: Request) -> Response:
        return _json(*self.core.predict(await request.body(), dict(request.query_params)))

    @api.get("/models")
    async def models(self) -> Response:
        return _json(200, self.core.models())

    @api.get("/healthz")
    async def healthz(self) -> Response:
        return _json(*self.core.health())

    @api.get("/metrics")
    async def metrics(self) -> Response:
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
    ray_api.init(ray_address, 1)
    for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs its own SIGTERM handler
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(build(cfg), name=f"streamlearn-{cfg.app}", route_prefix="/")
        logs.event(log, logging.INFO, "serving_started", app=cfg.app, host=host, port=port)
        if ready is not None:
            ready(host, port)
        stop.wait()
    finally:
        try:
            serve.shutdown()
        finally:
            ray_api.shutdown()
