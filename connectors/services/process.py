"""Detached service processes tracked by pid in a JSON state file.

Launchers start their servers in a new session (so Ctrl-C in the shell or the
end of a pytest run does not take them down by accident) and remember the pid
in ``state.json``. A pid alone can be reused by the OS after a crash, so
``is_ours`` also checks the process's command line for a marker only our
launcher puts there (the config file path).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from connectors.proctree import cmdline  # also for pid-reuse checks here


def spawn_detached(argv: Sequence[str], log_file: Path, env: dict[str, str] | None = None,
                   cwd: Path | None = None) -> int:
    """Start ``argv`` in its own session, stdout+stderr appended to ``log_file``; return pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=cwd,
            close_fds=True,
        )
    # The Popen object is dropped on purpose: the service must outlive this
    # interpreter. Python would otherwise warn about a still-running child.
    proc.returncode = 0
    return proc.pid


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie waiting to be reaped."""
    if pid <= 0:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        # Field 3 is the state; after the ")" that closes the command name.
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child that already exited."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def is_ours(pid: int, marker: str) -> bool:
    """True if ``pid`` is alive and its command line contains ``marker``."""
    if not pid_alive(pid):
        return False
    line = cmdline(pid)
    # Without /proc (not Linux) we cannot check; trust the pid.
    return marker in line if line else True


def stop_pid(pid: int, timeout: float = 30.0) -> bool:
    """SIGTERM the process group, wait up to ``timeout``, then SIGKILL. True if it ran."""
    if not pid_alive(pid):
        return False
    _signal(pid, signal.SIGTERM)
    if wait_for(lambda: not pid_alive(pid), timeout):
        return True
    _signal(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), 10.0)
    return True


def kill_pid(pid: int) -> None:
    """SIGKILL at once (chaos tests: a crash, not a shutdown)."""
    if pid_alive(pid):
        _signal(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 10.0)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        # The service leads its own session, so its group id is its pid.
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds pass; True if it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def read_state(path: Path) -> dict[str, Any]:
    """The launcher's state file ({} when absent or unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write the state file atomically (a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, path)


def tail(path: Path, lines: int = 5) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])
