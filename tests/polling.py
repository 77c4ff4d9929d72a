"""The one way tests wait: poll a condition until a deadline, failing with what was awaited.

The only sleep is the interval between two polls; nothing waits a fixed time
in the hope that something has happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


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
    while True:
        if check is not None:
            check()
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(every_s)
