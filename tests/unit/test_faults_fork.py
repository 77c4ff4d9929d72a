"""Crash points draw per process: a forked checkpoint child must not replay its parent's draws."""

from __future__ import annotations

import os

import pytest

from streamlearn import faults


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_children_draw_their_own_numbers() -> None:
    draws = []
    for _ in range(3):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: report its first draw and leave without cleanup
            os.close(r)
            os.write(w, repr(faults._rng.random()).encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        with os.fdopen(r, "rb") as fh:
            draws.append(float(fh.read()))
    # Without a reseed after fork every child inherits the same state and draws the same number,
    # so a crash point at p=0.2 would fire in every checkpoint child or in none.
    assert len(set(draws)) == 3
