"""Where the launchers keep jars, data and state: one cache dir outside the repo.

``STREAMLEARN_CACHE_DIR`` (default ``~/.cache/streamlearn``) holds the Kafka
jars, from mvn or the direct download (shared by every instance: a second
start needs no network), and, by default, the data/state dirs of the shared dev/test
services. Chaos tests pass their own state dirs to get private instances.
"""

from __future__ import annotations

import os
from pathlib import Path

from connectors.services.errors import ConfigurationError

DEFAULT_KAFKA_VERSION = "4.1.1"


def cache_dir() -> Path:
    """The root cache dir (env ``STREAMLEARN_CACHE_DIR``, else ``~/.cache/streamlearn``)."""
    env = os.environ.get("STREAMLEARN_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "streamlearn").resolve()


def kafka_version() -> str:
    """The Kafka version to run (env ``STREAMLEARN_KAFKA_VERSION``, default 4.1.1)."""
    return os.environ.get("STREAMLEARN_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION


def env_choice(name: str, choices: tuple[str, ...]) -> str:
    """The value of the environment variable ``name`` (default: the first choice), validated.

    ``STREAMLEARN_JAVA``, ``STREAMLEARN_REDIS`` and ``STREAMLEARN_KAFKA_JARS``
    choose between the system's tools and the pip-only paths this way.
    """
    value = (os.environ.get(name) or choices[0]).strip().lower()
    if value not in choices:
        raise ConfigurationError(f"unknown {name}={value!r}",
                                 f"set it to one of {', '.join(choices)}")
    return value
