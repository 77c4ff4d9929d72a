"""`ray.worker_niceness`: validated at load, and the worker's start-up check that reports a mismatch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamlearn.config import load_config
from streamlearn.errors import ConfigError
from streamlearn.runtime import niceness


def test_default_is_normal_priority_not_rays_15() -> None:
    assert load_config(environ={}).ray.worker_niceness == 0


def test_file_and_environment_set_it(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("ray:\n  worker_niceness: 5\n")
    assert load_config(path, environ={}).ray.worker_niceness == 5
    assert load_config(path, environ={"STREAMLEARN_RAY__WORKER_NICENESS": "19"}).ray.worker_niceness == 19


@pytest.mark.parametrize("value", ["20", "-1", "abc", "2.5", "true"])
def test_out_of_range_is_refused_naming_the_key_and_the_fix(value: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(environ={"STREAMLEARN_RAY__WORKER_NICENESS": value})
    assert "ray.worker_niceness" in exc.value.message
    assert "fix: set ray.worker_niceness: 0" in exc.value.message


def test_check_passes_at_the_process_own_niceness_and_reports_another(caplog: pytest.LogCaptureFixture) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    other = own + 1 if own < 19 else own - 1
    with caplog.at_level("WARNING", logger=niceness.log.name):
        assert niceness.check(own, worker="w0")
        assert not caplog.records
        assert not niceness.check(other, worker="w0")
    [record] = caplog.records
    message = record.getMessage()
    assert message.startswith("worker_niceness_differs")
    assert f"niceness={own}" in message and f"configured={other}" in message and "RAY_worker_niceness" in message
