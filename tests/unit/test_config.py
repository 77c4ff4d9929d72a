"""Configuration: validated once, errors name the key and the fix, env overrides apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamlearn.config import AppConfig, load_config
from streamlearn.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "app.yaml"
    p.write_text(text)
    return p


def test_defaults_are_valid() -> None:
    cfg = load_config(None, environ={})
    assert cfg.processing.guarantee == "exactly_once"
    assert cfg.group_id == "streamlearn-streamlearn"
    assert cfg.model.estimator == "river.linear_model.LogisticRegression"


def test_env_overrides_nested_keys_with_yaml_scalars(tmp_path: Path) -> None:
    path = write(tmp_path, "app: a1\nprocessing:\n  workers: 2\n")
    cfg = load_config(path, environ={"STREAMLEARN_PROCESSING__WORKERS": "5", "STREAMLEARN_KAFKA__BOOTSTRAP": "h:1234",
                                     "STREAMLEARN_CHECKPOINT_SECRET": "not-a-config-key"})
    assert cfg.processing.workers == 5
    assert cfg.kafka.bootstrap == "h:1234"
    assert cfg.app == "a1"


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("processing:\n  wrokers: 3\n", ("processing.wrokers", "did you mean 'workers'"),
                 id="unknown_key_suggests_the_right_one"),
    pytest.param("processing:\n  workers: 0\n", ("processing.workers", "got 0"), id="bad_value_names_key_and_value"),
    pytest.param("processing:\n  guarantee: maybe_once\n", ("processing.guarantee", "exactly_once"),
                 id="guarantee_must_be_known"),
    pytest.param("model:\n  estimator: river.linear_model.LogisticRegresion\n",
                 ("model.estimator", "river.linear_model.LogisticRegression"), id="estimator_path_is_checked_with_a_suggestion"),
    pytest.param("processing:\n  stuck_loop_s: 5\n", ("processing.stuck_loop_s", "more than processing.owner_lease_s", "fix:"),
                 id="stuck_loop_after_the_lease"),
])
def test_wrong_config_is_refused_naming_the_key_and_the_fix(tmp_path: Path, text: str, expected: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), environ={})
    for part in expected:
        assert part in exc.value.message


def test_missing_file_and_bad_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", environ={})
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "kafka: [unclosed\n"), environ={})


def test_bootstrap_and_redis_url_shapes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kafka\.bootstrap"):
        load_config(write(tmp_path, "kafka:\n  bootstrap: localhost\n"), environ={})
    with pytest.raises(ConfigError, match=r"redis\.url"):
        load_config(write(tmp_path, "redis:\n  url: http://x\n"), environ={})


def test_secrets_are_masked_in_dumps(tmp_path: Path) -> None:
    path = write(tmp_path, "redis:\n  url: redis://:hunter2@127.0.0.1:6379/0\ncheckpoint:\n  secret: s3cr3t\n")
    cfg = load_config(path, environ={})
    dumped = str(cfg.model_dump(mode="json"))
    assert "hunter2" not in dumped and "s3cr3t" not in dumped and "hunter2" not in repr(cfg)
    assert cfg.to_wire()["redis"]["url"].endswith("@127.0.0.1:6379/0")
    assert cfg.checkpoint_secret() == b"s3cr3t"


def test_secret_env_takes_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(write(tmp_path, "checkpoint:\n  secret: fromfile\n"), environ={})
    monkeypatch.setenv("STREAMLEARN_CHECKPOINT_SECRET", "fromenv")
    assert cfg.checkpoint_secret() == b"fromenv"


def test_label_mode_keys_and_defaults() -> None:
    from streamlearn.config import AppConfig

    inline = AppConfig()
    assert not inline.label_mode and inline.samples_topic is None, "inline mode: no sample log unless configured"
    assert AppConfig.model_validate({"kafka": {"samples_topic": "s"}}).samples_topic == "s"  # inline mode, opted in
    cfg = AppConfig.model_validate({"kafka": {"input_topic": "clicks"}, "labels": {"source": "topic"}})
    assert (cfg.label_topic, cfg.samples_topic, cfg.journal_topic) == ("clicks.labels", "clicks.samples", "clicks.join-journal")
    assert (cfg.labels.window_s, cfg.labels.early_window_s) == (600.0, 120.0)


def test_label_mode_without_a_default_label_fails_naming_the_key() -> None:
    import pytest

    from streamlearn.config import load_config
    from streamlearn.errors import ConfigError

    with pytest.raises(ConfigError, match=r"labels\.default_label is required"):
        load_config(None, environ={}, overrides={"labels": {"source": "topic", "on_expiry": "default"}})
    with pytest.raises(ConfigError, match=r"labels\.on_expiry"):
        load_config(None, environ={}, overrides={"labels": {"on_expiry": "keep"}})


def test_stuck_loop_defaults_to_the_lease_plus_a_minute() -> None:
    assert AppConfig().processing.stuck_after_s == AppConfig().processing.owner_lease_s + 60
    assert AppConfig.model_validate({"processing": {"stuck_loop_s": 15}}).processing.stuck_after_s == 15
