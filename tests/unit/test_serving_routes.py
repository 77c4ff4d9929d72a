"""The deployment's own routing (no FastAPI): the four routes, and 404/405 as JSON errors naming the field."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request

from streamlearn.serving.app import ModelServer


class StubCore:
    def __init__(self) -> None:
        self.seen: list[tuple[bytes, dict[str, str]]] = []

    def predict(self, raw: bytes, params: dict[str, str]) -> tuple[int, Any]:
        self.seen.append((raw, params))
        return 200, {"id": "a", "prediction": True}

    def models(self) -> dict[str, Any]:
        return {"partitions": []}

    def health(self) -> tuple[int, dict[str, Any]]:
        return 200, {"status": "ok"}

    def scrape(self) -> bytes:
        return b"# metrics\n"

    def stop(self) -> None:
        pass


def _server() -> Any:
    cls = ModelServer.func_or_class  # the class under Ray Serve's decorator
    server = cls.__new__(cls)
    server.core = StubCore()
    server.routes = {("POST", "/predict"): server.predict, ("GET", "/models"): server.models,
                     ("GET", "/healthz"): server.healthz, ("GET", "/metrics"): server.metrics}
    return server


def _call(server: Any, method: str, path: str, body: bytes = b"", query: bytes = b"") -> tuple[int, bytes]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": method, "path": path, "query_string": query, "headers": [], "root_path": ""}
    response = asyncio.run(server.__call__(Request(scope, receive)))
    return response.status_code, bytes(response.body)


def test_predict_gets_the_body_and_the_query_overrides() -> None:
    server = _server()
    status, body = _call(server, "POST", "/predict", b'{"id": "a"}', b"partition=1")
    assert status == 200 and orjson.loads(body)["prediction"] is True
    assert server.core.seen == [(b'{"id": "a"}', {"partition": "1"})]


def test_get_routes_answer_and_a_trailing_slash_is_the_same_route() -> None:
    server = _server()
    assert _call(server, "GET", "/healthz")[0] == 200
    assert _call(server, "GET", "/models/") == (200, b'{"partitions":[]}')
    assert _call(server, "GET", "/metrics")[1].startswith(b"# metrics")


def test_unknown_paths_and_wrong_methods_are_json_errors_naming_the_field() -> None:
    server = _server()
    status, body = _call(server, "GET", "/predict")
    assert status == 405 and orjson.loads(body)["field"] == "method"
    status, body = _call(server, "POST", "/nope")
    assert status == 404 and orjson.loads(body)["field"] == "path"
    assert server.core.seen == []
