"""The recovery benchmark kills from steady state: never before the killed actor is up again as the standby."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from bench import report_text
from bench.kill_pacing import (
    UP,
    WARM,
    EngineLog,
    Gate,
    KillRecord,
    Recovered,
    parse_events,
    run_kills,
)


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def seen(clock: FakeClock, at: float | None) -> Callable[[float], float | None]:
    """An event at `at` (None: never), seen once the clock passed it, and only as one after t."""
    return lambda t: at if at is not None and at >= t and clock.t >= at else None


def gate(clock: FakeClock, up_at: float | None, recovered_at: float = 0.0, every: float = 8.0, max_wait: float = 60.0,
         warm_at: float | None = 0.0) -> Gate:
    return Gate(every, up_after=seen(clock, up_at), recovered=lambda t: clock.t >= recovered_at,
                warm_after=seen(clock, up_at if warm_at == 0.0 else warm_at), max_wait_s=max_wait, clock=clock, sleep=clock.sleep)


def test_standby_up_early_the_kill_waits_for_the_interval() -> None:
    clock = FakeClock()
    rec = gate(clock, up_at=1005.0).wait(KillRecord(at=1000.0, pids=[7], victim_chosen_by="owner"))
    assert 8.0 <= rec.kill_after_prev_s < 8.2
    assert rec.standby_up_wait_s == 5.0
    assert not rec.standby_wait_timed_out and rec.gated_by == ["interval"]


def test_standby_up_late_the_kill_waits_for_it() -> None:
    clock = FakeClock()
    rec = gate(clock, up_at=1013.0).wait(KillRecord(at=1000.0, pids=[7], victim_chosen_by="owner"))
    assert 13.0 <= rec.kill_after_prev_s < 13.2
    assert rec.standby_up_wait_s == 13.0 and rec.gated_by == ["standby_up", "standby_warm"]  # warm as it came up


def test_up_is_not_ready_the_kill_waits_for_the_standbys_warm_up() -> None:
    clock = FakeClock()
    rec = gate(clock, up_at=1007.9, warm_at=1011.0).wait(KillRecord(at=1000.0, pids=[7], victim_chosen_by="owner"))
    assert 11.0 <= rec.kill_after_prev_s < 11.2
    assert rec.standby_up_wait_s == 7.9 and rec.standby_warm_wait_s == 11.0 and rec.gated_by == ["standby_warm"]


def test_the_first_kill_waits_until_every_actor_of_the_run_is_warm() -> None:
    clock = FakeClock()
    g = Gate(8.0, up_after=lambda t: None, recovered=lambda t: True, all_warm=lambda: clock.t >= 1005.0, clock=clock, sleep=clock.sleep)
    rec = g.first(1003.0)
    assert 1005.0 <= rec.at < 1005.2 and rec.gated_by == ["standby_warm"] and not rec.standby_wait_timed_out
    clock = FakeClock()
    never = Gate(8.0, up_after=lambda t: None, recovered=lambda t: True, all_warm=lambda: False, max_wait_s=10.0, clock=clock,
                 sleep=clock.sleep)
    rec = never.first(1003.0)
    assert 1013.0 <= rec.at < 1013.2 and rec.standby_wait_timed_out


def test_an_unrecovered_partition_holds_the_kill_back() -> None:
    clock = FakeClock()
    rec = gate(clock, up_at=1005.0, recovered_at=1020.0).wait(KillRecord(at=1000.0, pids=[7], victim_chosen_by="owner"))
    assert rec.kill_after_prev_s >= 20.0 and rec.prev_recovered_before_kill and rec.gated_by == ["recovery", "caught_up"]


def test_recovered_but_still_behind_holds_the_kill_back_until_caught_up() -> None:
    clock = FakeClock()
    g = gate(clock, up_at=1005.0)
    g.caught_up = lambda t: clock.t >= 1014.0
    rec = g.wait(KillRecord(at=1000.0, pids=[7], victim_chosen_by="owner"))
    assert 14.0 <= rec.kill_after_prev_s < 14.2 and rec.prev_caught_up_before_kill and rec.gated_by == ["caught_up"]


def test_a_standby_that_never_comes_up_caps_the_wait_and_says_so() -> None:
    clock = FakeClock()
    rec = gate(clock, up_at=None, max_wait=30.0).wait(KillRecord(at=1000.0, pids=[7], victim_chosen_by="owner"))
    assert 30.0 <= rec.kill_after_prev_s < 30.2
    assert rec.standby_wait_timed_out and rec.standby_up_wait_s is None and rec.gated_by == ["standby_up", "standby_warm"]


def test_an_up_event_from_before_the_previous_kill_does_not_count() -> None:
    clock = FakeClock()
    rec = gate(clock, up_at=995.0, max_wait=20.0).wait(KillRecord(at=1000.0, pids=[7], victim_chosen_by="owner"))
    assert rec.standby_wait_timed_out


def test_a_kill_that_killed_nobody_waits_for_no_restart() -> None:
    clock = FakeClock()
    rec = gate(clock, up_at=None).wait(KillRecord(at=1000.0, pids=[], victim_chosen_by="busiest"))
    assert 8.0 <= rec.kill_after_prev_s < 8.2 and not rec.standby_wait_timed_out


def test_run_kills_paces_every_kill_after_the_first_by_the_gate() -> None:
    clock = FakeClock()
    ups = iter([1009.0, 1030.0])  # the restarted actor: up 6 s after kill 0 (at 1003), 13 s after kill 1 (at 1011)
    up_times: list[float] = []

    def up_after(t: float) -> float | None:
        while not up_times or up_times[-1] < t:
            nxt = next(ups, None)
            if nxt is None:
                return None
            up_times.append(nxt)
        return up_times[-1] if clock.t >= up_times[-1] else None

    g = Gate(8.0, up_after=up_after, recovered=lambda t: True, clock=clock, sleep=clock.sleep)
    killed: list[list[int]] = []
    recs = run_kills(3, 1003.0, g, victim=lambda i: ([100 + i], "owner"), kill=killed.append)
    assert killed == [[100], [101], [102]]
    assert 1003.0 <= recs[0].at < 1003.2 and recs[0].kill_after_prev_s is None and recs[0].standby_up_wait_s is None
    assert 8.0 <= recs[1].kill_after_prev_s < 8.2 and recs[1].standby_up_wait_s == 6.0
    assert recs[2].at >= 1030.0 and 19.0 <= recs[2].kill_after_prev_s < 19.3
    assert set(recs[2].fields()) == {"kill_after_prev_s", "standby_up_wait_s", "standby_warm_wait_s", "standby_wait_timed_out",
                                     "prev_recovered_before_kill", "prev_caught_up_before_kill", "gated_by"}


def _line(t: datetime, event: str, fields: str, actor: str = "Coordinator", pid: int = 4242, level: str = "WARNING") -> str:
    logger = "coordinator" if actor == "Coordinator" else "worker"
    return (f"\x1b[36m({actor} pid={pid})\x1b[0m {t.strftime('%Y-%m-%d %H:%M:%S')},250 {level} streamlearn.{logger} "
            f"{event} {fields}")


def test_the_engines_events_are_read_from_the_run_log_with_their_own_time_and_process(tmp_path: Path) -> None:
    t = datetime(2026, 11, 29, 9, 30, 1)
    log = tmp_path / "run.log"
    log.write_text("\n".join([
        "some driver line",
        _line(t, "worker_died_restarting", "worker=w0 partitions=\"[0, 1, 2, 3]\" error=ActorUnavailableError deaths=1"),
        _line(t, "worker_restarted_up", "worker=w0 down_s=6.1 partitions=[]"),
        _line(t, "standby_warm", "topic=x ms=300.5", actor="PartitionWorker", pid=77, level="INFO"),
        _line(t, "slow_loop_turn", "ms=250", actor="PartitionWorker", pid=77, level="INFO"),  # not a timeline event
    ]) + "\n" + _line(t, UP, "worker=w1")[:30])  # a line still being written: not read yet
    engine = EngineLog(log)
    events = engine.read()
    assert [e.name for e in events] == ["worker_died_restarting", UP, "standby_warm"]
    assert events[1].at == t.timestamp() + 0.25 and events[1].fields == "worker=w0 down_s=6.1 partitions=[]"
    assert events[1].pid == 4242 and events[2].pid == 77
    assert engine.first_after(UP, t.timestamp()) == t.timestamp() + 0.25
    assert engine.first_after(UP, t.timestamp() + 1) is None
    assert engine.first_after(WARM, t.timestamp()) == t.timestamp() + 0.25 and engine.warm_actors() == 1
    with log.open("a") as f:  # the rest of the partial line, then a later event
        f.write(_line(t, UP, "worker=w1")[30:] + "\n")
    assert [e.name for e in engine.read()] == ["worker_died_restarting", UP, "standby_warm", UP]
    assert engine.between(t.timestamp(), None)[0] == [0.25, "worker_died_restarting", 4242,
                                                      "worker=w0 partitions=\"[0, 1, 2, 3]\" error=ActorUnavailableError deaths=1"]


def test_parse_ignores_events_outside_the_timeline() -> None:
    assert parse_events(["2026-11-29 09:30:02,000 WARNING streamlearn.coordinator monitor_error error=x",
                         "2026-11-29 09:30:02,000 INFO streamlearn.worker slow_loop_turn ms=3"]) == []


def test_recovered_needs_every_partition_to_answer_an_event_produced_after_the_kill() -> None:
    samples: list[tuple[float, float, int]] = [(0.0, 999_000.0, p) for p in range(4)]  # before the kill at 1000 s
    rec = Recovered(samples, 4)
    assert not rec.since(1000.0)
    samples += [(1001.0, 1_000_500.0, p) for p in (0, 1, 2)]
    assert not rec.since(1000.0)
    samples.append((1002.0, 1_001_000.0, 3))
    assert rec.since(1000.0)
    assert not rec.since(1010.0)  # a later kill starts over


def test_caught_up_needs_every_partitions_latest_answer_close_to_its_production() -> None:
    samples: list[tuple[float, float, int]] = [(1003.0, 1_000_100.0, p) for p in range(4)]  # answered 2.9 s late
    rec = Recovered(samples, 4, caught_up_ms=1000.0)
    assert rec.since(1000.0) and not rec.caught_up(1000.0)
    samples += [(1004.0, 1_003_500.0, p) for p in (0, 1, 2)]  # 0.5 s: caught up, but partition 3 still behind
    assert not rec.caught_up(1000.0)
    samples.append((1004.1, 1_003_600.0, 3))
    assert rec.caught_up(1000.0)


def test_the_method_text_states_the_rule_only_for_data_measured_with_it() -> None:
    old = report_text.method({"config": {"kills": 5, "kill_every_s": 8.0, "recovery_offered_eps": 5000.0}})
    new = report_text.method({"config": {"kills": 5, "kill_every_s": 8.0, "recovery_offered_eps": 5000.0, "kill_rule": "steady",
                                         "kill_max_wait_s": 60.0, "first_kill_s": 3.0, "caught_up_ms": 1000.0}})
    assert "8.0 s apart" in old and "steady state" not in old
    assert "steady state" in new and "`worker_restarted_up`" in new and "`standby_warm`" in new and "within 1,000 ms" in new
    assert "at most 60 s" in new and "8.0 s apart" not in new
