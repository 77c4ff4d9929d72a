"""Prometheus endpoint of `streamlearn run` (filled in by the metrics work, issue 6)."""

from __future__ import annotations

from typing import Any

from streamlearn.config import AppConfig


def serve(cfg: AppConfig) -> Any:
    return None
