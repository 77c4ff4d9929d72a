"""The one way tests wait: poll a condition until a deadline, failing with what was awaited.

The only sleep is the interval between two polls; nothing waits a fixed time
in the hope that something has happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from connectors.kafka_io import KafkaUnavailable

#: A service that does not answer one observation in time (a machine-wide stall was seen in CI:
#: two brokers and Redis silent for ~10-30 s at once). The test's reading is retried until its
#: deadline; the behaviour under test is still judged by the assertions that follow.
TRANSIENT = (KafkaUnavailable, redis.exceptions.TimeoutError, redis.exceptions.ConnectionError)


def poll(
    pred: Callable[[], Any],
    timeout_s: float,
    what: str,
    *,
    every_s: float = 0.2,
    check: Callable[[], None] | None = None,
) -> Any:
    """pred()'s first truthy value; AssertionError naming `what` at the deadline.

    `check` runs before every poll and may fail early (e.g. the process under
    test exited), so a dead run does not cost the whole timeout.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        if check is not None:
            check()
        try:
            got = pred()
        except redis.exceptions.AuthenticationError:
            raise  # a wrong password is no stall
        except TRANSIENT as exc:
            got, last_error = None, exc
        if got:
            return got
        if time.monotonic() > deadline:
            why = f" (last observation failed: {type(last_error).__name__}: {last_error})" if last_error is not None else ""
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}{why}")
        time.sleep(every_s)
