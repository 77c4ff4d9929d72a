"""The compose stack, Prometheus config and Grafana dashboard agree with each other and with the code.

No Docker engine is needed: these check the files' structure and that every
series the dashboard queries is one the metrics endpoint exports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from streamlearn.config import load_config
from streamlearn.ops import metrics

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def test_app_runs_on_a_ray_head_against_the_compose_services() -> None:
    svc = _compose()["services"]
    app = svc["app"]
    assert app["build"]["dockerfile"] == "docker/Dockerfile" and (DOCKER / "Dockerfile").exists()
    env = app["environment"]
    # The in-network Kafka listener the broker advertises to containers.
    assert env["STREAMLEARN_KAFKA__BOOTSTRAP"] in svc["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].replace("DOCKER://", "")
    assert env["STREAMLEARN_REDIS__URL"].startswith("redis://redis:")
    cmd = " ".join(app["command"])
    assert "ray start --head" in cmd and "--ray-address auto" in cmd
    # The config the container uses loads, with the compose overrides applied.
    cfg_path = Path(__file__).resolve().parents[2] / env["STREAMLEARN_CONFIG"].removeprefix("/app/")
    environ = {k: str(v) for k, v in env.items() if k.startswith("STREAMLEARN_") and "__" in k}
    cfg = load_config(cfg_path, environ)
    assert cfg.metrics.host == "0.0.0.0" and cfg.kafka.bootstrap == "kafka:29092"
    assert f"127.0.0.1:{cfg.metrics.port}:{cfg.metrics.port}" in app["ports"]
    # Every published port stays on the loopback interface.
    for name, s in svc.items():
        for port in s.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_monitoring_profile_scrapes_the_app() -> None:
    svc = _compose()["services"]
    for name in ("prometheus", "grafana"):
        assert svc[name]["profiles"] == ["monitoring"]
    prom = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"app:{svc['app']['environment']['STREAMLEARN_METRICS__PORT']}"]
    for mount in svc["grafana"]["volumes"] + svc["prometheus"]["volumes"]:
        host = mount.split(":", 1)[0]
        assert (DOCKER / host).exists(), mount


def test_dashboard_queries_only_exported_series() -> None:
    dash = json.loads((DOCKER / "grafana" / "dashboards" / "streamlearn.json").read_text())
    exported = set()
    for doc in metrics.METRICS:
        base = metrics.full_name(doc)
        exported |= {base, f"{base}_bucket", f"{base}_sum", f"{base}_count"} if doc.kind == "histogram" else {base}
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    used = {m for e in exprs for m in re.findall(r"\bstreamlearn_[a-z_]+", e)}
    assert used and used <= exported, used - exported
    # Every documented series appears on the dashboard (except the bare offsets/refusals).
    shown = {u.removesuffix("_bucket") for u in used}
    for doc in metrics.METRICS:
        if doc.name not in ("committed_offset", "checkpoint_offset", "checkpoints_refused", "checkpoint_child_timeouts"):
            assert metrics.full_name(doc) in shown, doc.name
