"""Push, not polling: a thread subscribed to the app's model channel, reconnecting forever.

Every publish, rollback, pin and unpin is announced on the channel
(`connectors.version_store`) as `partition:version:event`; the subscriber
refreshes that partition at once. Pub/sub delivers at most once and only to
connected subscribers, so after every (re)connect it re-reads every served
pointer (`on_connect`): a message missed while Redis was away, or restarting,
is never fatal.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import redis

from streamlearn import logs

log = logs.get("serving")
_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError)


class Subscriber(threading.Thread):
    def __init__(self, connect: Callable[[], redis.Redis], channel: str, on_message: Callable[[int], None],
                 on_connect: Callable[[], None], retry_s: float = 0.5) -> None:
        super().__init__(name="streamlearn-model-subscriber", daemon=True)
        self._connect, self.channel = connect, channel
        self._on_message, self._on_connect, self._retry_s = on_message, on_connect, retry_s
        self.stopped = threading.Event()
        self.connected = threading.Event()
        self.reconnects = 0

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        down = False
        while not self.stopped.is_set():
            pubsub = None
            try:
                pubsub = self._connect().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self._on_connect()  # catch up: whatever was announced while we were away
                if down:
                    logs.event(log, logging.WARNING, "serving_redis_back", channel=self.channel)
                    self.reconnects += 1
                down = False
                self.connected.set()
                while not self.stopped.is_set():
                    msg = pubsub.get_message(timeout=1.0)
                    if msg is not None and msg.get("type") == "message":
                        self._handle(msg["data"])
            except _ERRORS as exc:
                self.connected.clear()
                if not down:
                    logs.event(log, logging.WARNING, "serving_redis_unreachable", channel=self.channel,
                               error=f"{type(exc).__name__}: {exc}"[:200], keeps="the models loaded")
                down = True
                self.stopped.wait(self._retry_s)
            except Exception as exc:  # a bug must not end pushes for good: log, reconnect, catch up
                logs.event(log, logging.ERROR, "serving_subscriber_error", channel=self.channel, error=f"{type(exc).__name__}: {exc}"[:300])
                self.stopped.wait(self._retry_s)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):  # a dead connection may fail to close; nothing to keep
                        pubsub.close()

    def _handle(self, data: bytes) -> None:
        try:
            self._on_message(int(data.split(b":", 1)[0]))
        except ValueError:
            logs.event(log, logging.WARNING, "serving_bad_message", channel=self.channel, message=data[:100].decode(errors="replace"))
