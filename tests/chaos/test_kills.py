"""SIGKILLs: random worker kills (with bursts), the driver itself, and every injected crash point.

Each scenario streams CHAOS_EVENTS events into 4 partitions while the fault
happens, stops the driver gracefully, and lets the independent checker
prove I1 (nothing lost, nothing duplicated, order kept), I2 (every final
model equals a fault-free replay) and I4 (sampled throughout).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
from typing import Any

import pytest

from tests.chaos.checker import (
    I4Sampler,
    caught_up,
    check_i1_of,
    check_i2,
    finish,
    read_topic,
    scenario_store,
)
from tests.chaos.harness import (
    PARTITIONS,
    PRODUCE_S,
    ChaosEnv,
    Driver,
    Scenario,
    alive,
    descendants,
    random_kills,
    record_result,
    wait_for,
)

DONE_TIMEOUT_S = 600
TRICKLE = 20.0  # records/s of a stream held open for faults still to come: 5 per partition, each its own commit


def _stream_under_kills(sc: Scenario, recs: list[Any], seed: int) -> tuple[Driver, list[dict[str, Any]]]:
    """Start the driver, stream the records, SIGKILL random workers until at least 4 kills and the stream is in."""
    kills: list[dict[str, Any]] = []
    stop = threading.Event()
    d = sc.start()
    producer = sc.produce_in_background(recs)
    killer = threading.Thread(target=random_kills, args=(lambda: sc.owner_pids(d), stop, random.Random(seed), kills),
                              daemon=True)
    killer.start()
    producer.join()
    # Kill until the schedule has both kinds of fault: the draws depend on the seed and on how
    # many loop turns the stream takes, so "at least one burst" is waited for, not assumed.
    wait_for(lambda: len(kills) >= 4 and sum(1 for k in kills if k["burst"]) >= 2, DONE_TIMEOUT_S,
             "at least 4 worker kills, a burst among them")
    stop.set()
    killer.join()
    return d, kills


def test_random_worker_kills_with_bursts(chaos_env: ChaosEnv) -> None:
    """With Ray restarting each killed worker as the next standby (`standby_refill_delay_s: 0`, the default; the
    other path, fresh standbys after a delay, is the next test)."""
    sc = Scenario(chaos_env, "worker-kills", processing={"standby_refill_delay_s": 0.0})
    recs = sc.events()
    with I4Sampler(sc) as i4:
        d, kills = _stream_under_kills(sc, recs, seed=4)
        wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, "all input committed after the kills")
        sc.stop(d)
    assert all(k["partitions"] for k in kills), f"a kill of a process that owned no partition was counted: {kills}"
    bursts = sum(1 for k in kills if k["burst"])
    finish(sc, i4, "SIGKILL of a random worker (incl. bursts 0.1-0.4 s apart), Ray restarts (standby_refill_delay_s 0)",
           len(kills), bursts=bursts)
    assert bursts >= 2, f"the schedule must include a burst: {kills}"


def test_worker_kills_with_a_delayed_standby_refill(chaos_env: ChaosEnv) -> None:
    """`standby_refill_delay_s`: no Ray restarts; a dead worker's partitions go to the standby and a fresh one
    starts after the delay, so the bursts (0.1-0.4 s apart) find no standby and are replaced at once."""
    sc = Scenario(chaos_env, "refill-delay-kills", processing={"standby_refill_delay_s": 2.0})
    recs = sc.events()
    with I4Sampler(sc) as i4:
        d, kills = _stream_under_kills(sc, recs, seed=11)
        wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, "all input committed after the kills")
        sc.stop(d)
    log = d.log()
    assert "standby_refill_delayed" in log, "no death was taken over by a standby with its refill delayed"
    assert "worker_died_restarting" not in log, "Ray restarted a worker although standby_refill_delay_s ends restarts"
    bursts = sum(1 for k in kills if k["burst"])
    finish(sc, i4, "SIGKILL of a random worker (incl. bursts), standby refilled 2 s after a takeover, no Ray restarts",
           len(kills), bursts=bursts)


def _idle_standby(sc: Scenario, d: Driver) -> int | None:
    """The pid of a PartitionWorker that owns nothing and is not a forked checkpoint child (whose parent is a
    PartitionWorker): an idle standby. Only once every partition's owner has published its pid: before that an
    owner looks idle too (CI once killed an owner for the standby while the standby's process was still starting).
    A process whose parent cannot be read is not counted: a checkpoint child that exits between the listing and
    the read looked like a standby (CI once took one for the refilled standby, killed the owner before the refill,
    and the death rightly went to a cold new worker)."""
    workers = set(d.worker_pids())
    owners = sc.owner_pids(d)
    if sorted(p for parts in owners.values() for p in parts) != list(range(PARTITIONS)):
        return None
    idle = [p for p in workers if p not in owners and (parent := _parent(p)) is not None and parent not in workers]
    return idle[0] if len(idle) == 1 else None


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_an_idle_standby_killed_is_replaced_and_takes_the_next_death(chaos_env: ChaosEnv) -> None:
    """Without Ray restarts (standby_refill_delay_s > 0), a standby that dies while idle is found by its
    ping and replaced; the next owner's death then goes to the new standby, not to a cold new worker."""
    sc = Scenario(chaos_env, "standby-kill", processing={"standby_refill_delay_s": 1.0})
    recs = sc.events()
    with I4Sampler(sc) as i4:
        d = sc.start()
        producer = sc.produce_in_background(recs)
        first = wait_for(lambda: _idle_standby(sc, d), 180, "an idle standby")
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: "standby_gone" in d.log(), 60, "the dead standby found by its ping")
        wait_for(lambda: (p := _idle_standby(sc, d)) is not None and p != first, 180, "a new standby")
        victim = wait_for(lambda: next(iter(sc.owner_pids(d)), None), 60, "an owner to kill")
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: "partitions_moved_to_standby" in d.log(), 60, "the owner's partitions moved to the new standby")
        producer.join()
        wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, "all input committed after the kills")
        sc.stop(d)
    assert "worker_replaced" not in d.log(), "a death went to a cold new worker although a standby had been refilled"
    finish(sc, i4, "SIGKILL of the idle standby (found by its ping, refilled), then of an owner", 2)


@pytest.mark.parametrize("refill_delay_s", [2.0, pytest.param(0.0, marks=pytest.mark.extended(
    reason="the [2.0] case kills a stuck worker and recovers its partitions; Ray's restart of a killed worker is "
           "covered by test_random_worker_kills_with_bursts"))])
def test_a_loop_stuck_in_a_call_is_restarted_and_its_partitions_recovered(chaos_env: ChaosEnv, refill_delay_s: float) -> None:
    """A worker's loop blocks for good mid-transaction (`mode=hang`: the process lives and answers pings).
    Its leases lapse, its ping says the loop has not turned for `stuck_loop_s`: it is killed, the log line
    names where it was stuck, and its partitions recover elsewhere. Both paths: no Ray restarts (a refill
    delay; a CI run once never caught up after such a kill on it) and Ray's restart."""
    sc = Scenario(chaos_env, f"stuck-loop-{int(refill_delay_s)}", faults="after_produce_before_commit=1,mode=hang,limit=1",
                  processing={"standby_refill_delay_s": refill_delay_s, "stuck_loop_s": 15.0})
    recs = sc.events()
    with I4Sampler(sc) as i4:
        d = sc.start()
        producer = sc.produce_in_background(recs)
        wait_for(lambda: "worker_stuck_restarting" in d.log(), 180, "the stuck worker found and restarted")
        producer.join()
        wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, "all input committed after the restart")
        sc.stop(d)
    log = d.log()
    stuck = next(line for line in log.splitlines() if "worker_stuck_restarting" in line)
    assert "faults.py" in stuck and "in point" in stuck, f"the log line does not name where the loop was stuck: {stuck}"
    if refill_delay_s:
        assert "worker_died_restarting" not in log, "Ray restarted a worker although standby_refill_delay_s ends restarts"
    finish(sc, i4, f"a worker's loop stuck mid-transaction (restarted after stuck_loop_s 15 s, refill delay {refill_delay_s:.0f} s)",
           sum(sc.crashes().values()))


def test_driver_sigkill_then_fresh_start(chaos_env: ChaosEnv) -> None:
    sc = Scenario(chaos_env, "driver-kill")
    recs = sc.events()
    with I4Sampler(sc) as i4:
        d = sc.start()
        producer = sc.produce_in_background(recs)
        wait_for(lambda: caught_up(sc, len(recs) // 4), DONE_TIMEOUT_S, "a quarter of the input committed")
        ray_pids = descendants(d.pid)
        workers = d.worker_pids()
        os.kill(d.pid, signal.SIGKILL)
        d.proc.wait(30)
        # The local Ray cluster's workers die with their driver (fate sharing).
        wait_for(lambda: not any(alive(p) for p in workers), 60, "the killed driver's PartitionWorkers to exit")
        # Ray's dashboard/runtime-env agents may outlive it for a while: not ours to keep.
        for p in ray_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        d2 = sc.start()
        producer.join()
        wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, "all input committed after the restart")
        sc.stop(d2)
    finish(sc, i4, "SIGKILL of the `streamlearn run` driver, then a fresh start", 1)


CRASH_POINTS = {
    # point: (STREAMLEARN_FAULTS spec, crashes expected per point)
    "take_ownership": ("take_ownership=1,limit=2", {"take_ownership": 2}),
    "during_replay": ("after_commit_before_checkpoint=0.1,during_replay=1,limit=1",
                      {"after_commit_before_checkpoint": 1, "during_replay": 1}),
    # 0.1 per commit: both planned crashes land while the stream still flows. At 0.02 the
    # second crash could miss the window (the restart eats most of it, the catch-up needs
    # few large commits) and the test waited for a crash that no longer had a chance.
    "after_produce_before_commit": ("after_produce_before_commit=0.1,limit=2", {"after_produce_before_commit": 2}),
    "after_commit_before_checkpoint": ("after_commit_before_checkpoint=0.1,limit=2", {"after_commit_before_checkpoint": 2}),
    # With background checkpoints (the default) the point fires in the forked child that writes
    # the checkpoint; `mid_checkpoint_inline` writes on the worker's thread, so the worker dies.
    "mid_checkpoint": ("mid_checkpoint=0.2,limit=2", {"mid_checkpoint": 2}),
    "mid_checkpoint_inline": ("mid_checkpoint=0.2,limit=2", {"mid_checkpoint": 2}),
}


_COVERED = {
    "after_commit_before_checkpoint": "the during_replay case crashes at this point too, and tests/integration/test_inline_samples.py",
    "mid_checkpoint_inline": "the mid_checkpoint case crashes mid-checkpoint (forked writer) in the default tier",
}


@pytest.mark.parametrize("point", [pytest.param(p, marks=pytest.mark.extended(reason=_COVERED[p])) if p in _COVERED else p
                                   for p in CRASH_POINTS])
def test_injected_crash_point(chaos_env: ChaosEnv, point: str) -> None:
    spec, expected = CRASH_POINTS[point]
    sc = Scenario(chaos_env, f"crash-{point.replace('_', '-')}", faults=f"{spec},seed=7",
                  checkpoint_background=not point.endswith("_inline"))
    recs = sc.events()

    def planned() -> bool:
        return all(sc.crashes()[p] >= n for p, n in expected.items())

    with I4Sampler(sc) as i4:
        d = sc.start()
        # The stream's second half trickles (TRICKLE records/s: commits and checkpoints go on) for as long as a
        # planned crash is still to come; once they are all in, it flows at the stream's rate, as the first half.
        # (A slow start used to turn the whole stream into a backlog read in a few batches of max_batch: a point
        # firing at 0.1 per commit then had ~20 chances for its 2 crashes, and nothing came after the stream.)
        half, rate = len(recs) // 2, len(recs) / PRODUCE_S
        sc.produce(recs[:half], over_s=PRODUCE_S / 2)
        sc.produce_until(recs[half:], planned, rate=TRICKLE, then_rate=rate)
        # Every planned crash must have happened before the graceful stop (whose commits are crash points too).
        wait_for(planned, DONE_TIMEOUT_S, f"the planned crashes {expected} (so far {sc.crashes()})")
        wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, "all input committed after the crashes")
        sc.stop(d)
    got = sc.crashes()
    label = {"mid_checkpoint": "crash point `mid_checkpoint` (in the forked checkpoint child)",
             "mid_checkpoint_inline": "crash point `mid_checkpoint`, checkpoints inline (the worker dies)"}.get(point, f"crash point `{point}`")
    finish(sc, i4, label, sum(got[p] for p in expected), crashes=got)
    assert {p: got[p] for p in expected} == expected


def test_at_least_once_worker_kills_lose_nothing(chaos_env: ChaosEnv) -> None:
    """at_least_once under SIGKILL bursts: 0 lost (every input offset answered), duplicates allowed and counted."""
    sc = Scenario(chaos_env, "alo-kills", processing={"guarantee": "at_least_once"})
    recs = sc.events()
    store = scenario_store(sc)
    d, kills = _stream_under_kills(sc, recs, seed=5)
    # at_least_once records offsets in Redis, not in Kafka.
    wait_for(lambda: sum(store.committed_offset(p) or 0 for p in range(PARTITIONS)) >= len(recs), DONE_TIMEOUT_S,
             "all input recorded in Redis after the kills")
    sc.stop(d)
    inputs = read_topic(sc.env.bootstrap, sc.topic, read_committed=False)
    i1 = check_i1_of(sc, inputs)
    i2 = check_i2(sc, inputs, {p: store.committed_offset(p) for p in range(PARTITIONS)})
    bursts = sum(1 for k in kills if k["burst"])
    recoveries = sum(store.counters(p).get("recoveries", 0) for p in range(PARTITIONS))
    record_result({"scenario": sc.name, "fault": "at_least_once: SIGKILL of a random worker (incl. bursts)", "injected": len(kills),
                   "events": i1.inputs, "predictions": i1.predictions, "dead_letters": i1.dead_letters, "lost": len(i1.missing),
                   "duplicated": len(i1.duplicated), "order_ok": None, "model_equal": i2.ok, "bursts": bursts, "recoveries": recoveries})
    print(f"at_least_once kills={len(kills)} bursts={bursts} recoveries={recoveries}: lost={len(i1.missing)} duplicated={len(i1.duplicated)} "
          f"predictions={i1.predictions} inputs={i1.inputs}")
    assert recoveries > 0, "no kill hit a partition's owner: nothing was tested"
    assert i1.missing == [], f"lost under at_least_once: {i1.missing[:10]}"
    assert not i1.wrong_id and i1.predictions + i1.dead_letters >= i1.inputs
    assert i2.ok, f"model differs from a fault-free run: {i2.partitions}"
    assert bursts >= 2, f"the schedule must include a burst: {kills}"
