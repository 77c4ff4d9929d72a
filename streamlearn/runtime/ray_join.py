"""Joining an existing Ray cluster (`--ray-address`): checked first, bounded, one clear line on failure.

Why a check before `ray.init(address=...)`: left to itself, Ray retries a
cluster it cannot reach (or that refuses the node's address) forever,
printing warnings and never returning. Two probes, each bounded, turn that
into a `RayClusterUnavailableError` naming the address, the cause and a fix:

1. TCP: something listens at host:port (refused, unresolvable, filtered).
2. GCS: the listener is a Ray GCS and accepts us (an `internal_kv_get` with a
   timeout): a wrong or missing token (`RAY_AUTH_TOKEN`) fails here, and so
   does a port that is not Ray's.

Loopback clusters: Ray rewrites a loopback address (127.0.0.1, localhost) to
the machine's network address before connecting, and registers the driver
under that address too. A cluster whose nodes were started with
`node_ip_address=127.0.0.1` (the one-machine test cluster, which listens on
loopback only) is unreachable there, and the driver would retry for ever.
When the GCS answers on loopback but not on the network address, the driver
joins as a loopback node (`loopback_driver()`), which is Ray's own
"this machine only" mode (`ray_constants.ENABLE_RAY_CLUSTER`) switched on for
the duration of `ray.init`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from streamlearn.errors import ServiceUnavailableError

# Bound on each probe; a cluster that has not answered by then will not answer ray.init either.
CONNECT_TIMEOUT_S = 10.0
_AUTH_HINT = ("set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the cluster's token on this machine, "
              "e.g. from the Kubernetes Secret the nodes use")
_REACH_HINT = ("check the address printed by `ray start --head` (host:port of the GCS, default port 6379) "
               "and that this machine can reach it")


class RayClusterUnavailableError(ServiceUnavailableError):
    """The Ray cluster given by --ray-address cannot be joined: which address, and why."""

    def __init__(self, address: str, cause: str, hint: str = _REACH_HINT) -> None:
        super().__init__(f"Ray cluster at {address} cannot be joined: {cause}", hint=hint)
        self.address = address


@dataclass(frozen=True)
class Target:
    """Where to join: the GCS address, and whether the driver must join as a loopback node."""

    address: str
    loopback_only: bool


def split(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise RayClusterUnavailableError(address, "not of the form host:port",
                                         hint="pass the GCS address, e.g. --ray-address 10.0.0.5:6379, or auto on a node of the cluster")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tcp_open(host: str, port: int, timeout_s: float) -> str | None:
    """None if host:port accepts a TCP connection, else why not (one short phrase)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except socket.gaierror as exc:
        return f"cannot resolve {host} ({exc.strerror})"
    except TimeoutError:
        return f"no answer within {timeout_s:.0f} s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def network_address() -> str | None:
    """This machine's address as Ray would register it (the route to the outside), None if none."""
    from ray._common.network_utils import node_ip_address_from_perspective

    try:
        ip = str(node_ip_address_from_perspective(None))
    except Exception:
        return None
    return None if is_loopback(ip) else ip


def probe_gcs(address: str, timeout_s: float) -> None:
    """A bounded request to the GCS; RayClusterUnavailableError if it is not one, or refuses us."""
    from ray._raylet import GcsClient  # type: ignore[attr-defined]  # not in its .pyi

    result: dict[str, Any] = {}

    def ask() -> None:
        try:
            GcsClient(address=address).internal_kv_get(b"streamlearn-probe", None, timeout=timeout_s)
            result["ok"] = True
        except Exception as exc:  # classified below by name: Ray's error types move between releases
            result["error"] = exc

    # GcsClient's constructor retries a port that is not Ray's for ~40 s with no timeout of
    # its own: a daemon thread bounds it (it ends by itself; nothing waits for it).
    t = threading.Thread(target=ask, name="ray-gcs-probe", daemon=True)
    t.start()
    t.join(timeout_s)
    if result.get("ok"):
        return
    exc = result.get("error")
    if exc is None:
        raise RayClusterUnavailableError(address, f"no Ray GCS answered within {timeout_s:.0f} s (is this port Ray's?)")
    text = str(exc).split(". ")[0][:200]
    if "Authentication" in type(exc).__name__ or "Unauthenticated" in str(exc) or "AuthToken" in str(exc):
        raise RayClusterUnavailableError(address, f"authentication refused ({text})", hint=_AUTH_HINT)
    raise RayClusterUnavailableError(address, f"{type(exc).__name__}: {text}")


def resolve(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Target:
    """Check that `address` (host:port) is a reachable Ray cluster; how to join it."""
    host, port = split(address)
    why = tcp_open(host, port, timeout_s)
    if why is not None:
        raise RayClusterUnavailableError(address, why)
    probe_gcs(address, timeout_s)
    loopback_only = False
    if is_loopback(host):
        net = network_address()
        # Ray would connect to net:port; if nothing answers there, the cluster is loopback-only.
        loopback_only = net is None or tcp_open(net, port, min(timeout_s, 2.0)) is not None
    return Target(address, loopback_only)


@contextlib.contextmanager
def loopback_driver(enabled: bool) -> Iterator[None]:
    """While joining: make Ray keep a loopback address as it is (see the module docstring)."""
    if not enabled:
        yield
        return
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before
