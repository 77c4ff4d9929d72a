"""Port probing on 127.0.0.1: is a port free, and which free port to use instead.

Services listen on loopback only, so every probe binds 127.0.0.1 exactly as
the service would; a port counts as taken if anything is bound or listening.
"""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True if nothing listens on ``host:port`` and we could bind it ourselves."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex((host, port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR like Kafka (the JVM) and redis-server set it: TIME_WAIT
        # leftovers of a killed server must not count as taken, a listener must.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK, avoid: frozenset[int] = frozenset()) -> int:
    """A port the kernel considers free now (a tiny race remains; callers re-check)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port
    raise OSError("no free port found on 127.0.0.1")


def choose_port(preferred: int, avoid: frozenset[int] = frozenset()) -> int:
    """``preferred`` if it is free (and not in ``avoid``), else any free port."""
    if preferred and preferred not in avoid and port_is_free(preferred):
        return preferred
    return free_port(avoid=avoid | {preferred})
