"""`ray.metrics` and `ray.idle_workers`: off by default, and what each turns into for the local Ray instance."""

from __future__ import annotations

from pathlib import Path

from streamlearn.config import load_config
from streamlearn.runtime import ray_api


def test_defaults_turn_both_off() -> None:
    cfg = load_config(environ={})
    assert (cfg.ray.metrics, cfg.ray.idle_workers) == (False, False)
    assert ray_api.local_overhead(metrics=cfg.ray.metrics, idle_workers=cfg.ray.idle_workers) == {
        "enable_metrics_collection": False, "num_workers_soft_limit": 0}


def test_turned_on_leaves_rays_own_defaults(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("ray:\n  metrics: true\n")
    cfg = load_config(path, environ={"STREAMLEARN_RAY__IDLE_WORKERS": "true"})
    assert (cfg.ray.metrics, cfg.ray.idle_workers) == (True, True)
    assert ray_api.local_overhead(metrics=True, idle_workers=True) == {}
    assert ray_api.local_overhead(metrics=True, idle_workers=False) == {"num_workers_soft_limit": 0}
