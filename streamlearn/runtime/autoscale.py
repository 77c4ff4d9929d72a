"""Lag-driven autoscaling (`processing.autoscale`): how many owning workers the measured lag asks for.

Pure decision logic: no Ray, no Kafka, no Redis, time from a clock. The
Coordinator's monitor feeds it the total input lag every few seconds and
acts on its answer (rescale, and on a cluster a resource request so Ray's
autoscaler can add nodes). Kept apart so that every rule below is tested
with a fake clock, and the Coordinator only wires it.

Why each rule:

- **Smoothing** (mean of the last `SAMPLES` samples, no decision before the
  window is full): one commit landing just before or after a sample moves the
  lag by a whole batch; a single sample must not resize the app.
- **Cooldown** (`cooldown_s`): at most one change per cooldown, counted from
  the start too. A resize moves partitions, and a moved partition's lag
  grows during its hand-off; deciding again before that has settled would
  chase the resize's own effect. The window is emptied after a change for
  the same reason.
- **A band for scaling down**: up as soon as the smoothed lag needs more
  workers (`ceil(lag / target_lag_per_worker)`), down only to a count that
  would carry the lag at `DOWN_BAND` of the target each. Load that hovers
  around a threshold then settles on the higher count instead of flapping.
- **Bounds**: always within `min_workers..max_workers`; above the number of
  input partitions a worker would idle, so that caps the count too (never
  below `min_workers`, which is the operator's floor).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from streamlearn.config_sections import AutoscaleConfig

SAMPLES = 3
DOWN_BAND = 0.7


def total_lag(status: Mapping[str, Any]) -> int:
    """Input records not yet committed, summed over partitions (high watermark − committed offset).

    From the status the Coordinator already collects (`ops.status.collect`). A
    partition never committed yet counts its position-based lag; in label mode
    the label partition's lag counts too (both streams must be read).
    """
    total = 0
    for row in status.get("partitions") or []:
        high, committed = row.get("high_watermark"), row.get("committed_offset")
        if high is None:
            continue
        lag = max(int(high) - int(committed), 0) if committed is not None else int(row.get("lag") or 0)
        labels = row.get("labels")
        if isinstance(labels, Mapping):
            lag += int(labels.get("lag") or 0)
        total += lag
    return total


class Autoscaler:
    """Decides a new worker count from lag samples; None means "keep what there is"."""

    def __init__(self, cfg: AutoscaleConfig, clock: Callable[[], float]) -> None:
        self.cfg, self.clock = cfg, clock
        self._samples: deque[int] = deque(maxlen=SAMPLES)
        self._last_change = clock()
        self.reason = ""  # why the last change was decided (logged, passed to the rescale)
        # What the cooldown held back at the last sample: (the count the lag asked for, the
        # smoothed lag, seconds of cooldown left); None when nothing was held.
        self.held: tuple[int, float, float] | None = None
        self.lag = 0.0  # the smoothed lag of the last full window (what a decision is based on)

    def bounds(self, partitions: int | None = None) -> tuple[int, int]:
        lo, hi = self.cfg.min_workers, self.cfg.max_workers
        if partitions is not None:
            hi = max(lo, min(hi, partitions))
        return lo, hi

    def decide(self, total_lag: int, workers: int, *, partitions: int | None = None) -> int | None:
        """The desired number of owning workers, or None for no change (see the module's rules)."""
        now = self.clock()
        self.held = None
        self._samples.append(max(int(total_lag), 0))
        if len(self._samples) < SAMPLES:
            return None
        lag = self.lag = sum(self._samples) / len(self._samples)
        lo, hi = self.bounds(partitions)
        target = self.cfg.target_lag_per_worker
        up = _clamp(math.ceil(lag / target), lo, hi)
        down = _clamp(math.ceil(lag / (target * DOWN_BAND)), lo, hi)
        if up > workers:
            desired = up
        elif down < workers:
            desired = down
        else:
            return None
        if now - self._last_change < self.cfg.cooldown_s:
            self.held = (desired, lag, self.cfg.cooldown_s - (now - self._last_change))
            return None
        self._last_change = now
        self._samples.clear()
        self.reason = (f"autoscale: mean lag {lag:.0f} over {SAMPLES} samples, target {target} per worker, "
                       f"bounds {lo}..{hi}: {workers} -> {desired} workers")
        return desired


def _clamp(n: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, n))
