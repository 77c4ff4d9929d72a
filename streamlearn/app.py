"""The public Python API: embed a streamlearn app without the CLI.

The CLI (``streamlearn run``/``status``) is one user of this class; a
notebook, a service's own ``main`` or a test is another. It keeps the small
surface Ray Serve's ``serve.run`` has: load a config, run (blocking or in a
background thread), stop, read status. Everything else stays internal.

Example (needs Kafka and Redis up, e.g. ``streamlearn services up``)::

    from streamlearn import App

    app = App.from_file("examples/app.yaml", overrides={"processing": {"workers": 1}})
    final = app.run(until_idle_s=5)          # blocks; returns the final status
    print(final["totals"]["events"])
    print(app.status()["totals"])            # read from Kafka + Redis, learner or not
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from streamlearn.config import AppConfig, load_config

StatusHook = Callable[[dict[str, Any]], None]


def caught_up(status: dict[str, Any]) -> bool:
    """True when every partition is running with nothing left to read, or halted.

    A halted partition (phase ``failed``: Kafka refuses one of its outputs for
    good) makes no progress until an operator acts, so waiting for its lag to
    drain would never end; its error is in the status.
    """
    parts = status.get("partitions") or []
    return bool(parts) and all(r["phase"] == "failed" or (r["phase"] == "running" and r["lag"] == 0) for r in parts)


class IdleStop:
    """Stop rule for ``run``: caught up (``caught_up``) for ``seconds`` in a row."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._since: float | None = None

    def __call__(self, status: dict[str, Any]) -> bool:
        if not caught_up(status):
            self._since = None
            return False
        if self._since is None:
            self._since = time.monotonic()
        return time.monotonic() - self._since >= self.seconds


class App:
    """One streamlearn app: its validated config and, while running, its driver."""

    def __init__(self, config: AppConfig, ray_address: str | None = None) -> None:
        self.config = config
        self.ray_address = ray_address
        self._runner: Any = None
        self._thread: threading.Thread | None = None
        self._result: dict[str, Any] = {}
        self._error: BaseException | None = None

    @classmethod
    def from_file(cls, path: str | Path | None, overrides: Mapping[str, Any] | None = None,
                  ray_address: str | None = None) -> App:
        """Load ``path`` (YAML) with ``STREAMLEARN_*`` environment overrides, then ``overrides``."""
        return cls(load_config(path, overrides=overrides), ray_address)

    def run(self, until_idle_s: float | None = None, on_status: StatusHook | None = None,
            install_signals: bool = True, status_every_s: float = 1.0) -> dict[str, Any]:
        """Run in this thread until stopped (``stop``, SIGINT/SIGTERM) or idle; the final status.

        ``on_status`` gets the status every ``status_every_s`` (each costs Redis and broker round
        trips for every partition); ``until_idle_s`` reads it every second at the least."""
        from streamlearn.runtime.runner import Runner

        self._runner = Runner(self.config, self.ray_address)
        stop_when = IdleStop(until_idle_s) if until_idle_s is not None else None
        every = min(status_every_s, 1.0) if stop_when is not None else status_every_s
        return dict(self._runner.run(on_status=on_status, stop_when=stop_when, install_signals=install_signals,
                                     status_every_s=every))

    def start(self, until_idle_s: float | None = None, on_status: StatusHook | None = None) -> App:
        """Run in a background thread (no signal handlers); ``wait`` or ``stop`` it later."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"app {self.config.app!r} is already running")

        def target() -> None:
            try:
                self._result = self.run(until_idle_s, on_status, install_signals=False)
            except BaseException as exc:  # handed to wait(), which re-raises it in the caller
                self._error = exc

        self._thread = threading.Thread(target=target, name=f"streamlearn-{self.config.app}", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Wait for a ``start``-ed run to end; its final status (re-raises its error)."""
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise TimeoutError(f"app {self.config.app!r} still running after {timeout_s} s")
        if self._error is not None:
            raise self._error
        return self._result

    def stop(self, timeout_s: float | None = 180.0) -> dict[str, Any]:
        """Ask the run to stop gracefully (commit, final checkpoints), wait, return its final status."""
        if self._runner is not None:
            self._runner.stop_requested.set()
        return self.wait(timeout_s)

    def scale(self, workers: int, timeout_s: float = 300.0, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Change the number of workers of the running app (this one, or one run elsewhere on the same
        Kafka + Redis) by planned hand-offs; what was applied. Same as ``streamlearn scale --workers N``."""
        from streamlearn.ops.scale import request_scale

        return request_scale(self.config, workers, timeout_s, progress)

    def status(self) -> dict[str, Any]:
        """Per-partition status read from Kafka and Redis (what ``streamlearn status --json`` prints)."""
        from streamlearn.ops.status import read_status

        return read_status(self.config)
