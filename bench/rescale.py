"""Hand-off pause of a live rescale: `streamlearn scale` 1 → 3 → 1, repeated, under a steady stream.

    .venv/bin/python -m bench.rescale --cycles 4 --rate 200

The app is the real CLI (`streamlearn run`, local Ray) on the running Kafka
and Redis (`KAFKA_BOOTSTRAP` / `REDIS_URL` override); every rescale is the
real `streamlearn scale`. The pause of a moved partition is what the engine
records (and exports as `streamlearn_handoff_pause_seconds`): wall time from
the old owner's last commit to the new owner's first commit. To check it from
outside, a sampler reads Kafka's committed offsets of every partition every
50 ms: a moved partition's outside gap is from the last change of its
committed offset before the hand-off to the first change after its epoch
moved (it includes up to one sampling period and, at a low rate, the wait for
the next event). I1 (one prediction per input offset) is checked at the end.

Raw JSON goes to bench/results/raw/rescale-<time>.json; docs/scale-out.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import machine_info, percentile
from connectors import kafka_io
from connectors.kafka_records import produce_records
from connectors.rescale_store import RescaleStore
from streamlearn.tools.checker import check_i1, read_partitions
from streamlearn.tools.datasets import synthetic_events
from tests.integration import engine_helpers as eh

RAW = Path(__file__).parent / "results" / "raw"
PARTITIONS = 4


class CommitSampler(threading.Thread):
    """Kafka's committed offset and Redis's epoch of every partition, every 50 ms, with the wall time."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(daemon=True)
        self.cfg, self.stop = cfg, threading.Event()
        self.samples: list[tuple[float, dict[int, tuple[int | None, int]]]] = []  # (t, {p: (offset, epoch)})

    def run(self) -> None:
        consumer = kafka_io.make_consumer(self.cfg.kafka.bootstrap, self.cfg.group_id)
        store = eh.store_of(self.cfg)
        try:
            while not self.stop.wait(0.05):
                k = kafka_io.committed_offsets(consumer, self.cfg.kafka.input_topic, list(range(PARTITIONS)))
                self.samples.append((time.time(), {p: (k[p], store.current_epoch(p)) for p in range(PARTITIONS)}))
        finally:
            consumer.close()

    def gaps(self) -> list[float]:
        """Per epoch change: last change of the committed offset before it → first change after it.

        An offset change seen in the same sample as the epoch change is the old owner's (the new
        one commits only after init_transactions and its restore, well after its epoch bump).
        """
        out = []
        for p in range(PARTITIONS):
            prev: tuple[int | None, int] | None = None
            last_commit: float | None = None
            pending: float | None = None  # last commit before an epoch change not yet followed by a commit
            for t, row in self.samples:
                off, epoch = row[p]
                if prev is not None and off != prev[0]:
                    if pending is not None:
                        out.append(round(t - pending, 3))
                        pending = None
                    last_commit = t
                if prev is not None and epoch != prev[1] and last_commit is not None:
                    pending = last_commit
                prev = (off, epoch)
        return out


def stream(cfg: Any, rate: float, stop: threading.Event, counter: list[int]) -> None:
    events = synthetic_events(200_000, seed=5)
    producer = kafka_io.make_producer(cfg.kafka.bootstrap)
    chunk: list[Any] = []
    for ev in events:
        chunk.append(eh.keyed([ev])[0])
        if len(chunk) == int(rate):
            counter[0] += produce_records(producer, cfg.kafka.input_topic, chunk, rate=rate)
            chunk = []
            if stop.is_set():
                return


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=4, help="1 → 3 → 1 cycles (4 hand-offs each)")
    ap.add_argument("--rate", type=float, default=200.0, help="events per second produced all along")
    args = ap.parse_args()
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    topic = f"bench-rescale-{int(time.time())}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    tmp = Path(tempfile.mkdtemp(prefix="bench-rescale-"))
    cfg_path = eh.write_config(tmp, bootstrap, redis_url, topic, processing={"workers": 1, "standby_workers": 1})
    cfg = eh.load(cfg_path)
    env = {**os.environ, "STREAMLEARN_KEEP_SERVICES": "1"}
    stop, produced = threading.Event(), [0]
    producer = threading.Thread(target=stream, args=(cfg, args.rate, stop, produced), daemon=True)
    producer.start()
    proc = eh.start_run(cfg_path, env)
    sampler = CommitSampler(cfg)
    rounds: list[dict[str, Any]] = []
    try:
        eh.wait_for(lambda: eh.events_processed(cfg) > 0, 300, "the app processing", proc)
        sampler.start()
        for _ in range(args.cycles):
            for n in (3, 1):
                t0 = time.monotonic()
                res = eh_scale(cfg_path, env, n)
                rounds.append({"workers": n, "rc": res.returncode, "cli_s": round(time.monotonic() - t0, 2), "cli_progress": res.stderr[-3000:],
                               "result": RescaleStore(eh.store_of(cfg)).state()})
                assert res.returncode == 0, res.stdout + res.stderr
        stop.set()
        producer.join(60)
        eh.wait_for(lambda: eh.all_committed(cfg), 300, "every event committed", proc)
        eh.wait_for(lambda: RescaleStore(eh.store_of(cfg)).handoffs()["count"] >= 4 * args.cycles, 60, "every hand-off recorded", proc)
    finally:
        sampler.stop.set()
        rc, out = eh.stop_run(proc)
        run_tail = out[-2000:]
    pauses = [x["pause_s"] for x in RescaleStore(eh.store_of(cfg)).pauses()]
    inputs = read_partitions(bootstrap, topic, range(PARTITIONS), read_committed=False)
    i1 = check_i1(inputs, read_partitions(bootstrap, cfg.kafka.output_topic, range(PARTITIONS)),
                  read_partitions(bootstrap, cfg.kafka.dlq_topic, range(PARTITIONS)))
    outside = sampler.gaps()
    report = {
        "bench": "rescale", "cycles": args.cycles, "rate": args.rate, "events": sum(len(v) for v in inputs.values()),
        "run_rc": rc, "run_tail": run_tail if rc else "", "i1_ok": i1.ok, "i1": i1.summary(),
        "handoffs": len(pauses), "pause_s": pauses,
        "pause_p50_s": percentile(pauses, 50), "pause_p99_s": percentile(pauses, 99), "pause_max_s": max(pauses, default=None),
        "outside_gap_s": outside, "outside_p50_s": percentile(outside, 50), "outside_p99_s": percentile(outside, 99),
        "rounds": rounds, "machine": machine_info(), "load_avg": os.getloadavg(),
    }
    RAW.mkdir(parents=True, exist_ok=True)
    path = RAW / f"rescale-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k not in ("rounds", "pause_s", "outside_gap_s", "machine")}, indent=2))
    print(f"raw: {path}")
    for fut in admin.delete_topics([topic, cfg.kafka.output_topic, cfg.kafka.dlq_topic]).values():
        fut.result(30)


def eh_scale(cfg_path: Path, env: dict[str, str], n: int) -> Any:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "streamlearn", "scale", "-c", str(cfg_path), "--workers", str(n), "--timeout", "300"],
                          env=env, cwd=eh.REPO, capture_output=True, text=True, timeout=360)


if __name__ == "__main__":
    main()
