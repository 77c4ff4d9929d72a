"""`processing.autoscale` end to end: a load step scales the app up, the drained backlog scales it back down.

Real Kafka, Redis and local Ray; the app is the real CLI in a subprocess (as
tests/integration/test_live_rescale.py). The app starts with one worker over
4 partitions, a small `target_lag_per_worker` and a short cooldown, and a
throttled worker (`max_batch: 1`: one event per partition per transaction),
so that events produced faster than it commits build a lag of several
targets. Events are produced until the Coordinator's own decision
(`Coordinator._autoscale_tick` → `Coordinator.scale`) gives the partitions
to more than one worker; then production stops and the drained backlog must
bring the app back to one worker. Afterwards: exactly one committed
prediction per input offset (I1), every final model equal to the model of
its partition's events in order (I2), and a bounded number of autoscale
decisions (no flapping).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamlearn.config import AppConfig
from streamlearn.tools.datasets import synthetic_events
from tests.integration import engine_helpers as eh
from tests.polling import poll

PARTITIONS = 4
TARGET_LAG = 100  # per worker: a few seconds of the load step's excess over one throttled worker
RATE = 400.0  # events/s offered during the step, well above one worker committing one event per transaction
MAX_EVENTS = 40_000  # bound on the step if the app never scales up (the test then fails at its deadline)
# The warm-up backlog is at most one worker's target: its lag can never ask for a second worker (ceil(lag / target)
# <= 1), however long a loaded machine takes to start the worker. At 200 the mean of the first three samples
# (15 s after the Coordinator started) could still be ~200 and scale up before the step.
WARMUP = TARGET_LAG
DECIDED = re.compile(r"autoscale_decided .*?\bworkers=(\d+) desired=(\d+)")


def owners(cfg: AppConfig) -> set[str]:
    """Distinct lease owners of the input partitions (as test_live_rescale counts them)."""
    store = eh.store_of(cfg)
    leases = [store.lease(p)[0] for p in range(PARTITIONS)]
    return {o.split("@", 1)[0] for o in leases if o is not None}


class Output(threading.Thread):
    """The run's output read as it comes: the Coordinator's decisions are awaited in it before the stop."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.lines: list[str] = []

    def run(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace"))

    def decisions(self) -> list[tuple[int, int]]:
        """(owners, desired) of every `autoscale_decided` logged so far."""
        return [(int(a), int(b)) for a, b in DECIDED.findall("".join(self.lines))]


    def wait_for(self, pred: Callable[[], Any], timeout: float, what: str) -> None:
        """Poll with a deadline; a run that exits meanwhile fails at once, with its output."""
        def still_running() -> None:
            if self.proc.poll() is not None:
                self.join(10)
                raise AssertionError(f"run exited with {self.proc.returncode} while waiting for {what}:\n"
                                     + "".join(self.lines)[-4000:])

        poll(pred, timeout, what, check=still_running)




def test_load_step_scales_up_then_down(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, unique_topic: Any, services_env: dict[str, str]
) -> None:
    topic = unique_topic(partitions=PARTITIONS)
    autoscale = {"enabled": True, "min_workers": 1, "max_workers": 3, "target_lag_per_worker": TARGET_LAG, "cooldown_s": 3.0}
    cfg_path = eh.write_config(tmp_path, kafka_bootstrap, redis_url, topic,
                               processing={"workers": 1, "standby_workers": 0, "max_batch": 1, "autoscale": autoscale})
    cfg = eh.load(cfg_path)
    events = list(synthetic_events(MAX_EVENTS + WARMUP, seed=15))
    eh.produce(cfg, eh.keyed(events[:WARMUP]))
    # Ray's log deduplication could fold two decisions of the Coordinator into one line: counted below.
    proc = eh.start_run(cfg_path, {**services_env, "RAY_DEDUP_LOGS": "0"})
    output, step = Output(proc), eh.SteadyLoad(cfg, events[WARMUP:], rate=RATE, chunk_s=0.25)
    output.start()
    try:
        output.wait_for(lambda: eh.all_committed(cfg), 120, f"the first {WARMUP} events committed")
        assert len(owners(cfg)) == 1
        step.start()
        output.wait_for(lambda: len(owners(cfg)) > 1, 90, "the autoscaler to give the partitions to more than 1 worker")
        step.stop.set()
        step.join(60)
        assert not step.is_alive()
        # The backlog grows at RATE for as long as the scale-up takes (a decision, then Ray starting workers): 12 s and
        # 1,675 events left (drained in 15 s) at a load average of ~20; a minute-long actor start produces 24,000.
        output.wait_for(lambda: eh.all_committed(cfg), 300, "the backlog committed")
        output.wait_for(lambda: len(owners(cfg)) == 1, 90, "the autoscaler to go back to 1 worker")
        # Ray forwards the Coordinator's log lines to the run's output a little later: the last decision is awaited.
        output.wait_for(lambda: any(b == 1 < a for a, b in output.decisions()), 30, "the scale-down decision logged")
    finally:
        step.stop.set()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=120)
        output.join(30)
    out = "".join(output.lines)
    assert rc == 0, out[-3000:]
    decisions = output.decisions()
    ups = [d for d in decisions if d[1] > d[0]]
    downs = [d for d in decisions if d[1] < d[0]]
    assert ups and downs and downs[-1][1] == 1, decisions
    assert len(ups) <= 2 and len(downs) <= 2, f"flapping: {decisions}"
    assert all(1 <= b <= 3 for _, b in decisions), decisions
    eh.assert_exactly_once_and_models_equal(cfg, PARTITIONS, WARMUP + step.produced)
    assert_decisions_in_status(cfg_path, services_env, decisions)


def assert_decisions_in_status(cfg_path: Path, env: dict[str, str], logged: list[tuple[int, int]]) -> None:
    """`streamlearn status` (Kafka and Redis only, the app stopped) shows the decisions the Coordinator logged."""
    def status(*extra: str) -> str:
        done = subprocess.run([sys.executable, "-m", "streamlearn", "status", "-c", str(cfg_path), *extra],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    auto = json.loads(status("--json"))["autoscale"]
    changes = [(d["from"], d["to"]) for d in reversed(auto["decisions"]) if d["direction"] != "held"]
    assert changes == logged, (auto, logged)
    assert auto["enabled"] and auto["counts"]["up"] == sum(1 for a, b in logged if b > a)
    assert auto["counts"]["down"] == sum(1 for a, b in logged if b < a)
    assert all(d["lag"] >= 0 and d["reason"] and d["ts_ms"] > 0 for d in auto["decisions"]), auto
    text = status()
    assert f"autoscale: up={auto['counts']['up']} down={auto['counts']['down']}" in text, text
    assert f"{logged[-1][0]}->1 workers" in text, text
