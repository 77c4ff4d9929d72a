"""Helpers for serving integration tests: `streamlearn serve` as a subprocess, HTTP calls, versions."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from connectors.version_store import VersionStore
from streamlearn.config import AppConfig
from tests.integration.engine_helpers import REPO, store_of, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(config: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streamlearn", "serve", "-c", str(config), "--port", str(port)],
        env={**env, "PYTHONUNBUFFERED": "1"}, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def http(port: int, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            payload = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        payload, status = exc.read(), exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None
    ctype = "json"
    try:
        return status, json.loads(payload)
    except ValueError:
        ctype = "text"
    return status, payload.decode() if ctype == "text" else payload


def served(port: int) -> dict[int, dict[str, Any]]:
    status, body = http(port, "GET", "/models")
    return {r["partition"]: r for r in body["partitions"]} if status == 200 else {}


def wait_serving(port: int, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    wait_for(lambda: http(port, "GET", "/healthz")[0] == 200, timeout, "streamlearn serve to answer /healthz", proc)


def versions_of(cfg: AppConfig) -> VersionStore:
    return VersionStore(store_of(cfg))
