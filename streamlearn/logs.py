"""Structured, quiet-by-default logging: `level event key=value ...` lines.

Context (topic, partition, offset, epoch) goes in as keyword fields so an
operator can grep one partition's history across workers.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

_CONFIGURED = False


def setup(level: str | None = None) -> None:
    global _CONFIGURED
    lvl = (level or os.environ.get("STREAMLEARN_LOG_LEVEL") or "WARNING").upper()
    root = logging.getLogger("streamlearn")
    if not _CONFIGURED:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.addHandler(handler)
        root.propagate = False
        _CONFIGURED = True
    root.setLevel(lvl)


def _fmt(v: Any) -> str:
    s = str(v)
    return f'"{s}"' if (" " in s or not s) else s


def event(logger: logging.Logger, level: int, name: str, **ctx: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, "%s %s", name, " ".join(f"{k}={_fmt(v)}" for k, v in ctx.items()))


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"streamlearn.{name}")
