"""What every local service launcher shares: a state dir, a pid, stop/kill/pause.

A launcher owns one directory (config, data, logs, ``state.json``). Whether
"the" service is running is answered from that directory alone, so a CLI
``up`` in one shell and a pytest session in another agree on it, and two
launchers with different dirs are fully independent instances (chaos tests
start private ones and restart them).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

from connectors.services import paths, process
from connectors.services.errors import ServiceStartError

log = logging.getLogger("connectors.services")


class LocalService:
    """Base of ``LocalKafka`` and ``LocalRedis``: pid tracking and lifecycle verbs."""

    #: Human name used in messages ("Kafka broker", "redis-server").
    name = "service"
    #: Seconds to wait for a graceful stop before SIGKILL.
    stop_timeout = 60.0
    #: The service's config file in its state dir; its path marks our process.
    config_name = "service.conf"
    #: Sub-dir of ``<cache>/services`` holding the default (shared) instance.
    default_dir = "service"

    def __init__(self, state_dir: Path | None, cache_dir: Path | None, port: int) -> None:
        """``state_dir`` None: the shared instance in the cache; ``port`` is a preference (0: any)."""
        self.cache_dir = Path(cache_dir).expanduser().resolve() if cache_dir else paths.cache_dir()
        self.state_dir = Path(state_dir or self.cache_dir / "services" / self.default_dir).expanduser().resolve()
        self.state_file = self.state_dir / "state.json"
        self.preferred_port = port

    @property
    def config_file(self) -> Path:
        return self.state_dir / self.config_name

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def port(self) -> int:
        """The port in use (or last used; the preferred one before any start)."""
        return int(self.state().get("port") or self.preferred_port)

    # -- state ---------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The recorded state (pid, ports, version...); {} before the first start."""
        return process.read_state(self.state_file)

    def _update_state(self, **changes: Any) -> None:
        state = self.state()
        state.update(changes)
        process.write_state(self.state_file, state)

    @property
    def marker(self) -> str:
        """A string only our process has in its command line (its config path)."""
        return str(self.config_file)

    @property
    def pid(self) -> int | None:
        """Pid of our running process, None if it is not running."""
        pid = int(self.state().get("pid") or 0)
        return pid if pid and process.is_ours(pid, self.marker) else None

    def is_running(self) -> bool:
        """True if the process this launcher started is alive (not whether it is ready)."""
        return self.pid is not None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> Self:
        """Start unless running (idempotent), then wait until ready.

        Serialised by a file lock in the state dir: a CLI ``up`` and a test
        session starting at the same moment get one process, not two.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._start_locked()
        return self

    def _start_locked(self) -> None:
        raise NotImplementedError

    def stop(self) -> bool:
        """Stop gracefully (SIGTERM, deadline, SIGKILL). True if something was running."""
        pid = self.pid
        if pid is None:
            self._update_state(pid=None)
            return False
        log.info("stopping %s (pid %d)", self.name, pid)
        process.stop_pid(pid, self.stop_timeout)
        self._update_state(pid=None)
        return True

    def kill(self) -> bool:
        """SIGKILL without a graceful shutdown: a crash, for chaos tests."""
        pid = self.pid
        if pid is None:
            return False
        process.kill_pid(pid)
        self._update_state(pid=None)
        return True

    def pause(self) -> None:
        """SIGSTOP the process (a hung server: sockets open, no answers)."""
        pid = self._require_pid()
        os.killpg(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused process."""
        pid = self._require_pid()
        os.killpg(pid, signal.SIGCONT)

    def restart(self) -> Self:
        """Stop then start again with the same data dir (and ports when still free)."""
        self.stop()
        return self.start()

    def _require_pid(self) -> int:
        pid = self.pid
        if pid is None:
            raise ServiceStartError(f"{self.name} in {self.state_dir} is not running")
        return pid

    # -- readiness -----------------------------------------------------------
    def _wait_ready(self, pid: int, probe: Callable[[], bool], timeout: float,
                    logs: Sequence[Path]) -> None:
        """Poll ``probe`` until true; fail fast (naming the log) if the process dies.

        ``logs`` are the service's own log then its captured stdout/stderr: a
        server that dies before opening its log only speaks on stderr.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not process.pid_alive(pid):
                self._update_state(pid=None)
                reason, where = _last_error(logs)
                raise ServiceStartError(
                    f"{self.name} (pid {pid}) exited during start"
                    + (f": {reason}" if reason else ""),
                    f"see its log {where}",
                )
            if probe():
                return
            if time.monotonic() >= deadline:
                process.stop_pid(pid, 10.0)
                self._update_state(pid=None)
                raise ServiceStartError(
                    f"{self.name} (pid {pid}) not ready after {timeout:.0f}s; stopped it",
                    f"see its log {_last_error(logs)[1]}",
                )
            time.sleep(0.2)


def _last_error(logs: Sequence[Path]) -> tuple[str, Path]:
    """The last error-looking line (shortened) and the log it came from.

    Without any error line, names the first log that has content (or the first log).
    """
    fallback: Path | None = None
    for log_file in logs:
        try:
            lines = log_file.read_text(errors="replace").splitlines()
        except OSError:
            continue
        if lines and fallback is None:
            fallback = log_file
        for line in reversed(lines):
            if any(word in line for word in ("ERROR", "Error", "Exception", "FATAL", "# ")):
                return line.strip()[:240], log_file
    return "", fallback or logs[0]
