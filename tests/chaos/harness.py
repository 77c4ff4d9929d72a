"""Chaos harness: one scenario = one app on private Kafka + Redis, driven as `streamlearn run`.

Why a subprocess: the thing under test is the real CLI, with its own Ray
cluster, actors, restarts and signal handling; the test process only plays
producer, killer and (in `checker`) independent auditor.

Sizes: `CHAOS_EVENTS` (default 4000, CI-sized) events over 4 partitions,
produced at a rate that spreads them over about `CHAOS_PRODUCE_S` seconds
so that faults land while the stream flows. Results of every scenario are
appended as one JSON line to `CHAOS_RESULTS` (default
build/chaos/results.jsonl), which `tests/chaos/report.py` renders.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.kafka_io import KafkaUnavailable, make_producer
from connectors.kafka_records import Record, produce_records
from connectors.proctree import alive, cmdline, descendants
from connectors.redis_store import CheckpointStore, connect
from connectors.services.kafka_local import LocalKafka
from connectors.services.redis_local import LocalRedis
from streamlearn.tools.datasets import synthetic_events
from tests.polling import TRANSIENT, poll

REPO = Path(__file__).resolve().parents[2]
STREAMLEARN = REPO / ".venv" / "bin" / "streamlearn"
CHAOS_EVENTS = int(os.environ.get("CHAOS_EVENTS", "4000"))
PRODUCE_S = float(os.environ.get("CHAOS_PRODUCE_S", "15"))
RESULTS = Path(os.environ.get("CHAOS_RESULTS", str(REPO / "build" / "chaos" / "results.jsonl")))
PARTITIONS = 4
WORKERS = 2
# Every scenario of the session, so a failed test's drivers can be killed in teardown.
LIVE: list[Scenario] = []


@dataclass
class ChaosEnv:
    """Private services of the chaos session (never the shared default-port ones)."""

    kafka: LocalKafka
    redis: LocalRedis
    root: Path
    redis_password: str
    checkpoint_secret: str

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def redis_url(self) -> str:
        return self.redis.url


# ---- processes ----------------------------------------------------------------------
def wait_for(pred: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.2) -> Any:
    """Poll pred until truthy; AssertionError naming `what` at the deadline."""
    return poll(pred, timeout_s, what, every_s=every_s)


# ---- the scenario ---------------------------------------------------------------------
@dataclass
class Driver:
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        """PartitionWorker processes of this driver's Ray cluster (not another engineer's).

        Includes idle standbys and forked checkpoint children (they inherit the title):
        use `Scenario.owner_pids` to tell the processes that own partitions.
        """
        return [p for p in descendants(self.pid) if cmdline(p).startswith("ray::PartitionWorker")]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Scenario:
    env: ChaosEnv
    name: str
    n_events: int = CHAOS_EVENTS
    processing: dict[str, Any] = field(default_factory=dict)
    on_invalid: str = "previous"
    faults: str | None = None
    checkpoint_background: bool = True
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)  # more config, merged per section (e.g. labels)
    app: str = ""
    drivers: list[Driver] = field(default_factory=list)

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.app = f"chaos-{self.name}-{tag}"
        self.topic = f"{self.app}-in"
        self.out_topic = f"{self.app}-out"
        self.dlq_topic = f"{self.app}-dlq"
        self.dir = self.env.root / self.app
        self.dir.mkdir(parents=True)
        self.faults_dir = self.dir / "faults"
        self.config_path = self.dir / "app.yaml"
        self.produced = 0
        self._write_config()
        self._create_topics()
        LIVE.append(self)

    # -- config and topics ------------------------------------------------------------
    def _write_config(self) -> None:
        proc = {
            "workers": WORKERS,
            "commit_interval_ms": 100,
            "max_batch": 200,
            "checkpoint_every_events": 250,
            "checkpoint_min_interval_s": 0,  # many checkpoints, as many windows for a kill between them
            "checkpoint_every_s": 1.0,
            "status_interval_s": 0.5,
            "redis_retry_s": 0.5,
            "owner_lease_s": 10.0,
            **self.processing,
        }
        cfg = {
            "app": self.app,
            "kafka": {
                "bootstrap": self.env.bootstrap,
                "input_topic": self.topic,
                "output_topic": self.out_topic,
                "dlq_topic": self.dlq_topic,
                "transaction_timeout_ms": 10_000,
            },
            # The Redis URL (with its password) comes from the environment, never the file.
            "redis": {"socket_timeout_s": 2.0},
            "model": {
                "estimator": "river.linear_model.LogisticRegression",
                "preprocessing": ["river.preprocessing.StandardScaler"],
                "metric": "river.metrics.Accuracy",
            },
            "processing": proc,
            "checkpoint": {"on_invalid": self.on_invalid, "background": self.checkpoint_background},
            "metrics": {"port": None},
        }
        for name, values in self.sections.items():
            cfg[name] = {**cfg.get(name, {}), **values}  # type: ignore[dict-item]
        self.config_path.write_text(json.dumps(cfg, indent=2))  # JSON is YAML

    def _create_topics(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.env.bootstrap})
        names = [self.topic, self.out_topic, self.dlq_topic, *([self.sections["kafka"]["label_topic"]] if "label_topic" in self.sections.get("kafka", {}) else [])]
        missing = set(names)

        def created() -> bool:
            # Retried until the deadline: a CI run once saw the broker silent for ~30 s (a
            # machine-wide stall) and failed on the first timed-out request. An earlier attempt
            # that did create a topic shows up as TOPIC_ALREADY_EXISTS, which counts as done.
            topics = [NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in sorted(missing)]
            for name, fut in admin.create_topics(topics, operation_timeout=30).items():
                try:
                    fut.result(timeout=30)
                except TimeoutError as e:
                    raise KafkaUnavailable(f"creating topic {name}: no answer in 30 s") from e
                except KafkaException as e:
                    if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise KafkaUnavailable(f"creating topic {name}: {e}") from e
                missing.discard(name)
            return True

        def ready() -> bool:
            try:
                md = admin.list_topics(timeout=5).topics
            except KafkaException as e:
                raise KafkaUnavailable(f"topic metadata: {e}") from e
            return all(t in md and len(md[t].partitions) == PARTITIONS and all(p.leader >= 0 for p in md[t].partitions.values())
                       for t in names)

        wait_for(created, 120, f"topics {names} created")
        wait_for(ready, 60, "topics to have leaders")

    def cli_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
        env["STREAMLEARN_REDIS__URL"] = self.env.redis_url
        env["STREAMLEARN_CHECKPOINT_SECRET"] = self.env.checkpoint_secret
        env["STREAMLEARN_LOG_LEVEL"] = "WARNING"
        env["RAY_DEDUP_LOGS"] = "0"  # one pause line per partition must stay one line per partition
        env.update(extra)
        return env

    # -- input --------------------------------------------------------------------------
    def events(self, n: int | None = None, start: int = 0, seed: int = 11) -> list[tuple[int, bytes, bytes]]:
        """(partition, key, value) of n synthetic events, round-robin over the partitions."""
        n = self.n_events if n is None else n
        evs = list(synthetic_events(start + n, seed=seed, n_features=6))[start:]
        return [((start + i) % PARTITIONS, ev["id"].encode(), orjson.dumps(ev)) for i, ev in enumerate(evs)]

    def produce(self, records: Iterable[tuple[int, bytes | None, bytes | None]], over_s: float = 0.0) -> int:
        """Send records (partition, key, value) in order, spread over `over_s` seconds."""
        recs = [Record(key, value, p) for p, key, value in records]
        rate = len(recs) / over_s if over_s > 0 and recs else None
        # A long flush deadline rides out a broker restart.
        sent = produce_records(make_producer(self.env.bootstrap), self.topic, recs, rate=rate, flush_s=300)
        self.produced += sent
        return sent

    def produce_until(self, records: list[tuple[int, bytes | None, bytes | None]], done: Callable[[], bool], rate: float,
                      then_rate: float | None = None) -> int:
        """Send records at `rate` while `done()` is false (asked once per round over the partitions), then the rest at `then_rate`.

        For faults that fire on the engine's commits or checkpoints: those need input to arrive, so
        a stream that ended (or became a backlog read in a few large batches) before the faults were
        in would leave them no chance. The tail keeps coming, slowly, until they are.
        """
        producer = make_producer(self.env.bootstrap)
        sent = 0

        def until_done() -> Iterable[Record]:
            nonlocal sent
            for p, key, value in records:
                if sent % PARTITIONS == 0 and done():
                    return
                sent += 1
                yield Record(key, value, p)

        produce_records(producer, self.topic, until_done(), rate=rate, flush_s=300)
        rest = [Record(key, value, p) for p, key, value in records[sent:]]
        produce_records(producer, self.topic, rest, rate=then_rate, flush_s=300)
        self.produced += len(records)
        return len(records)

    def produce_in_background(self, records: Sequence[tuple[int, bytes | None, bytes | None]], over_s: float = PRODUCE_S) -> threading.Thread:
        t = threading.Thread(target=self.produce, args=(records, over_s), daemon=True)
        t.start()
        return t

    # -- the driver ---------------------------------------------------------------------
    def start(self, faults: str | None = None) -> Driver:
        spec = faults if faults is not None else self.faults
        extra = {}
        if spec:
            extra["STREAMLEARN_FAULTS"] = f"{spec},dir={self.faults_dir}"
        log_path = self.dir / f"driver-{len(self.drivers)}.log"
        fh = log_path.open("wb")
        proc = subprocess.Popen(
            [str(STREAMLEARN), "run", "-c", str(self.config_path), "--quiet", "--no-metrics"],
            stdout=fh, stderr=subprocess.STDOUT, env=self.cli_env(**extra), cwd=self.dir, start_new_session=True,
        )
        fh.close()
        d = Driver(proc, log_path)
        self.drivers.append(d)
        wait_for(lambda: len(d.worker_pids()) >= 1 or proc.poll() is not None, 120, "the first PartitionWorker process")
        assert proc.poll() is None, f"driver exited early:\n{d.log()[-3000:]}"
        return d

    def stop(self, d: Driver, timeout_s: float = 180) -> None:
        """Graceful stop (SIGTERM): commits, final checkpoints, exit 0."""
        family = descendants(d.pid)
        d.proc.send_signal(signal.SIGTERM)
        try:
            rc = d.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill_all(d)
            raise AssertionError(f"driver did not stop within {timeout_s:.0f}s:\n{d.log()[-3000:]}") from None
        self._reap(family)
        assert rc == 0, f"driver exit code {rc}:\n{d.log()[-3000:]}"

    def kill_all(self, d: Driver) -> None:
        """SIGKILL the driver and every process of its Ray cluster."""
        pids = descendants(d.pid)
        for pid in [d.pid, *pids]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            d.proc.wait(10)

    def _reap(self, family: list[int]) -> None:
        """Ray's helper processes die with the driver; make sure none of ours lingers."""
        with contextlib.suppress(AssertionError):
            poll(lambda: not any(alive(p) for p in family), 20, "Ray helpers to exit")
        for p in [p for p in family if alive(p)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)

    def delete_topics(self) -> None:
        """Drop every topic this scenario's app created once its test is over.

        The chaos broker lives for the whole session and some scenarios restart it: each
        leftover topic is more log for it to recover, which made the late broker-down
        scenario take about twice as long in a full run as alone.
        """
        admin = AdminClient({"bootstrap.servers": self.env.bootstrap})
        with contextlib.suppress(Exception):
            mine = [t for t in admin.list_topics(timeout=5).topics if t.startswith(self.app)]
            for fut in admin.delete_topics(mine, operation_timeout=10).values():
                with contextlib.suppress(Exception):
                    fut.result(timeout=15)

    def kill_leftovers(self) -> None:
        """Teardown after a failure: no driver, worker or SIGSTOPped process may outlive the test."""
        for d in self.drivers:
            if d.proc.poll() is None:
                for pid in descendants(d.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)
                self.kill_all(d)

    def owner_pids(self, driver: Driver) -> dict[int, list[int]]:
        """Live PartitionWorker processes of `driver` that own partitions now: {pid: partitions}.

        The owner is the pid a worker publishes for the partition it holds a live lease on;
        standbys publish nothing and a forked checkpoint child's pid is never an owner's.
        """
        store = CheckpointStore(connect(self.env.redis_url, socket_timeout_s=2.0), "streamlearn", self.app, self.topic)
        workers = set(driver.worker_pids())
        out: dict[int, list[int]] = {}
        for p in range(PARTITIONS):
            pid = store.read_status(p).get("pid")
            if pid and int(pid) in workers and store.lease(p)[0] is not None:
                out.setdefault(int(pid), []).append(p)
        return out

    def crashes(self) -> dict[str, int]:
        from streamlearn import faults

        return faults.crashes(self.faults_dir)


def random_kills(owners: Callable[[], dict[int, list[int]]], stop: threading.Event, rng: random.Random,
                 log: list[dict[str, Any]], min_gap_s: float = 1.0, max_gap_s: float = 3.0, burst_p: float = 0.35) -> None:
    """SIGKILL random partition-owning workers until `stop`; some kills come in bursts 0.1–0.4 s apart.

    Only processes that own partitions (`owners`, e.g. `Scenario.owner_pids`) are
    chosen and counted: killing an idle standby or a forked checkpoint child (both
    titled `ray::PartitionWorker`) is not the fault the report claims. A transient
    store error skips that kill: it once ended this thread, and the test waited out
    its timeout for kills that could no longer come.
    """
    while not stop.wait(rng.uniform(min_gap_s, max_gap_s)):
        burst = rng.random() < burst_p
        for _ in range(rng.randint(2, 4) if burst else 1):
            try:
                owning = owners()
            except TRANSIENT:
                break  # the store did not answer in time (a stalled Redis): no kill now, the next gap tries again
            if not owning:
                break
            pid = rng.choice(sorted(owning))
            try:
                os.kill(pid, signal.SIGKILL)
                log.append({"t": time.time(), "pid": pid, "partitions": owning[pid], "burst": burst})
            except ProcessLookupError:
                pass
            if burst:
                time.sleep(rng.uniform(0.1, 0.4))  # the spacing of a burst is the fault itself


def git_commit() -> str:
    """HEAD of the checkout the code ran from, with `-dirty` when it had uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def _command() -> str:
    """How the run was started: an xdist worker's own argv is only `-c`, so it says it was one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        return f"pytest -n {os.environ.get('PYTEST_XDIST_WORKER_COUNT', '?')} (xdist worker {worker}; `make test`, `.ci/run`)"
    return " ".join(["pytest" if "pytest" in a else a for a in sys.argv[:1]] + sys.argv[1:])


def record_result(row: dict[str, Any]) -> None:
    """One scenario's result, stamped with the commit and the command that produced it."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    stamp = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "chaos_events": CHAOS_EVENTS,
             "commit": git_commit(), "command": _command()}
    with RESULTS.open("a") as fh:
        fh.write(json.dumps({**stamp, **row}) + "\n")


def redis_key(sc: Scenario, p: int, kind: str) -> str:
    """A partition's key in the scenario's Redis (default key prefix)."""
    return f"streamlearn:{sc.app}:{sc.topic}:{p}:{kind}"


def frozen(pid: int) -> bool:
    """The process is stopped (state T or t in /proc): SIGSTOPped and not yet woken."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except OSError:
        return False


def wake_after_take_over(r: Any, sc: Scenario, zombie: int, parts: list[int], epochs: dict[int, int]) -> None:
    """With `zombie` frozen: wait until new owners hold `parts` (newer epoch, status from another
    process), SIGCONT it (always), then wait for it to notice it was fenced, retire and exit."""
    def taken_over() -> bool:
        return all(int(r.get(redis_key(sc, p, "epoch")) or 0) > epochs[p]
                   and int(r.hget(redis_key(sc, p, "status"), "pid") or 0) not in (0, zombie) for p in parts)

    try:
        wait_for(taken_over, 120, f"partitions {parts} of the frozen worker {zombie} to be owned elsewhere")
        # A zombie removed while frozen never wakes: the scenario would prove nothing about fencing.
        assert frozen(zombie), f"worker {zombie} was no longer frozen when its partitions had moved (killed meanwhile?)"
    finally:
        os.kill(zombie, signal.SIGCONT)
    wait_for(lambda: not alive(zombie), 120, f"zombie {zombie} to retire and exit")


def redis_outage(sc: Scenario, d: Driver, seconds: float) -> None:
    """Stop the scenario's Redis for `seconds`; the driver must log its pause, then its resume."""
    sc.env.redis.stop()
    t0 = time.monotonic()
    try:
        wait_for(lambda: "redis_unreachable_pausing" in d.log(), 60, "the workers' pause log line")
        time.sleep(max(seconds - (time.monotonic() - t0), 0))  # the outage itself, not a synchronisation
    finally:
        sc.env.redis.start()
    wait_for(lambda: "redis_back_resuming" in d.log(), 60, "the workers' resume log line")
