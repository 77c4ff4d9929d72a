"""processing.autoscale: the decision rules (runtime/autoscale.py) with a fake clock, and the config checks."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from streamlearn.config import AutoscaleConfig, load_config
from streamlearn.errors import ConfigError
from streamlearn.runtime.autoscale import DOWN_BAND, SAMPLES, Autoscaler, total_lag


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def scaler(**kw: Any) -> tuple[Autoscaler, Clock]:
    cfg = AutoscaleConfig(enabled=True, **{"min_workers": 1, "max_workers": 8, "target_lag_per_worker": 100, "cooldown_s": 30.0, **kw})
    clock = Clock()
    return Autoscaler(cfg, clock), clock


def feed(a: Autoscaler, clock: Clock, lags: list[int], workers: int, every_s: float = 5.0) -> list[int | None]:
    out = []
    for lag in lags:
        clock.t += every_s
        out.append(a.decide(lag, workers))
    return out


def test_step_up_waits_for_the_cooldown_and_a_full_window() -> None:
    a, clock = scaler()
    # A sample every 5 s: 30 s after start the cooldown (30 s) has passed and the window is full;
    # mean 450 → ceil(4.5) = 5. The next sample comes within the new cooldown.
    assert feed(a, clock, [450] * 7, workers=1) == [None] * 5 + [5, None]
    assert "1 -> 5" in a.reason


def test_no_decision_before_the_window_is_full() -> None:
    a, clock = scaler(cooldown_s=0)
    assert feed(a, clock, [900] * (SAMPLES - 1), workers=1) == [None] * (SAMPLES - 1)
    assert feed(a, clock, [900], workers=1) == [8]


def test_step_down_only_below_the_band() -> None:
    a, clock = scaler(cooldown_s=0)
    # 4 workers carry up to 4 × 100; staying at 4 until the lag fits 3 workers at DOWN_BAND of the target.
    just_above = int(3 * 100 * DOWN_BAND) + 5
    assert feed(a, clock, [just_above] * 5, workers=4) == [None] * 5
    # Mean of (215, 215, 150) = 193 fits 3 workers at the band (ceil(193 / 70) = 3); after the change the
    # window starts empty, so the next samples decide nothing.
    assert feed(a, clock, [150] * SAMPLES, workers=4) == [3, None, None]


def test_lag_gone_goes_to_min_workers() -> None:
    a, clock = scaler(min_workers=2, cooldown_s=0)
    assert feed(a, clock, [0] * SAMPLES, workers=6)[-1] == 2


def test_bounds_and_the_partition_cap() -> None:
    a, clock = scaler(max_workers=6, cooldown_s=0)
    assert feed(a, clock, [10_000] * SAMPLES, workers=2)[-1] == 6
    b, clock = scaler(max_workers=6, cooldown_s=0)
    clock.t += 1
    for _ in range(SAMPLES):
        out = b.decide(10_000, 2, partitions=4)
    assert out == 4  # more workers than partitions would idle
    c, clock = scaler(min_workers=3, max_workers=6, cooldown_s=0)
    for _ in range(SAMPLES):
        out = c.decide(0, 6, partitions=2)
    assert out == 3  # the floor wins over the partition cap


def test_out_of_bounds_count_is_brought_back() -> None:
    a, clock = scaler(min_workers=2, max_workers=4, cooldown_s=0)
    assert feed(a, clock, [250] * SAMPLES, workers=1)[-1] == 3
    b, clock = scaler(min_workers=2, max_workers=4, cooldown_s=0)
    assert feed(b, clock, [250] * SAMPLES, workers=7)[-1] == 4


def test_noisy_steady_load_around_a_threshold_changes_at_most_once_per_cooldown() -> None:
    a, clock = scaler(cooldown_s=30.0)
    rng = random.Random(7)
    workers, changes = 2, []
    for _ in range(720):  # one hour, a sample every 5 s, lag 200 ± 25 %: right on the 2 → 3 threshold
        clock.t += 5.0
        n = a.decide(int(200 * rng.uniform(0.75, 1.25)), workers)
        if n is not None:
            changes.append((clock.t, workers, n))
            workers = n
    assert changes, "a load that sometimes needs 3 workers should scale up once"
    times = [t for t, _, _ in changes]
    assert all(b - a >= 30.0 for a, b in itertools.pairwise(times))
    # Once at 3, a lag of at most 250 never fits 2 workers at the band (2 × 70 = 140): no flapping back.
    assert changes == [(changes[0][0], 2, 3)]


def test_alternating_step_load_respects_the_cooldown() -> None:
    a, clock = scaler(cooldown_s=60.0)
    workers, times = 1, []
    for i in range(600):
        clock.t += 1.0
        lag = 800 if (i // 20) % 2 == 0 else 0  # flips every 20 s, faster than the cooldown
        n = a.decide(lag, workers)
        if n is not None:
            times.append(clock.t)
            workers = n
    assert len(times) >= 2
    assert all(b - a >= 60.0 for a, b in itertools.pairwise(times))


def test_window_is_emptied_after_a_change() -> None:
    a, clock = scaler(cooldown_s=0)
    assert feed(a, clock, [900] * SAMPLES, workers=1)[-1] == 8
    # The samples that led to the change do not count again: a full new window is needed.
    assert feed(a, clock, [0] * (SAMPLES - 1), workers=8) == [None] * (SAMPLES - 1)
    assert feed(a, clock, [0], workers=8) == [1]


def test_total_lag_is_high_watermark_minus_committed() -> None:
    status = {"partitions": [
        {"high_watermark": 500, "committed_offset": 120, "lag": 3},
        {"high_watermark": 90, "committed_offset": 95, "lag": 0},  # never negative
        {"high_watermark": 40, "committed_offset": None, "lag": 40},  # never committed: its own lag
        {"high_watermark": None, "committed_offset": None, "lag": 0},
        {"high_watermark": 10, "committed_offset": 10, "lag": 7, "labels": {"lag": 7}},
    ]}
    assert total_lag(status) == 380 + 0 + 40 + 0 + 7
    assert total_lag({"partitions": []}) == 0


def _load(tmp_path: Any, processing: str) -> Any:
    path = tmp_path / "app.yaml"
    path.write_text("processing:\n" + processing)
    return load_config(path, environ={})


def test_config_default_is_off(tmp_path: Any) -> None:
    cfg = _load(tmp_path, "  workers: 2\n")
    assert cfg.processing.autoscale.enabled is False


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("  autoscale: {enabled: true, min_workers: 5, max_workers: 2}\n",
     "processing.autoscale: min_workers (5) is above max_workers (2); fix: raise processing.autoscale.max_workers"),
    ("  autoscale: {enabled: true, min_workers: 0}\n", "processing.autoscale.min_workers"),
    ("  autoscale: {enabled: true, target_lag_per_worker: 0}\n", "processing.autoscale.target_lag_per_worker"),
    ("  autoscale: {enabled: true, cooldown_s: -1}\n", "processing.autoscale.cooldown_s"),
    ("  workers: 9\n  autoscale: {enabled: true, min_workers: 1, max_workers: 4}\n",
     "processing.workers (9) is outside processing.autoscale.min_workers..max_workers (1..4); fix: set processing.workers"),
    ("  autoscale: {enabled: true, max_worker: 4}\n", "processing.autoscale.max_worker: unknown key; fix: did you mean 'max_workers'?"),
])
def test_config_errors_name_the_key_and_the_fix(tmp_path: Any, yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, yaml_text)
    assert expected in err.value.message


def test_workers_outside_bounds_is_fine_when_autoscale_is_off(tmp_path: Any) -> None:
    assert _load(tmp_path, "  workers: 9\n  autoscale: {min_workers: 1, max_workers: 4}\n").processing.workers == 9


def test_resource_request_outside_ray_is_refused_not_raised() -> None:
    import ray

    from streamlearn.runtime import ray_api

    if ray.is_initialized():  # pragma: no cover - another test of this process started Ray
        pytest.skip("Ray is initialized in this process")
    assert ray_api.request_resources(3) == "Ray is not initialized"
    assert ray_api.node() == {}
