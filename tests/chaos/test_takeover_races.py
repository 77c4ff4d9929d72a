"""Issue #14, findings 6 and 10, on the real CLI with private services.

- A zombie frozen exactly between a recovery's epoch check and its re-take
  (crash point `recover_before_take`, `mode=stop`) wakes after the
  Coordinator has handed its partitions on: the re-take must be refused, the
  zombie must retire, no partition may stay unowned longer than the lease,
  and I1, I2, I4 hold.
- at_least_once through a Redis outage: the offset write pauses instead of
  failing the run, so nothing is re-emitted.
"""

from __future__ import annotations

import os
import signal
import time

import redis as redis_lib
from confluent_kafka import Producer

from tests.chaos.checker import (
    BackgroundSampler,
    I4Sampler,
    caught_up,
    check_i1_of,
    finish,
    read_topic,
    scenario_store,
)
from tests.chaos.harness import (
    PARTITIONS,
    PRODUCE_S,
    ChaosEnv,
    Scenario,
    frozen,
    record_result,
    redis_key,
    redis_outage,
    wait_for,
    wake_after_take_over,
)

DONE_TIMEOUT_S = 600
LEASE_S = 8.0
OUTAGE_S = 10.0


class UnownedSampler(BackgroundSampler):
    """Longest stretch, per partition, during which no worker held its lease (sampled every 0.1 s)."""

    join_s = 10.0

    def __init__(self, r: redis_lib.Redis, sc: Scenario) -> None:
        self.r, self.sc = r, sc
        self.longest = dict.fromkeys(range(PARTITIONS), 0.0)
        self._since: dict[int, float | None] = dict.fromkeys(range(PARTITIONS))
        super().__init__()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            now = time.monotonic()
            for p in range(PARTITIONS):
                held = self.r.exists(redis_key(self.sc, p, "lease"))
                since = self._since[p]
                if held:
                    self._since[p] = None
                elif since is None:
                    self._since[p] = now
                else:
                    self.longest[p] = max(self.longest[p], now - since)


def _refusals(log: str, zombie: int, topic: str, partition: int, epoch: int) -> list[str]:
    """The zombie's own log lines saying its re-take of `partition` at `epoch` was refused by the CAS."""
    lost = f"ownership_lost topic={topic} partition={partition} epoch={epoch} "
    return [ln for ln in log.splitlines() if f"pid={zombie})" in ln and lost in ln and "re-take refused: Redis epoch is now " in ln]


def test_zombie_woken_between_check_and_retake_is_refused(chaos_env: ChaosEnv) -> None:
    """Deterministic by construction, whatever the machine's load.

    The recovery that freezes is triggered by input, not by timing: the first half
    of the input is committed and the stream stands still; then partition 0's
    producer is fenced from outside and exactly one record is produced to it.
    The owner's next transaction is refused (fenced), its recovery finds the Redis
    epoch still its own and SIGSTOPs itself at `recover_before_take` (the marker
    file names it). Only then does the rest of the input flow. A frozen process
    answers no ping, so the Coordinator hands its partitions on and keeps it as a
    zombie (it never kills a zombie whose run is in flight); the test wakes it
    once the new owners hold the partitions, and checks it is still frozen then.
    """
    sc = Scenario(chaos_env, "zombie-retake", processing={"owner_lease_s": LEASE_S},
                  faults="recover_before_take=1,limit=1,mode=stop")
    r = redis_lib.Redis.from_url(chaos_env.redis_url)
    recs = sc.events()
    half = len(recs) // 2 // PARTITIONS * PARTITIONS  # recs[half] is the next record of partition 0
    assert recs[half][0] == 0
    with I4Sampler(sc) as i4:
        d = sc.start()
        sc.produce(recs[:half], over_s=PRODUCE_S / 2)
        wait_for(lambda: caught_up(sc, half), DONE_TIMEOUT_S, "the first half of the input committed")
        wait_for(lambda: all(r.exists(redis_key(sc, p, "lease")) for p in range(PARTITIONS)), 60, "every partition leased")
        # Each partition's owner pid and epoch, read while the stream stands still. Read after the freeze they could
        # already be the new owner's: the Coordinator hands the frozen worker's partitions on one lease (8 s) later,
        # which a stalled test process can take to see the marker.
        pids = {p: int(r.hget(redis_key(sc, p, "status"), "pid") or 0) for p in range(PARTITIONS)}
        owned_epochs = {p: int(r.get(redis_key(sc, p, "epoch")) or 0) for p in range(PARTITIONS)}
        with UnownedSampler(r, sc) as unowned:
            # A new producer epoch for partition 0's transactional id, the Redis epoch untouched: to the
            # owner this is a broker-side fence (its own partition, to be re-taken), not a new owner.
            fencer = Producer({"bootstrap.servers": chaos_env.bootstrap, "transactional.id": f"{sc.app}-{sc.topic}-0"})
            fencer.init_transactions(30)
            sc.produce(recs[half:half + 1])
            marker = sc.faults_dir / "recover_before_take.0"
            wait_for(marker.exists, 120, "a worker to freeze between its epoch check and its re-take")
            zombie = int(wait_for(lambda: marker.read_text().strip(), 10, "the frozen worker's pid"))
            try:
                wait_for(lambda: frozen(zombie), 30, f"worker {zombie} to be frozen")
                parts = [p for p in range(PARTITIONS) if pids[p] == zombie]
                assert 0 in parts, f"partition 0 was not the frozen worker's: {parts} (owners {pids})"
                epochs = {p: owned_epochs[p] for p in parts}
            except BaseException:
                os.kill(zombie, signal.SIGCONT)
                raise
            producer = sc.produce_in_background(recs[half + 1:], over_s=PRODUCE_S / 2)
            # It wakes inside recover(), right before its re-take: refused, it drops everything and retires.
            wake_after_take_over(r, sc, zombie, parts, epochs)
            refused = wait_for(lambda: _refusals(d.log(), zombie, sc.topic, 0, epochs[0]), 60,
                               f"worker {zombie}'s log line of its refused re-take of partition 0 at epoch {epochs[0]}")
            producer.join()
            wait_for(lambda: caught_up(sc, len(recs)), DONE_TIMEOUT_S, "all input committed")
        sc.stop(d)
    log = d.log()
    finish(sc, i4, "zombie frozen between its recovery's epoch check and its re-take, woken after the take-over", 1,
           zombie_partitions=parts, retake_refused=bool(refused), longest_unowned_s=round(max(unowned.longest.values()), 2))
    assert "zombie_retired" in log
    assert max(unowned.longest.values()) <= LEASE_S, f"a partition stayed unowned longer than the lease: {unowned.longest}"


def test_at_least_once_pauses_through_a_redis_outage_and_re_emits_nothing(chaos_env: ChaosEnv) -> None:
    sc = Scenario(chaos_env, "alo-redis-outage", processing={"guarantee": "at_least_once"})
    recs = sc.events()

    def recorded() -> int:
        try:
            store = scenario_store(sc, socket_timeout_s=1.0)
            return sum(store.committed_offset(p) or 0 for p in range(PARTITIONS))
        except redis_lib.RedisError:
            return 0

    d = sc.start()
    producer = sc.produce_in_background(recs)
    wait_for(lambda: recorded() >= len(recs) // 3, DONE_TIMEOUT_S, "a third of the input recorded")
    redis_outage(sc, d, OUTAGE_S)
    producer.join()
    wait_for(lambda: recorded() >= len(recs), DONE_TIMEOUT_S, "all input recorded after the outage")
    sc.stop(d)
    log = d.log()
    i1 = check_i1_of(sc, read_topic(sc.env.bootstrap, sc.topic, read_committed=False))
    record_result({"scenario": sc.name, "fault": f"at_least_once, Redis unreachable for {OUTAGE_S:.0f} s", "injected": 1,
                   "events": i1.inputs, "predictions": i1.predictions, "lost": len(i1.missing),
                   "duplicated": len(i1.duplicated), "runs_failed": log.count("worker_failed_retrying")})
    assert "worker_failed_retrying" not in log, "a Redis outage failed a run instead of pausing it"
    assert i1.ok and i1.predictions == i1.inputs, "at_least_once re-emitted or lost predictions: " + i1.summary()
