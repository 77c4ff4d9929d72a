"""`streamlearn scale` and `App.scale`: ask the running app's Coordinator for N workers, through Redis.

The request goes into Redis (`connectors.rescale_store`), keyed by app and
input topic with a sequence number; the Coordinator's monitor applies it and
writes its progress back. So the caller needs Redis only, not a Ray
connection: it works from any machine, for an app on any Ray cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from connectors.redis_store import open_store
from connectors.rescale_store import RescaleStore
from streamlearn.config import AppConfig
from streamlearn.errors import ConfigError, StreamlearnError
from streamlearn.ops.status import check_services


class ScaleFailed(StreamlearnError):
    pass


def request_scale(cfg: AppConfig, workers: int, timeout_s: float = 300.0,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Ask for `workers` and wait until the Coordinator has applied it; what it reports (assignment, moves)."""
    if workers < 1:
        raise ConfigError(f"--workers: {workers} is not a worker count", hint="give 1 or more")
    check_services(cfg)
    requests = RescaleStore(open_store(cfg.redis, cfg.app, cfg.kafka.input_topic))
    if not requests.coordinator_running():
        raise ScaleFailed(f"no running app '{cfg.app}' on topic '{cfg.kafka.input_topic}' (no Coordinator alive in Redis)",
                          hint="start it with `streamlearn run -c app.yaml`; `scale` changes a running app only")
    seq = requests.request(workers)
    say = progress or (lambda _msg: None)
    say(f"request #{seq}: {workers} worker(s) for app '{cfg.app}'")
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        st = requests.state()
        if st.get("seq", 0) > seq:
            raise ScaleFailed(f"request #{seq} was overtaken by request #{st['seq']} before it was applied",
                              hint="the newest request wins; check `streamlearn status`")
        if st.get("seq") == seq:
            if st["message"] != last:
                last = st["message"]
                say(f"{st['phase']}: {last}")
            if st["phase"] == "applied":
                return st
            if st["phase"] == "failed":
                raise ScaleFailed(f"the Coordinator could not scale to {workers} worker(s): {st['message']}",
                                  hint="see the Coordinator's log lines rescale_*/handoff_*")
        elif not requests.coordinator_running():
            raise ScaleFailed(f"app '{cfg.app}' stopped before request #{seq} was applied")
        time.sleep(0.2)
    raise ScaleFailed(f"request #{seq} for {workers} worker(s) not applied within {timeout_s:.0f} s",
                      hint="the Coordinator may be busy replacing a worker; it applies the request when it can (--timeout to wait longer)")
