"""checkpoint_min_interval_s: a checkpoint due by count waits for the least interval; the time trigger does not."""

from __future__ import annotations

from typing import Any

from streamlearn.config import ProcessingConfig
from streamlearn.eos.checkpointing import Checkpoints
from streamlearn.model.model_state import ModelState


def _ckpts(**processing: Any) -> Checkpoints:
    pc = ProcessingConfig.model_validate(processing)
    c = Checkpoints(pc, store=None, topic="t", partition_id=0, ckpt_key=b"k" * 32, ctx=dict)  # type: ignore[arg-type]
    c.restored(ModelState(None, None, 0, 0, 0))
    c.started = 100.0  # the last checkpoint's state, taken at t=100 s
    return c


def _state(events: int) -> ModelState:
    return ModelState(None, None, events, events, events)


def test_count_waits_for_the_least_interval() -> None:
    c = _ckpts(checkpoint_every_events=10_000, checkpoint_every_s=5.0)  # the default least interval, 1 s
    assert c.pc.checkpoint_min_interval_s == 1.0
    assert not c.due(_state(50_000), 100.2)  # five counts' worth in 0.2 s: not yet
    assert not c.due(_state(50_000), 100.99)
    assert c.due(_state(50_000), 101.0)
    assert not c.due(_state(9_999), 104.0)  # a slow stream: neither count nor time
    assert c.due(_state(9_999), 105.0)  # the time trigger


def test_share_scales_the_interval_too() -> None:
    """A partition joins another's round when half-way by count and half the least interval has passed."""
    c = _ckpts(checkpoint_every_events=10_000, checkpoint_every_s=0)
    assert not c.due(_state(5_000), 100.4, share=0.5)
    assert c.due(_state(5_000), 100.5, share=0.5)


def test_zero_turns_it_off_and_the_time_trigger_is_never_held() -> None:
    c = _ckpts(checkpoint_every_events=100, checkpoint_every_s=0, checkpoint_min_interval_s=0)
    assert c.due(_state(100), 100.0)
    t = _ckpts(checkpoint_every_events=0, checkpoint_every_s=0.2, checkpoint_min_interval_s=5.0)
    assert t.due(_state(1), 100.2)  # every_s below the least interval: by time, as configured
