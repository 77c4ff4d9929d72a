"""The worker's pause on a Redis outage: retry a Redis step until Redis is back, instead of failing the run.

Apart from `worker` only to keep that module small. Redis calls happen
between commit cycles, when no transaction is open, so pausing here holds
back no read_committed reader; the few made inside a cycle (a recovery's
epoch check, the at_least_once offset write) come through `for_partition`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from connectors.redis_store import redacted
from streamlearn import logs
from streamlearn.config import AppConfig
from streamlearn.eos.heartbeat import Heartbeat
from streamlearn.eos.ownership import RedisCall
from streamlearn.eos.task import PartitionTask

log = logs.get("worker")
_T = TypeVar("_T")
_REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


class RedisPause:
    def __init__(self, cfg: AppConfig, stop: threading.Event, heartbeat: Heartbeat, set_phase: Callable[[str], None]) -> None:
        self.cfg, self.stop, self.heartbeat, self.set_phase = cfg, stop, heartbeat, set_phase

    def __call__(self, tasks: list[PartitionTask], fn: Callable[..., Any], *args: Any, give_up_on_stop: bool = False,
                 on_pause: Callable[[], None] | None = None) -> Any:
        """Run fn; while Redis is unreachable, pause (one log line per partition) and retry.

        `on_pause` runs once before the pause: with staggered commits some transactions are
        open at any moment, and a pause must not hold them open (read_committed readers would
        wait on them, and the broker would abort them at transaction.timeout.ms).
        """
        paused = False
        while True:
            try:
                out = fn(*args)
            except _REDIS_ERRORS as exc:
                if not paused:
                    paused = True
                    if on_pause is not None:
                        on_pause()
                    self.set_phase("paused")
                    url = redacted(self.cfg.redis.url.get_secret_value())
                    for t in tasks:
                        logs.event(log, logging.WARNING, "redis_unreachable_pausing", topic=t.topic, partition=t.partition_id, epoch=t.epoch,
                                   committed_offset=t.committed_offset, redis=url, error=type(exc).__name__)
                if give_up_on_stop and self.stop.is_set() and paused:
                    # Stopping with Redis down: the commit is done; the next owner replays from the last checkpoint.
                    return None
                self.heartbeat.beat()  # paused on purpose, not stuck
                self.stop.wait(self.cfg.processing.redis_retry_s)
                continue
            if paused:
                self.set_phase("running")
                for t in tasks:
                    logs.event(log, logging.WARNING, "redis_back_resuming", topic=t.topic, partition=t.partition_id, epoch=t.epoch)
            return out

    def for_partition(self, task_of: Callable[[int], PartitionTask | None], partition_id: int) -> RedisCall:
        """The outage pause for one task's own Redis calls (logged under that partition)."""
        def call(fn: Callable[[], _T]) -> _T:
            task = task_of(partition_id)
            out: _T = self([task] if task is not None else [], fn)
            return out
        return call
