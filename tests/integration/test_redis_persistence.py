"""Redis keeps what it acknowledged across restarts: checkpoints and epochs rely on it."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from connectors.services.backends import resolve_backend
from connectors.services.redis_local import LocalRedis


def test_session_redis_has_the_append_only_file_on(redis_client: Any) -> None:
    assert redis_client.config_get("appendonly") == {"appendonly": "yes"}


@pytest.fixture
def launcher_redis(private_redis: Any) -> LocalRedis:
    if resolve_backend() == "docker":
        pytest.skip("exercises the local launcher; the docker backend is in use")
    instance: LocalRedis = private_redis()
    return instance


def test_key_survives_a_restart_by_the_launcher(launcher_redis: LocalRedis) -> None:
    redis.Redis.from_url(launcher_redis.url).set("checkpoint:p0", b"model-bytes")
    old_pid = launcher_redis.pid

    launcher_redis.restart()

    assert launcher_redis.pid != old_pid
    assert redis.Redis.from_url(launcher_redis.url).get("checkpoint:p0") == b"model-bytes"


def test_acknowledged_incr_survives_a_kill(launcher_redis: LocalRedis) -> None:
    """``appendfsync always``: an epoch handed out is never handed out again after a crash."""
    client = redis.Redis.from_url(launcher_redis.url)
    epochs = [client.incr("epoch:app:p0") for _ in range(5)]

    launcher_redis.kill()
    launcher_redis.start()

    assert redis.Redis.from_url(launcher_redis.url).incr("epoch:app:p0") == epochs[-1] + 1


def test_password_is_required_when_set(private_redis: Any) -> None:
    if resolve_backend() == "docker":
        pytest.skip("exercises the local launcher; the docker backend is in use")
    secured: LocalRedis = private_redis(password="s3cret word")
    assert "s3cret" in secured.url
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=secured.port).ping()
    assert redis.Redis.from_url(secured.url).ping()
