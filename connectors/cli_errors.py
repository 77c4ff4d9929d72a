"""One error printer for every command line: what happened on one line, the fix on the next.

Shared by `streamlearn` (engine errors and service outages), `streamlearn
services` and the demo, so every tool fails the same way: no traceback, a
message naming what and where, a hint naming the fix.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def print_error(head: str, message: str, hint: str | None = None, *, indent: str = "  ",
                write: Callable[[str], object] | None = None) -> None:
    """`{head} {message}`, then `{indent}hint: {hint}` when there is one; stderr unless `write` is given."""
    out = write if write is not None else (lambda line: print(line, file=sys.stderr))
    out(f"{head} {message}")
    if hint:
        out(f"{indent}hint: {hint}")
