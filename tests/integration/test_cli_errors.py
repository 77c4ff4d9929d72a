"""Wrong configuration and unreachable services: one clear line plus a hint, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.engine_helpers import REPO


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamlearn", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


def clean_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith("STREAMLEARN_") or k == "STREAMLEARN_SERVICES"}


def refused_run(tmp_path: Path, config: str, services_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`streamlearn run` with this config file must fail cleanly: exit 2, no traceback."""
    cfg = tmp_path / "app.yaml"
    cfg.write_text(config)
    res = run_cli("run", "-c", str(cfg), env=clean_env(services_env))
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    return res


def services(bootstrap: str, redis_url: str, kafka_extra: str = "", dev_key: bool = True) -> str:
    """A config naming these services (metrics off), plus `kafka_extra` lines under `kafka:`."""
    key = "checkpoint:\n  allow_dev_key: true\n" if dev_key else ""
    return f"kafka:\n  bootstrap: {bootstrap}\n{kafka_extra}redis:\n  url: {redis_url}\nmetrics:\n  port: null\n{key}"


def test_wrong_config_names_key_and_fix(tmp_path: Path, services_env: dict[str, str]) -> None:
    res = refused_run(tmp_path, "processing:\n  workers: 0\n  comit_interval_ms: 5\n", services_env)
    assert "processing.workers" in res.stderr and "processing.comit_interval_ms" in res.stderr
    assert "did you mean 'commit_interval_ms'" in res.stderr
    assert "hint:" in res.stderr


def test_kafka_down_says_which_and_where(tmp_path: Path, redis_url: str, services_env: dict[str, str]) -> None:
    res = refused_run(tmp_path, services("127.0.0.1:1", redis_url), services_env)
    assert "Kafka at 127.0.0.1:1" in res.stderr and "streamlearn services up" in res.stderr


def test_redis_down_says_which_and_where_without_password(tmp_path: Path, kafka_bootstrap: str, services_env: dict[str, str]) -> None:
    res = refused_run(tmp_path, services(kafka_bootstrap, "redis://:topsecret@127.0.0.1:1/0"), services_env)
    assert "Redis at redis://***@127.0.0.1:1/0" in res.stderr
    assert "topsecret" not in res.stderr + res.stdout


def test_missing_input_topic_is_a_clear_config_error(tmp_path: Path, kafka_bootstrap: str, redis_url: str, services_env: dict[str, str]) -> None:
    res = refused_run(tmp_path, services(kafka_bootstrap, redis_url, "  input_topic: no-such-topic-xyz\n"), services_env)
    assert "no-such-topic-xyz" in res.stderr and "streamlearn produce" in res.stderr


def test_run_without_a_checkpoint_secret_refuses_to_start(tmp_path: Path, kafka_bootstrap: str, redis_url: str,
                                                          services_env: dict[str, str]) -> None:
    res = refused_run(tmp_path, services(kafka_bootstrap, redis_url, dev_key=False), services_env)
    assert "checkpoint.secret" in res.stderr and "STREAMLEARN_CHECKPOINT_SECRET" in res.stderr
    assert "checkpoint.allow_dev_key: true" in res.stderr
