"""A late ping says where the run loop's thread is, so a stuck client call names itself in the log."""

from __future__ import annotations

import threading

from streamlearn.runtime.worker import thread_stack


def _blocked_in_a_client_call(started: threading.Event, release: threading.Event) -> None:
    started.set()
    release.wait(30)


def test_thread_stack_names_the_call_a_thread_is_blocked_in() -> None:
    started, release = threading.Event(), threading.Event()
    t = threading.Thread(target=_blocked_in_a_client_call, args=(started, release), daemon=True)
    t.start()
    try:
        assert started.wait(10)
        stack = thread_stack(t.ident, frames=4)
        assert len(stack) == 4
        assert any("in _blocked_in_a_client_call" in f for f in stack), stack
        assert stack[-1].split(" in ")[1] in {"wait", "_wait_for_tstate_lock"}, stack  # innermost last
    finally:
        release.set()
        t.join(10)


def test_thread_stack_of_a_thread_that_is_gone_or_unknown_is_empty() -> None:
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    assert thread_stack(t.ident) == []
    assert thread_stack(None) == []
