"""bench.measure.tail_times: the slowest 1 % of a latency window, placed in time."""

from __future__ import annotations

from bench.measure import tail_times


def test_the_slowest_one_percent_in_time_order_relative_to_the_window() -> None:
    t0 = 1000.0  # epoch s the window opened
    window = [((t0 + i / 100) * 1000.0, 50.0) for i in range(400)]  # 4 s of samples at 50 ms
    window[150] = (window[150][0], 900.0)  # a stall 1.5 s in
    window[151] = (window[151][0], 880.0)
    window[390] = (window[390][0], 300.0)
    window[20] = (window[20][0], 260.0)
    assert tail_times(window, t0) == [[0.2, 260.0], [1.5, 900.0], [1.51, 880.0], [3.9, 300.0]]


def test_an_empty_window_has_no_tail() -> None:
    assert tail_times([], 0.0) == []
