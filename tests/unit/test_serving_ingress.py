"""serving.ingress → the Ray Serve environment `streamlearn serve` starts its local Ray with."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from streamlearn.config import AppConfig
from streamlearn.errors import ConfigError
from streamlearn.serving import ingress

BASE = {"app": "a", "kafka": {"bootstrap": "localhost:9092", "input_topic": "in", "output_topic": "out"},
        "model": {"estimator": "river.linear_model.LogisticRegression"}}


def test_default_ingress_is_the_loopback_proxy_and_a_wrong_value_names_the_key() -> None:
    # haproxy makes Ray bind replica and stats ports on every interface: opt-in only.
    assert AppConfig.model_validate(BASE).serving.ingress == "proxy"
    assert AppConfig.model_validate({**BASE, "serving": {"ingress": "proxy"}}).serving.ingress == "proxy"
    with pytest.raises((ConfigError, ValueError), match="ingress"):
        AppConfig.model_validate({**BASE, "serving": {"ingress": "nginx"}})


def test_haproxy_mode_is_private_to_the_instance(tmp_path: Path) -> None:
    """Two instances on one machine get their own files and ports, and none of Ray's machine-wide defaults."""
    a, b = ingress.ingress_env("haproxy", "127.0.0.1", tmp_path / "a"), ingress.ingress_env("haproxy", "127.0.0.1", tmp_path / "b")
    assert a["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert a["RAY_SERVE_HAPROXY_METRICS_ENABLED"] == "0"
    for key in ("RAY_SERVE_HAPROXY_CONFIG_FILE_LOC", "RAY_SERVE_HAPROXY_SOCKET_PATH", "RAY_SERVE_HAPROXY_SERVER_STATE_FILE",
                "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH"):
        assert a[key].startswith(str(tmp_path / "a")) and b[key].startswith(str(tmp_path / "b")), key
        assert not a[key].startswith("/tmp/haproxy-serve")
    ports = ("RAY_SERVE_HAPROXY_METRICS_PORT", "RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
             "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT")
    mine = [int(a[k]) for k in ports]
    assert len(set(mine)) == len(mine) and not {8404, 9101, 8500, 9500} & set(mine)
    for port in mine:  # free on every interface (HAProxy binds its metrics/stats there), outside the ephemeral range
        assert ingress.PORT_RANGE[0] <= port <= ingress.PORT_RANGE[1]
        with socket.socket() as s:
            s.bind(("", port))
    assert a["RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD"] == "0"


def test_proxy_mode_turns_haproxy_off_and_keeps_the_latency_knobs() -> None:
    env = ingress.ingress_env("proxy", "127.0.0.1", Path("/unused"))
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "0"
    assert env["RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP"] == "0"
    assert not any("HAPROXY" in k for k in env)


def test_the_admin_socket_path_fits_a_unix_socket() -> None:
    """HAProxy refused to start with the socket under a long temporary directory ("too long (max 97)")."""
    d = ingress.workdir()
    try:
        sock = Path(ingress.ingress_env("haproxy", "127.0.0.1", d)["RAY_SERVE_HAPROXY_SOCKET_PATH"])
        assert d.is_dir()
        assert len(str(sock.parent / ("f" * ingress.NODE_ID_CHARS) / sock.name)) <= ingress.MAX_SOCKET_PATH
    finally:
        ingress.cleanup(d)
    assert not d.exists()


def test_an_explicit_environment_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_SERVE_HAPROXY_STATS_PORT", "18404")
    monkeypatch.setenv("RAY_SERVE_HAPROXY_NBTHREAD", "")  # recorded, so the value set below is undone after the test
    monkeypatch.delenv("RAY_SERVE_HAPROXY_NBTHREAD")
    ingress.apply({"RAY_SERVE_HAPROXY_STATS_PORT": "1", "RAY_SERVE_HAPROXY_NBTHREAD": "1"})
    assert os.environ["RAY_SERVE_HAPROXY_STATS_PORT"] == "18404"
    assert os.environ["RAY_SERVE_HAPROXY_NBTHREAD"] == "1"
