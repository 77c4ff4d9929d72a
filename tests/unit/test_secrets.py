"""Secrets never leave the process in clear (issue 14, finding 9): planted ones are grepped for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamlearn.config import load_config, mask
from streamlearn.errors import ConfigError
from streamlearn.ops import cli
from streamlearn.ops.metrics import families
from streamlearn.runtime import ray_api

PLANTED = ("hunter2", "s4sl-pw", "tok-9f", "oauth-sec", "ckpt-sec")
CONFIG = """
redis:
  url: redis://alice:hunter2@127.0.0.1:6379/0
kafka:
  consumer:
    security.protocol: SASL_SSL
    sasl.mechanism: PLAIN
    sasl.username: bob
    sasl.password: s4sl-pw
  producer:
    sasl.oauthbearer.client.secret: oauth-sec
    some.token: tok-9f
checkpoint:
  secret: ckpt-sec
"""


def assert_clean(text: str) -> None:
    leaked = [s for s in PLANTED if s in text]
    assert not leaked, f"secrets {leaked} in: {text[:500]}"


def test_config_output_masks_every_secret_bearing_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(CONFIG)
    assert cli.main(["config", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert_clean(out)
    data = json.loads(out)
    assert data["kafka"]["consumer"]["sasl.password"] == "***" and data["kafka"]["consumer"]["sasl.username"] == "***"
    assert data["kafka"]["consumer"]["security.protocol"] == "SASL_SSL"  # not a secret: kept
    assert data["kafka"]["producer"]["some.token"] == "***"


def test_validation_errors_do_not_echo_credentials(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("redis:\n  url: http://alice:hunter2@example.com:6379/0\nkafka:\n  consumer:\n    sasl.password: s4sl-pw\n"
                    "processing:\n  workers: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    text = f"{err.value.message} {err.value.hint}"
    assert "redis.url" in text and "http://***@example.com" in text
    assert_clean(text)
    with pytest.raises(ConfigError) as err2:
        load_config(None, environ={"STREAMLEARN_CHECKPOINT__SECRET": "", "STREAMLEARN_KAFKA__TRANSACTION_TIMEOUT_MS": "tok-9f"})
    assert "kafka.transaction_timeout_ms" in err2.value.message  # a non-secret key still shows what it got


def test_mask_covers_urls_and_names() -> None:
    got = mask({"a": {"db_password": "x", "url": "rediss://u:p@h:1/0", "plain": "keep"}, "list": ["redis://:pw@h"]})
    assert got == {"a": {"db_password": "***", "url": "rediss://***@h:1/0", "plain": "keep"}, "list": ["redis://***@h"]}


def test_metrics_from_status_carry_no_secret() -> None:
    status = {"app": "a", "partitions": [{"partition": 0, "owner": "w@h:1", "events": 3, "metric": {"name": "Accuracy", "value": 1.0},
                                          "commit_hist": [], "phase": "running"}], "totals": {}}
    assert_clean(repr([list(f.samples) for f in families(status, "a")]))


def test_no_start_without_a_secret_unless_the_dev_key_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMLEARN_CHECKPOINT_SECRET", raising=False)
    cfg = load_config(None, environ={})
    with pytest.raises(ConfigError) as err:
        cfg.signing_secret()
    assert "checkpoint.secret" in err.value.message and "checkpoint.allow_dev_key: true" in (err.value.hint or "")
    assert load_config(None, environ={"STREAMLEARN_CHECKPOINT__ALLOW_DEV_KEY": "true"}).signing_secret() is None
    monkeypatch.setenv("STREAMLEARN_CHECKPOINT_SECRET", "e")
    assert cfg.signing_secret() == b"e"


def test_the_secret_travels_in_the_actor_config_not_in_the_runtime_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLEARN_CHECKPOINT_SECRET", "ckpt-sec")
    monkeypatch.setenv("STREAMLEARN_LOG_LEVEL", "INFO")
    env = ray_api.runtime_env()
    assert_clean(json.dumps(env))
    assert env["env_vars"]["PYTHONHASHSEED"] == ray_api.HASH_SEED and env["env_vars"]["STREAMLEARN_LOG_LEVEL"] == "INFO"
    assert load_config(None, environ={}).to_wire()["checkpoint"]["secret"] == "ckpt-sec"


def test_ray_token_auth_is_explicit_and_cannot_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ray_api.AUTH_MODE_ENV, raising=False)
    ray_api.require_token_auth()
    import os

    assert os.environ[ray_api.AUTH_MODE_ENV] == "token"
    monkeypatch.setenv(ray_api.AUTH_MODE_ENV, "disabled")
    with pytest.raises(ConfigError, match="RAY_AUTH_MODE=disabled"):
        ray_api.require_token_auth()
