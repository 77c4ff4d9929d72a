"""Workers Ray is restarting (`runtime/restarts`): partitions never bounce between them.

The fake actors fail every call at once while `down` is set, as Ray does for an
actor it is restarting (max_task_retries=0); the clock moves as the monitor's
turns would. The bounce this guards against, seen in CI and in the eos_2w
benchmark: partitions moved between two restarting actors once a second, each
move counted as a death, a recovery and a worker restart.
"""

from __future__ import annotations

from ray.exceptions import ActorDiedError, ActorUnavailableError

from streamlearn.runtime.restarts import PROBE_EVERY_S, RESTART_WAIT_S
from streamlearn.runtime.roster import Role
from tests.unit.test_placement import Cluster
from tests.unit.test_supervisor import Harness, failed


def _unavailable() -> ActorUnavailableError:
    return ActorUnavailableError("The actor is temporarily unavailable: restarting", None)


def _kill(h: Harness, wid: str) -> None:
    """SIGKILL with restarts left: its run fails, and so does every call until Ray has it up again."""
    h.w(wid).handle.down = _unavailable()
    h.end_run(wid, failed(_unavailable()))


def _turns(h: Harness, seconds: float, step: float = 0.25) -> None:
    """The monitor's turns over `seconds` (check_runs each MONITOR_TICK_S)."""
    for _ in range(round(seconds / step)):
        h.clock.now += step
        h.sup.check_runs()


def _up(h: Harness, wid: str) -> None:
    h.w(wid).handle.down = None


def _two_owners_killed_in_turn() -> Harness:
    """2 owners + 1 standby (the eos_2w benchmark): w1 killed, then w0 while w1 is still restarting."""
    h = Harness(partitions=4, workers=2, standby=1)
    _kill(h, "w1")
    assert h.view()["assignment"] == {"w0": [0, 2], "w2": [1, 3]}  # to the standby that is up, as before
    _turns(h, 2.0)
    _kill(h, "w0")
    return h


def test_partitions_wait_on_a_restarting_standby_instead_of_bouncing() -> None:
    h = _two_owners_killed_in_turn()
    assert h.view()["assignment"] == {"w1": [0, 2], "w2": [1, 3]}  # the one restarting longest
    _turns(h, 10.0)  # both still restarting: every ping to them fails
    assert h.view()["assignment"] == {"w1": [0, 2], "w2": [1, 3]} and h.view()["standby"] == ["w0"]
    assert h.ray.runs("w1") == [[1, 3]] and h.ray.runs("w0") == [[0, 2]]  # no run called on a process not up
    assert h.view()["worker_restarts"] == 2 and h.view()["replacements"] == 0
    assert h.recoveries() == [0, 1, 2, 3]  # one death, one recovery per partition
    pings = [r for r in h.ray.calls if r.method == "ping" and r.actor.wid == "w1"]
    assert 5 <= len(pings) <= 10.0 / PROBE_EVERY_S + 1  # asked again and again, one ping at a time
    _up(h, "w1")
    _turns(h, 1.5)
    assert h.ray.runs("w1") == [[1, 3], [0, 2]] and h.w("w1").run is not None
    assert h.view()["worker_restarts"] == 2 and h.w("w1").deaths == 1 and h.w("w1").down_since is None


def test_waiting_partitions_go_to_the_restarting_actor_that_is_up_first() -> None:
    h = _two_owners_killed_in_turn()  # 0 and 2 wait on w1; w0 restarts too
    _up(h, "w0")  # w1 was killed again during its restart, say: w0 answers first
    _turns(h, 1.5)
    assert h.view()["assignment"] == {"w0": [0, 2], "w2": [1, 3]} and h.view()["standby"] == ["w1"]
    assert h.ray.runs("w0") == [[0, 2], [0, 2]] and h.ray.runs("w1") == [[1, 3]]
    assert h.view()["worker_restarts"] == 2 and h.recoveries() == [0, 1, 2, 3]  # a wait, not a new loss
    _up(h, "w1")
    _turns(h, 1.5)
    assert h.w("w1").down_since is None and h.w("w1").role is Role.STANDBY and h.ray.runs("w1") == [[1, 3]]


def test_a_standby_that_is_up_is_preferred_to_an_older_one_that_is_restarting() -> None:
    h = Harness(partitions=4, workers=2, standby=1)
    _kill(h, "w1")  # → w2; w1 waits as a standby, restarting
    h.sup.standby_workers = 2
    h.sup.fill_standby()  # w3: younger than w1, but up
    assert h.view()["standby"] == ["w1", "w3"]
    _kill(h, "w0")
    assert h.view()["assignment"] == {"w2": [1, 3], "w3": [0, 2]} and h.ray.runs("w3") == [[0, 2]]


def test_a_restarted_standby_that_answers_is_used_at_once() -> None:
    h = _two_owners_killed_in_turn()
    _up(h, "w1")
    _turns(h, 1.5)
    _up(h, "w0")
    _turns(h, 1.5)
    assert h.w("w0").down_since is None and h.w("w0").role is Role.STANDBY
    _kill(h, "w2")
    assert h.view()["assignment"] == {"w0": [1, 3], "w1": [0, 2]} and h.ray.runs("w0") == [[0, 2], [1, 3]]


def test_an_owner_that_never_comes_back_is_replaced_and_its_partitions_owned() -> None:
    h = Harness(partitions=4, workers=2, standby=0)
    _kill(h, "w1")
    _turns(h, RESTART_WAIT_S + 1.0)
    assert "w1" not in h.sup.roster.workers and ("w1", False) in h.ray.killed
    assert h.view()["assignment"] == {"w0": [0, 2], "w2": [1, 3]} and h.ray.runs("w2") == [[1, 3]]
    assert h.view()["replacements"] == 1


def test_two_actors_that_never_come_back_are_replaced_and_every_partition_owned() -> None:
    h = _two_owners_killed_in_turn()
    _turns(h, RESTART_WAIT_S + 5.0)
    assert "w0" not in h.sup.roster.workers and "w1" not in h.sup.roster.workers
    assert {("w0", False), ("w1", False)} <= set(h.ray.killed)
    owners = h.view()["assignment"]
    assert sorted(p for parts in owners.values() for p in parts) == [0, 1, 2, 3]
    assert all(h.w(wid).run is not None and h.ray.runs(wid)[-1] == parts for wid, parts in owners.items())
    assert h.view()["standby"] and all(h.w(wid).down_since is None for wid in h.view()["standby"])


def test_an_actor_ray_gives_up_on_is_replaced_at_once() -> None:
    h = _two_owners_killed_in_turn()
    h.w("w1").handle.down = ActorDiedError()  # restarts exhausted
    _turns(h, 1.0)
    assert "w1" not in h.sup.roster.workers and ("w1", False) in h.ray.killed
    # To the other standby, restarting too (a new actor would not start sooner): it runs them once up.
    assert h.view()["assignment"] == {"w0": [0, 2], "w2": [1, 3]} and h.view()["standby"] == ["w3"]
    _up(h, "w0")
    _turns(h, 1.5)
    assert h.ray.runs("w0") == [[0, 2], [0, 2]] and h.view()["replacements"] == 1


def test_a_restarting_standby_that_never_comes_back_is_dropped_and_refilled() -> None:
    h = Harness(partitions=4, workers=2, standby=1)
    _kill(h, "w1")
    _turns(h, RESTART_WAIT_S + 1.0)
    assert "w1" not in h.sup.roster.workers and ("w1", False) in h.ray.killed
    assert h.view()["standby"] == ["w3"] and h.view()["assignment"] == {"w0": [0, 2], "w2": [1, 3]}


def test_without_standby_a_restarting_owner_keeps_its_partitions_until_it_is_up() -> None:
    h = Harness(partitions=4, workers=2, standby=0)
    _kill(h, "w1")
    _turns(h, 8.0)
    assert h.ray.runs("w1") == [[1, 3]] and h.view()["worker_restarts"] == 1 and h.recoveries() == [1, 3]
    _up(h, "w1")
    _turns(h, 1.5)
    assert h.ray.runs("w1") == [[1, 3], [1, 3]] and h.view()["assignment"] == {"w0": [0, 2], "w1": [1, 3]}


def test_a_standby_killed_while_idle_dies_once_and_its_partitions_then_wait_for_a_process() -> None:
    """An idle standby's death is seen only when it is given partitions: counted then, once."""
    h = Harness(partitions=4, workers=2, standby=1)
    h.w("w2").handle.down = _unavailable()  # killed while idle: nobody noticed
    _kill(h, "w0")  # → w2, whose run fails at once
    h.sup.check_runs()
    assert h.view()["worker_restarts"] == 2 and h.view()["assignment"] == {"w0": [0, 2], "w1": [1, 3]}
    _turns(h, 5.0)
    assert h.view()["worker_restarts"] == 2 and h.ray.runs("w0") == [[0, 2]] and h.ray.runs("w2") == [[0, 2]]
    _up(h, "w0")
    _turns(h, 1.5)
    assert h.ray.runs("w0") == [[0, 2], [0, 2]]


def test_with_placement_too_an_up_standby_is_preferred_on_one_node() -> None:
    c = Cluster(["A"], workers=2, standby=1)  # a local instance: one node, nothing pinned
    w = c.sup.roster.workers
    w["w1"].handle.down = _unavailable()
    c.ray.done[w["w1"].run] = failed(_unavailable())
    c.sup.check_runs()
    c.sup.standby_workers = 2
    c.sup.fill_standby()
    assert [s.wid for s in c.sup.roster.standby()] == ["w1", "w3"]
    c.ray.done[w["w0"].run] = failed(_unavailable())
    c.sup.check_runs()
    assert c.sup.roster.view()["assignment"] == {"w2": [1, 3], "w3": [0, 2]}
