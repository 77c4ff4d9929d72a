"""The Coordinator's decisions, against a fake of `ray_api`: no cluster, no Redis, no clock.

Each test scripts how runs end (Ray's real exception types, classified as in
production), what the leases say and what pings answer, then checks what the
Supervisor did: who runs which partitions, who waits as standby, who is a
zombie, what was killed, what was counted.
"""

from __future__ import annotations

from typing import Any

import pytest
from ray.exceptions import (
    ActorDiedError,
    ActorUnavailableError,
    GetTimeoutError,
    RayError,
    RayTaskError,
    TaskCancelledError,
)

from streamlearn.runtime import ray_api
from streamlearn.runtime.ray_api import Outcome
from streamlearn.runtime.roster import Role, Worker
from streamlearn.runtime.supervisor import RETRY_S, STARTUP_GRACE_S, STUCK_MARGIN_S, Supervisor

LEASE_S = 3.0


class Actor:
    """A fake actor handle: what a ping returns (None: no answer); `down`: how every call on it fails
    meanwhile, at once as on Ray with max_task_retries=0 (ActorUnavailableError: Ray is restarting it)."""

    def __init__(self, wid: str) -> None:
        self.wid = wid
        self.ping_reply: dict[str, Any] | None = {"pid": 100 + int(wid[1:]), "loop_age_s": 0.1}
        self.down: RayError | None = None

    def __repr__(self) -> str:
        return f"Actor({self.wid})"


class Ref:
    def __init__(self, actor: Actor, method: str, args: tuple[Any, ...]) -> None:
        self.actor, self.method, self.args = actor, method, args


class FakeRay:
    """Stands in for the `ray_api` module: calls are recorded, runs end when a test says so."""

    def __init__(self) -> None:
        self.calls: list[Ref] = []
        self.done: dict[Ref, Outcome] = {}
        self.killed: list[tuple[str, bool]] = []

    def call(self, handle: Actor, method: str, *args: Any) -> Ref:
        ref = Ref(handle, method, args)
        self.calls.append(ref)
        if handle.down is not None:
            self.done[ref] = failed(handle.down)
        elif method == "ping":
            self.done[ref] = Outcome(value=handle.ping_reply) if handle.ping_reply else failed(GetTimeoutError())
        return ref

    def ready(self, refs: list[Any]) -> list[Any]:
        return [r for r in refs if r in self.done]

    def outcome(self, ref: Any, timeout: float | None = None) -> Outcome:
        return self.done.get(ref) or failed(GetTimeoutError())

    def kill(self, handle: Actor, restart: bool = False) -> None:
        self.killed.append((handle.wid, restart))

    def runs(self, wid: str) -> list[list[int]]:
        return [list(r.args[0]) for r in self.calls if r.method == "run" and r.actor.wid == wid]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failed(exc: RayError) -> Outcome:
    return Outcome(failure=ray_api.classify(exc), exc=exc)


def raised(cause: Exception) -> Outcome:
    return failed(RayTaskError("run", "Traceback ...", cause).as_instanceof_cause())


class Harness:
    def __init__(self, partitions: int = 5, workers: int = 2, standby: int = 1, refill_delay_s: float = 0.0) -> None:
        self.ray = FakeRay()
        self.clock = Clock()
        self.leases: dict[int, str | None] = {}
        self.counted: list[tuple[int, str]] = []
        self.sup = Supervisor(self.ray, Actor, self.leases.get, lambda p, name: self.counted.append((p, name)),
                              lease_s=LEASE_S, standby_workers=standby, refill_delay_s=refill_delay_s, clock=self.clock)
        self.sup.start(list(range(partitions)), workers)

    def w(self, wid: str) -> Worker:
        return self.sup.roster.workers[wid]

    def end_run(self, wid: str, out: Outcome) -> None:
        self.ray.done[self.w(wid).run] = out
        self.sup.check_runs()

    def view(self) -> dict[str, Any]:
        return self.sup.roster.view()

    def recoveries(self) -> list[int]:
        return sorted(p for p, name in self.counted if name == "recoveries")


def test_start_assigns_round_robin_then_starts_standbys() -> None:
    h = Harness()
    assert h.view() == {"assignment": {"w0": [0, 2, 4], "w1": [1, 3]}, "standby": ["w2"], "zombies": [],
                        "worker_restarts": 0, "replacements": 0}
    assert h.ray.runs("w0") == [[0, 2, 4]] and h.ray.runs("w2") == []


def test_dead_process_hands_its_partitions_to_the_standby_and_waits_as_the_next() -> None:
    h = Harness(standby=2)
    h.end_run("w0", failed(ActorUnavailableError("The actor is temporarily unavailable", None)))
    assert h.view()["assignment"] == {"w1": [1, 3], "w2": [0, 2, 4]}
    assert h.view()["standby"] == ["w3", "w0"]  # the older standby first: the restarted one may not be up yet
    assert h.view()["worker_restarts"] == 1 and h.recoveries() == [0, 2, 4]
    assert h.ray.killed == [] and h.w("w0").deaths == 1


def test_actor_gone_for_good_is_killed_and_a_fresh_standby_started() -> None:
    h = Harness()
    h.end_run("w0", failed(ActorDiedError()))
    assert h.view()["assignment"] == {"w1": [1, 3], "w2": [0, 2, 4]}
    assert h.view()["standby"] == ["w3"] and "w0" not in h.sup.roster.workers
    assert h.ray.killed == [("w0", False)]


@pytest.mark.parametrize("death", [ActorUnavailableError("The actor is temporarily unavailable", None), ActorDiedError()])
def test_with_a_refill_delay_the_restart_is_ended_and_a_fresh_standby_starts_after_it(death: RayError) -> None:
    h = Harness(refill_delay_s=5.0)
    h.end_run("w0", failed(death))
    assert h.view()["assignment"] == {"w1": [1, 3], "w2": [0, 2, 4]} and h.ray.runs("w2") == [[0, 2, 4]]
    assert h.ray.killed == [("w0", False)] and "w0" not in h.sup.roster.workers  # no restart: no CPU spent on it now
    assert h.view()["standby"] == [] and h.view()["worker_restarts"] == 1 and h.recoveries() == [0, 2, 4]
    h.clock.now += 4.9
    h.sup.check_runs()
    assert h.view()["standby"] == []
    h.clock.now += 0.2
    h.sup.check_runs()
    assert h.view()["standby"] == ["w3"] and h.sup.refill_at is None


def test_a_death_during_the_refill_delay_goes_to_a_new_worker_at_once() -> None:
    h = Harness(refill_delay_s=5.0)
    h.end_run("w0", failed(ActorDiedError()))
    h.end_run("w1", failed(ActorDiedError()))  # no standby left: replaced by a fresh worker now, not after the delay
    assert h.view()["assignment"] == {"w2": [0, 2, 4], "w3": [1, 3]} and h.ray.runs("w3") == [[1, 3]]
    assert h.view()["standby"] == ["w4"] and h.sup.refill_at is None


def test_without_a_standby_a_refill_delay_changes_nothing() -> None:
    h = Harness(standby=0, refill_delay_s=5.0)
    h.end_run("w1", failed(ActorUnavailableError("connection reset", None)))
    assert h.ray.killed == [] and h.sup.refill_at is None
    h.sup.check_runs()  # the ping answered: Ray's restart of w1 runs its partitions again
    assert h.ray.runs("w1") == [[1, 3], [1, 3]]


def test_without_standby_a_restarting_worker_is_called_again_once_it_answers_a_ping() -> None:
    h = Harness(standby=0)
    h.end_run("w1", failed(ActorUnavailableError("connection reset", None)))
    assert h.ray.runs("w1") == [[1, 3]] and [r.method for r in h.ray.calls if r.actor.wid == "w1"][-1] == "ping"
    h.sup.check_runs()  # the ping answered
    assert h.ray.runs("w1") == [[1, 3], [1, 3]]
    assert h.view()["worker_restarts"] == 1 and h.view()["replacements"] == 0 and h.recoveries() == [1, 3]


def test_without_standby_a_dead_worker_is_replaced_and_counted_once() -> None:
    h = Harness(standby=0)
    h.end_run("w1", failed(ActorDiedError()))
    assert h.view()["assignment"] == {"w0": [0, 2, 4], "w2": [1, 3]}
    assert h.view()["zombies"] == [] and h.view()["replacements"] == 1
    assert h.recoveries() == [1, 3]  # one failure, one recovery per partition


@pytest.mark.parametrize("out", [raised(ConnectionError("Kafka unreachable")), failed(TaskCancelledError())])
def test_run_that_raised_is_called_again_after_a_pause(out: Outcome) -> None:
    h = Harness()
    h.end_run("w0", out)
    assert h.w("w0").run is None and h.w("w0").role is Role.OWNER
    h.clock.now += RETRY_S / 2
    h.sup.check_runs()
    assert h.ray.runs("w0") == [[0, 2, 4]]
    h.clock.now += RETRY_S
    h.sup.check_runs()
    assert h.ray.runs("w0") == [[0, 2, 4], [0, 2, 4]]
    assert h.view()["worker_restarts"] == 0 and h.recoveries() == []


def test_run_that_returned_early_is_called_again() -> None:
    h = Harness()
    h.end_run("w1", Outcome(value={"result": "stopped"}))
    assert h.ray.runs("w1") == [[1, 3], [1, 3]]


def test_failures_while_stopping_change_nothing() -> None:
    h = Harness()
    h.sup.stopping.set()
    h.end_run("w0", failed(ActorUnavailableError("gone", None)))
    assert h.view()["worker_restarts"] == 0 and h.ray.runs("w2") == [] and h.w("w0").run is None


def _lease_check_after(h: Harness, seconds: float) -> None:
    h.clock.now += seconds
    h.sup.check_leases()


def _owned(h: Harness, wid: str) -> None:
    for p in h.w(wid).partitions:
        h.leases[p] = f"{wid}@host:{p}"


def test_expired_lease_and_no_ping_makes_a_zombie_that_retires_when_its_run_returns() -> None:
    h = Harness()
    _owned(h, "w0")
    _owned(h, "w1")
    _lease_check_after(h, 2 * LEASE_S)
    assert h.w("w0").has_owned
    for p in h.w("w0").partitions:
        h.leases[p] = None
    h.w("w0").handle.ping_reply = None  # SIGSTOPped
    _lease_check_after(h, LEASE_S)
    assert h.view() == {"assignment": {"w1": [1, 3], "w2": [0, 2, 4]}, "standby": ["w3"], "zombies": ["w0-zombie"],
                        "worker_restarts": 0, "replacements": 1}
    assert h.recoveries() == [0, 2, 4] and h.ray.killed == []
    h.end_run("w0", Outcome(value={"result": "retired", "lost": [0, 2, 4]}))
    assert h.view()["zombies"] == [] and h.ray.killed == [("w0", False)] and "w0" not in h.sup.roster.workers
    assert h.ray.runs("w0") == [[0, 2, 4]]  # never called again


@pytest.mark.parametrize("out", [raised(RuntimeError("fenced producer")), failed(ActorDiedError())])
def test_zombie_is_retired_however_its_run_ends(out: Outcome) -> None:
    h = Harness()
    h.w("w1").has_owned = True
    h.w("w1").handle.ping_reply = None
    _lease_check_after(h, 2 * LEASE_S)
    assert h.view()["zombies"] == ["w1-zombie"]
    h.end_run("w1", out)
    assert h.view()["zombies"] == [] and h.ray.killed == [("w1", False)] and h.view()["worker_restarts"] == 0


def test_a_worker_that_never_owned_gets_a_startup_grace() -> None:
    h = Harness()
    h.w("w0").handle.ping_reply = None
    _lease_check_after(h, 2 * LEASE_S)
    assert h.view()["zombies"] == [] and not any(r.method == "ping" for r in h.ray.calls)
    _lease_check_after(h, STARTUP_GRACE_S)
    assert "w0-zombie" in h.view()["zombies"] and "w1-zombie" not in h.view()["zombies"]


def test_a_worker_that_answers_is_left_alone_unless_its_loop_is_stuck() -> None:
    h = Harness()
    for wid in ("w0", "w1"):
        h.w(wid).has_owned = True
    h.w("w1").handle.ping_reply = {"pid": 101, "loop_age_s": LEASE_S + STUCK_MARGIN_S + 1}
    _lease_check_after(h, 2 * LEASE_S)
    assert h.view()["zombies"] == [] and h.view()["replacements"] == 0
    assert h.ray.killed == [("w1", True)]  # restarted by Ray; its run then fails and check_runs fails it over


def test_stuck_after_s_sets_when_an_answering_worker_counts_as_stuck() -> None:
    h = Harness()
    h.sup.stuck_after_s = 15.0  # processing.stuck_loop_s
    for wid in ("w0", "w1"):
        h.w(wid).has_owned = True
    h.w("w0").handle.ping_reply = {"pid": 100, "loop_age_s": 14.0}
    h.w("w1").handle.ping_reply = {"pid": 101, "loop_age_s": 16.0, "loop_stack": ["a.py:1 in run", "b.py:2 in commit"]}
    _lease_check_after(h, 2 * LEASE_S)
    assert h.ray.killed == [("w1", True)]


def test_a_fresh_launch_is_not_judged_before_two_leases() -> None:
    h = Harness()
    h.w("w0").has_owned = True
    h.w("w0").handle.ping_reply = None
    _lease_check_after(h, 2 * LEASE_S - 0.1)
    assert h.view()["zombies"] == []


def test_a_lease_seen_while_the_launch_is_fresh_ends_the_startup_grace() -> None:
    """A loop stuck soon after it took its leases is judged after two leases, not after the start-up grace."""
    h = Harness()
    _owned(h, "w0")
    _lease_check_after(h, LEASE_S / 4)  # too fresh to judge, but its leases are seen
    assert h.w("w0").has_owned and h.view()["zombies"] == []
    for p in h.w("w0").partitions:
        h.leases[p] = None  # its loop stopped renewing them
    h.w("w0").handle.ping_reply = None
    _lease_check_after(h, 2 * LEASE_S)
    assert h.view()["zombies"] == ["w0-zombie"]


def test_tick_checks_leases_every_quarter_lease() -> None:
    h = Harness()
    h.w("w0").has_owned = True
    h.w("w0").handle.ping_reply = None
    h.clock.now += 2 * LEASE_S
    h.sup.tick()
    assert h.view()["zombies"] == ["w0-zombie"]


def test_stop_all_stops_everyone_zombies_too_and_reports_each_run() -> None:
    h = Harness()
    h.w("w0").has_owned = True
    h.w("w0").handle.ping_reply = None
    _lease_check_after(h, 2 * LEASE_S)
    h.ray.done[h.w("w1").run] = Outcome(value={"worker": "w1", "result": "stopped"})
    h.ray.done[h.w("w2").run] = failed(ActorUnavailableError("gone", None))
    results = h.sup.stop_all(timeout_s=1.0)
    stopped = sorted(r.actor.wid for r in h.ray.calls if r.method == "stop")
    assert stopped == ["w0", "w1", "w2", "w3"]
    assert {"worker": "w1", "result": "stopped"} in results
    assert {"worker": "w2", "result": "error: ActorUnavailableError"} in results
    assert {"worker": "w0-zombie", "result": "error: GetTimeoutError"} in results
    assert sorted(w for w, _ in h.ray.killed) == ["w0", "w1", "w2", "w3"]


def test_pids_of_answering_workers() -> None:
    h = Harness()
    h.w("w1").handle.ping_reply = None
    assert h.sup.ping(h.w("w0").handle, 5.0) == {"pid": 100, "loop_age_s": 0.1}
    assert h.sup.ping(h.w("w1").handle, 5.0) is None


# ---- reconciling what a live worker reports dropped (issue #14, finding 6) ---------------
def _dropped(h: Harness, wid: str, lost: list[int], holder: str | None) -> None:
    """wid's run lost `lost` (fenced) and still answers pings; those leases are now `holder`'s (None: expired)."""
    _owned(h, wid)
    for p in lost:
        h.leases[p] = holder
    h.w(wid).has_owned = True
    h.w(wid).handle.ping_reply = {"pid": 100, "loop_age_s": 0.1, "partitions": [p for p in h.w(wid).partitions if p not in lost],
                                  "lost": lost}


def test_an_expired_lease_a_live_worker_dropped_goes_to_the_standby() -> None:
    h = Harness()
    _owned(h, "w1")
    _dropped(h, "w0", [2], holder=None)  # e.g. fenced by a zombie that then died: nobody holds 2
    _lease_check_after(h, 2 * LEASE_S)
    assert h.view()["assignment"] == {"w0": [0, 4], "w1": [1, 3], "w2": [2]}
    assert h.ray.runs("w2") == [[2]] and h.view()["standby"] == ["w3"]
    assert h.recoveries() == [2] and h.view()["zombies"] == [] and h.ray.killed == []


def test_a_partition_a_live_worker_dropped_to_a_zombie_is_taken_back() -> None:
    h = Harness()
    _owned(h, "w1")
    _dropped(h, "w0", [0, 4], holder="w9@host:1")  # a woken zombie holds them now
    _lease_check_after(h, 2 * LEASE_S)
    assert h.view()["assignment"] == {"w0": [2], "w1": [1, 3], "w2": [0, 4]}
    assert h.ray.runs("w2") == [[0, 4]]


def test_a_lease_merely_expired_on_a_live_worker_is_left_alone() -> None:
    h = Harness()
    _owned(h, "w1")
    _dropped(h, "w0", [], holder=None)
    h.leases[2] = None  # paused on Redis: it still holds 2 and will renew
    _lease_check_after(h, 2 * LEASE_S)
    assert h.view()["assignment"] == {"w0": [0, 2, 4], "w1": [1, 3]} and h.ray.runs("w2") == []


def test_a_worker_whose_partitions_were_all_handed_on_waits_as_a_standby() -> None:
    h = Harness(standby=1)
    _owned(h, "w1")
    _dropped(h, "w0", [0, 2, 4], holder=None)
    _lease_check_after(h, 2 * LEASE_S)
    assert h.view()["assignment"] == {"w0": [], "w1": [1, 3], "w2": [0, 2, 4]}
    h.end_run("w0", Outcome(value={"result": "retired", "lost": [0, 2, 4]}))
    assert h.ray.runs("w0") == [[0, 2, 4]]  # not called again with nothing to own
    assert h.view()["standby"] == ["w3", "w0"]


@pytest.mark.parametrize(("delay", "standby", "max_restarts", "expected"),
                         [(0.0, 1, -1, -1), (5.0, 1, -1, 0), (5.0, 0, -1, -1), (0.0, 1, 3, 3)])
def test_a_refill_delay_ends_rays_restarts_only_where_a_standby_takes_over(delay: float, standby: int, max_restarts: int,
                                                                          expected: int) -> None:
    from streamlearn.config import ProcessingConfig
    from streamlearn.runtime.coordinator import worker_max_restarts

    pc = ProcessingConfig(standby_refill_delay_s=delay, standby_workers=standby, max_restarts=max_restarts)
    assert worker_max_restarts(pc) == expected


def test_with_a_refill_delay_an_idle_standby_found_dead_is_dropped_and_refilled_after_the_delay() -> None:
    h = Harness(refill_delay_s=5.0)
    h.sup.check_standbys()  # pings w2
    assert [r.method for r in h.ray.calls if r.actor.wid == "w2"] == ["ping"]
    h.sup.check_standbys()  # it answered: pinged again, kept
    assert h.view()["standby"] == ["w2"]
    w2 = h.w("w2")
    h.ray.done[w2.health] = failed(ActorDiedError())
    h.sup.check_standbys()
    assert h.view()["standby"] == [] and ("w2", False) in h.ray.killed and h.sup.refill_at == h.clock.now + 5.0
    h.clock.now += 5.0
    h.sup.check_runs()
    assert h.view()["standby"] == ["w3"]


def test_a_standby_that_is_slow_to_answer_is_kept() -> None:
    h = Harness(refill_delay_s=5.0)
    h.sup.check_standbys()
    h.ray.done[h.w("w2").health] = failed(GetTimeoutError())
    h.sup.check_standbys()
    assert h.view()["standby"] == ["w2"] and h.ray.killed == []


def test_without_a_refill_delay_standbys_are_left_to_rays_restarts() -> None:
    h = Harness()
    h.sup.check_standbys()
    assert [r for r in h.ray.calls if r.method == "ping"] == []
