"""`streamlearn produce` input files: CSV rows become events, JSONL lines go as they are."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streamlearn.config import AppConfig
from streamlearn.errors import ConfigError
from streamlearn.tools.produce import read_events


def test_csv_rows_become_events(tmp_path: Path) -> None:
    f = tmp_path / "e.csv"
    f.write_text("id,amount,country,label\nx1,12.5,FR,true\nx2,3,DE,\n")
    got = [(eid, orjson.loads(v)) for eid, v in read_events(f, AppConfig())]
    assert got == [
        ("x1", {"id": "x1", "features": {"amount": 12.5, "country": "FR"}, "label": True}),
        ("x2", {"id": "x2", "features": {"amount": 3, "country": "DE"}}),
    ]


def test_jsonl_lines_are_sent_unchanged_even_when_broken(tmp_path: Path) -> None:
    f = tmp_path / "e.jsonl"
    f.write_bytes(b'{"id": 1, "features": {"a": 1}}\n\n{broken\n')
    got = list(read_events(f, AppConfig()))
    assert got == [(1, b'{"id": 1, "features": {"a": 1}}'), (None, b"{broken")]


def test_unknown_file_type_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "e.parquet"
    f.write_bytes(b"")
    with pytest.raises(ConfigError, match="unsupported file type"):
        list(read_events(f, AppConfig()))


class _FakeProducer:
    """Records how long the pacer asked to wait; poll() advances a fake clock."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def poll(self, timeout: float) -> int:
        self.waits.append(timeout)
        self.clock[0] += timeout
        return 0


def test_pacer_holds_the_rate_even_when_waits_are_capped() -> None:
    from connectors.kafka_io import Pacer

    clock = [0.0]
    pacer = Pacer(rate=1.0, max_wait_s=0.25)
    pacer._clock = lambda: clock[0]
    pacer.started = 0.0
    fake = _FakeProducer(clock)
    for _ in range(3):
        pacer.tick(fake)  # type: ignore[arg-type]
    assert clock[0] == 3.0  # 3 messages at 1/s: the third leaves at t=3 s, not earlier
    assert max(fake.waits) <= 0.25
    unpaced = Pacer(rate=None)
    unpaced.tick(fake)  # type: ignore[arg-type]
    assert unpaced.sent == 1 and clock[0] == 3.0


def test_pacer_never_busy_waits_a_gap_shorter_than_a_poll_can_sleep() -> None:
    """At 5,000 msg/s the gap is 0.2 ms; poll() sleeps whole milliseconds, so waiting each gap out was a spin."""
    from connectors.kafka_io import POLL_RESOLUTION_S, Pacer

    clock = [0.0]
    pacer = Pacer(rate=5000.0)
    pacer._clock = lambda: clock[0]
    pacer.started = 0.0
    fake = _FakeProducer(clock)
    for _ in range(1000):
        pacer.tick(fake)  # type: ignore[arg-type]
        clock[0] += 0.00002  # the cost of one produce()
    assert fake.waits and min(fake.waits) >= POLL_RESOLUTION_S
    assert 0.2 - POLL_RESOLUTION_S <= clock[0] <= 0.2 + POLL_RESOLUTION_S  # 1,000 messages still take 0.2 s
