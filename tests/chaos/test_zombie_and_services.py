"""Zombie workers (SIGSTOP/SIGCONT) and service faults: Redis restart, Redis outage, Kafka restart."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
import redis as redis_lib

from tests.chaos.checker import I4Sampler, caught_up, finish
from tests.chaos.harness import (
    PARTITIONS,
    PRODUCE_S,
    ChaosEnv,
    Scenario,
    redis_outage,
    wait_for,
    wake_after_take_over,
)

DONE_TIMEOUT_S = 600
OUTAGE_S = 10.0
# Broker-down scenario: open transactions must time out while the broker is away (see its docstring).
TXN_TIMEOUT_MS = 5_000


def _keys(sc: Scenario, p: int, kind: str) -> str:
    return f"streamlearn:{sc.app}:{sc.topic}:{p}:{kind}"


def test_zombie_is_fenced_and_retires(chaos_env: ChaosEnv) -> None:
    sc = Scenario(chaos_env, "zombie", processing={"owner_lease_s": 3.0})
    r = redis_lib.Redis.from_url(chaos_env.redis_url)
    recs = sc.events()
    # The second half is produced only once the zombie is frozen: its partitions must have input
    # left for the new owners, or nothing after the take-over would be written at the new epoch
    # (seen when the workers started late and the zombie had learned all of its partitions' input).
    first, rest = recs[: len(recs) // 2], recs[len(recs) // 2:]
    with I4Sampler(sc) as i4:
        d = sc.start()
        producer = sc.produce_in_background(first, over_s=PRODUCE_S / 2)
        wait_for(lambda: caught_up(sc, len(recs) // 4), DONE_TIMEOUT_S, "a quarter of the input committed")

        def owned_by() -> dict[int, list[int]]:
            out: dict[int, list[int]] = {}
            for p in range(PARTITIONS):
                pid = r.hget(_keys(sc, p, "status"), "pid")
                if pid is not None:
                    out.setdefault(int(pid), []).append(p)
            return out

        owners = wait_for(lambda: {pid: ps for pid, ps in owned_by().items() if pid in d.worker_pids()}, 60, "a worker owning partitions")
        zombie, parts = sorted(owners.items())[0]
        epochs = {p: int(r.get(_keys(sc, p, "epoch")) or 0) for p in parts}
        os.kill(zombie, signal.SIGSTOP)
        producer.join()
        producer = sc.produce_in_background(rest, over_s=PRODUCE_S / 2)
        # It wakes up holding a fenced producer and a stale epoch: it must drop everything and retire.
        wake_after_take_over(r, sc, zombie, parts, epochs)
        producer.join()
        wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, "all input committed")
        sc.stop(d)
    for p in parts:
        ck_epoch = int(r.hget(_keys(sc, p, "ckpt"), "epoch") or 0)
        assert ck_epoch > epochs[p], f"checkpoint of partition {p} was written by epoch {ck_epoch}, the zombie's was {epochs[p]}"
    log = d.log()
    fenced = sorted(p for p in parts if f"ownership_lost topic={sc.topic} partition={p} " in log)
    finish(sc, i4, "zombie: SIGSTOP a worker until its partitions move, then SIGCONT", 1,
            zombie_partitions=parts, fenced_partitions=fenced)
    assert "zombie_retired" in log
    assert fenced, "the zombie never noticed it was fenced"


@pytest.mark.parametrize("service", ["redis", pytest.param("kafka", marks=pytest.mark.extended(
    reason="broker unavailability mid-stream is also covered by test_kafka_broker_down_longer_than_transaction_timeout"))])
def test_service_restarted_mid_run(chaos_env: ChaosEnv, service: str) -> None:
    sc = Scenario(chaos_env, f"{service}-restart")
    recs = sc.events()
    svc = chaos_env.redis if service == "redis" else chaos_env.kafka
    with I4Sampler(sc) as i4:
        d = sc.start()
        producer = sc.produce_in_background(recs)
        wait_for(lambda: caught_up(sc, len(recs) // 3), DONE_TIMEOUT_S, "a third of the input committed")
        svc.restart()
        producer.join()
        wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, f"all input committed after the {service} restart")
        sc.stop(d)
    finish(sc, i4, "Redis restarted mid-run (AOF)" if service == "redis" else "Kafka broker restarted mid-run", 1)


def test_redis_unreachable_for_10s(chaos_env: ChaosEnv) -> None:
    sc = Scenario(chaos_env, "redis-outage")
    recs = sc.events()
    with I4Sampler(sc) as i4:
        d = sc.start()
        producer = sc.produce_in_background(recs)
        wait_for(lambda: caught_up(sc, len(recs) // 3), DONE_TIMEOUT_S, "a third of the input committed")
        redis_outage(sc, d, OUTAGE_S)
        producer.join()
        wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, "all input committed after the outage")
        sc.stop(d)
    log = d.log()
    paused = {p for p in range(PARTITIONS) if f"redis_unreachable_pausing topic={sc.topic} partition={p} " in log}
    finish(sc, i4, f"Redis unreachable for {OUTAGE_S:.0f} s", 1, paused_partitions=sorted(paused))
    assert paused == set(range(PARTITIONS)), f"pause line per partition expected, got {sorted(paused)}"
    assert sc.env.redis_password not in log


def test_kafka_broker_down_longer_than_transaction_timeout(chaos_env: ChaosEnv) -> None:
    """Open transactions time out while the broker is away; the broker's abort fences their producers.

    Nobody else owns those partitions, so each worker must re-own them (new
    producer, same Redis epoch) rather than give them up while it lives on.
    The transaction timeout is this scenario's own, shorter than the harness's
    10 s, so that an outage longer than it costs 8 s of the run, not 15 s, and
    the commit retries during the outage (each bounded by the timeout) turn faster.
    """
    down_s = 8.0  # > TXN_TIMEOUT_MS (5 s), and the broker's JVM start adds to it
    sc, i4, log = _broker_away(chaos_env, "kafka-down", chaos_env.kafka.stop, chaos_env.kafka.start, down_s)
    finish(sc, i4, f"Kafka broker down for {down_s:.0f} s (> transaction timeout)", 1,
            fenced_by_broker="transaction_fenced" in log, **_past_stuck_calls(log))


def _broker_away(chaos_env: ChaosEnv, name: str, away: Callable[[], object], back: Callable[[], object],
                 seconds: float) -> tuple[Scenario, I4Sampler, str]:
    """A third of the stream in, the broker away for `seconds` (away(), then back()), the rest in, a graceful stop."""
    sc = Scenario(chaos_env, name, sections={"kafka": {"transaction_timeout_ms": TXN_TIMEOUT_MS}})
    recs = sc.events()
    with I4Sampler(sc) as i4:
        d = sc.start()
        producer = sc.produce_in_background(recs)
        wait_for(lambda: caught_up(sc, len(recs) // 3), DONE_TIMEOUT_S, "a third of the input committed")
        away()
        try:
            time.sleep(seconds)  # the outage itself, not a synchronisation
        finally:
            back()
        producer.join()
        wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, "all input committed after the outage")
        sc.stop(d)
    return sc, i4, d.log()


def _past_stuck_calls(log: str) -> dict[str, int]:
    """How the loop got past calls that outlived their timeout: given up by the worker (eos/bounded.py),
    or, had one blocked the loop for stuck_loop_s, by the Coordinator killing the worker."""
    return {"calls_given_up": log.count("transaction_call_stuck"), "stuck_restarts": log.count("worker_stuck_restarting")}


def test_kafka_broker_frozen_longer_than_transaction_timeout(chaos_env: ChaosEnv) -> None:
    """The broker stops answering (SIGSTOP) instead of refusing connections, as a broker in a long GC
    pause or on a stalled disk does: requests time out in flight rather than fail at once.

    Its produce requests are retried after the freeze, and the idempotent producer can then find its
    sequence numbers out of order (a fatal producer error). That once halted the partition, taken
    for a refusal of the message; it is the producer's state, so the partition is re-owned with a new
    producer and its batch sent again (connectors/kafka_delivery.py, eos/commit.py `delivery_verdict`).
    """
    frozen_s = 12.0  # > TXN_TIMEOUT_MS and > a call's bound (its 5 s + 5 s): the broker aborts the open transactions when it wakes
    pid = chaos_env.kafka.pid
    assert pid is not None, "the chaos broker is not running"
    sc, i4, log = _broker_away(chaos_env, "kafka-frozen", lambda: os.kill(pid, signal.SIGSTOP),
                               lambda: os.kill(pid, signal.SIGCONT), frozen_s)
    finish(sc, i4, f"Kafka broker frozen (SIGSTOP) for {frozen_s:.0f} s (> transaction timeout)", 1,
            aborted="transaction_aborted" in log, **_past_stuck_calls(log))
    assert "partition_halted" not in log, "a partition halted on what a frozen broker did to its producer"
