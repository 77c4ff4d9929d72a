"""How HTTP reaches the model replicas: the Ray Serve settings `streamlearn serve` starts its local Ray with.

Ray Serve reads these from the environment of its controller, proxy and
replica processes when they start, so they are set before `ray.init` starts
the local Ray (whose processes inherit them). On a cluster you join
(`--ray-address`), its nodes' environment decides; set the same variables there.

`serving.ingress: haproxy` (opt-in; the default is `proxy`) is Ray Serve's HAProxy ingress
(Ray ≥ 2.55, "high throughput" mode in Ray's docs): an HAProxy process (C)
listens on serving.host:port and forwards each request to the replica's
own HTTP server ("direct ingress"). Ray 2.60 then forces the replicas' HTTP
servers onto all interfaces (so HAProxy on another node can reach them) and
binds HAProxy's stats and Prometheus frontends on all interfaces too, which
is why it is not the default: streamlearn's services listen on loopback
unless told otherwise. `proxy` is Ray Serve's Python HTTP proxy:
a uvicorn server that turns each request into a Ray actor call to a replica.
On a shared 2-core machine the Python proxy's per-request CPU is what made
p99 miss its target; bench/serving.py measures both (docs/serving-latency.md).

Everything HAProxy mode keeps at fixed machine-wide places by default
(config file, admin socket, server-state file, metrics/stats/fallback ports)
is made private to this instance, so two `streamlearn serve` on one machine
(or a test run next to a user's) do not take each other's ports or files.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import tempfile
from pathlib import Path

#: Ray Serve's documented latency knobs (its "throughput optimized" mode sets them too): the proxy's router
#: runs on the proxy's own event loop, and the replica runs our handlers on its main loop, instead of handing
#: every request to another thread and back. Our handlers never block (a prediction is tens of microseconds),
#: which is what both require.
LATENCY_KNOBS = {"RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0", "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0"}


#: Where this instance's HAProxy metrics/stats and fallback-proxy ports are picked: below the kernel's ephemeral
#: range (32768+, where a port that is free now is soon some connection's), above Ray's worker ports
#: (10002-19999), apart from Serve's direct-ingress ranges (30000-31000, 40000-41000). HAProxy binds its metrics
#: and stats frontends on all interfaces, so a port must be free there, not only on serving.host.
PORT_RANGE = (20000, 29999)


def _free_port(_host: str, taken: set[int]) -> int:
    for _ in range(200):
        port = random.randint(*PORT_RANGE)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise OSError(f"no free port in {PORT_RANGE[0]}-{PORT_RANGE[1]} for HAProxy after 200 tries")


#: HAProxy's admin socket goes to <dir>/<56-character node id>/admin.sock, and a Unix socket path has at most
#: 97 characters there: the directory is short and under /tmp (not $TMPDIR, which can be long), as Ray's own is.
MAX_SOCKET_PATH = 97
NODE_ID_CHARS = 56


def workdir() -> Path:
    """A private directory for HAProxy's files (remove it with `cleanup` once Serve is shut down)."""
    return Path(tempfile.mkdtemp(prefix="slsrv-", dir="/tmp"))


def cleanup(d: Path) -> None:
    shutil.rmtree(d, ignore_errors=True)


def ingress_env(kind: str, host: str, d: Path) -> dict[str, str]:
    """The RAY_SERVE_* variables for `kind` ("haproxy" or "proxy"), with this instance's own ports and files in `d`."""
    env = dict(LATENCY_KNOBS)
    if kind != "haproxy":
        env["RAY_SERVE_ENABLE_HA_PROXY"] = "0"
        return env
    taken: set[int] = set()
    env.update({
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(d / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(d / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(d),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(d / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(d / "metrics.sock"),
        # Ray Serve's own per-request HTTP metrics come from HAProxy writing one log line per request to a
        # socket that a Python actor parses: CPU per request for numbers GET /metrics already has.
        "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(_free_port(host, taken)),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(_free_port(host, taken)),
        # The Python proxy stays up as HAProxy's fallback while no replica is ready.
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(_free_port(host, taken)),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(_free_port(host, taken)),
        # A direct-ingress replica waits this long before it stops, so that external load balancers notice
        # (default 30 s, which made every SIGTERM of `serve` take 40 s); ours is HAProxy, told at once.
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
    })
    return env


def apply(env: dict[str, str]) -> None:
    """Set each variable unless the environment already has it: an explicit setting wins."""
    for knob, value in env.items():
        os.environ.setdefault(knob, value)
