"""Benchmark orchestrator: `python -m bench.run [--quick]` (also `make bench` / `make bench-quick`).

Starts a private Kafka + Redis, produces the dataset once, then runs each
system as its own process against it and measures from the outside with a
read_committed consumer (bench.common.OutputReader). Writes one raw JSON
file per run under bench/results/raw/, the medians to
bench/results/summary.json and the plots to docs/img/.

Never part of the test suite: nothing here asserts a duration.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench import common
from connectors.proctree import descendants_matching

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RAW = RESULTS / "raw"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace, svc: common.Services, tmp: Path) -> None:
        self.args, self.svc, self.tmp = args, svc, tmp
        self.n = args.events
        self.inputs: dict[bool, str] = {}
        self.raw: list[dict[str, Any]] = []

    # ---- helpers ---------------------------------------------------------------------------------
    def input_topic(self, categorical: bool) -> str:
        if categorical not in self.inputs:
            t = common.uid("bench-in-cat" if categorical else "bench-in")
            common.create_topics(self.svc.bootstrap, [t])
            common.produce_backlog(self.svc.bootstrap, t, common.dataset(self.n, 5 if categorical else 0))
            self.inputs[categorical] = t
            log(f"produced {self.n} events to {t}")
        return self.inputs[categorical]

    def spawn(self, spec: dict[str, Any]) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONPATH=str(ROOT), STREAMLEARN_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"), PYTHONWARNINGS="ignore")
        logf = open(self.tmp / f"{spec['app']}.log", "wb")  # noqa: SIM115 - lives as long as the process
        return subprocess.Popen([sys.executable, "-m", "bench.sysproc", orjson.dumps(spec).decode()], cwd=ROOT, env=env,
                                stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)

    def worker_pids(self, proc: subprocess.Popen[bytes], system: str) -> list[int]:
        if system == "streamlearn":
            return descendants_matching(proc.pid, "PartitionWorker")
        return [proc.pid]

    def finish(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        # Ray's raylet/gcs of a local cluster go with their driver; reap any straggler of this run's group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def base_spec(self, system: str, guarantee: str = "exactly_once", workers: int = 1, model: str = "logreg",
                  categorical: bool = False, commit_interval_ms: int = 100, **extra: Any) -> dict[str, Any]:
        app = common.uid(f"b-{system}")
        return {"system": system, "app": app, "bootstrap": self.svc.bootstrap, "redis_url": self.svc.redis_url,
                "guarantee": guarantee, "workers": workers, "model": model, "categorical": categorical,
                "commit_interval_ms": commit_interval_ms, "state_dir": str(self.tmp / app), **extra}

    def save(self, rec: dict[str, Any]) -> dict[str, Any]:
        self.raw.append(rec)
        RAW.mkdir(parents=True, exist_ok=True)
        (RAW / f"{rec['label']}-{rec['kind']}-{rec['run']}.json").write_bytes(orjson.dumps(rec, option=orjson.OPT_INDENT_2))
        return rec

    # ---- measurements ------------------------------------------------------------------------------
    def model_limit(self, label: str, model: str, categorical: bool, run: int) -> dict[str, Any]:
        spec = {"system": "model_limit", "n": self.n, "model": model, "categorical": categorical}
        out = subprocess.run([sys.executable, "-m", "bench.sysproc", orjson.dumps(spec).decode()], cwd=ROOT, capture_output=True,
                             check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        res = orjson.loads(out.stdout.strip().splitlines()[-1])
        log(f"{label} run {run}: {res['throughput_eps']:.0f} ev/s (no I/O) rss={res['peak_rss_mb']:.0f}")
        return self.save({"label": label, "kind": "throughput", "run": run, "model": model, "categorical": categorical, **res})

    def throughput(self, label: str, spec: dict[str, Any], run: int) -> dict[str, Any]:
        topic_in = self.input_topic(spec["categorical"])
        topic_out = common.uid("bench-out")
        common.create_topics(self.svc.bootstrap, [topic_out])
        spec = {**spec, "input_topic": topic_in, "output_topic": topic_out}
        reader = common.OutputReader(self.svc.bootstrap, topic_out, expected=self.n)
        reader.start()
        reader.ready.wait(30)
        t0 = time.time()
        proc = self.spawn(spec)
        timeout = self.args.run_timeout
        finished = reader.done.wait(timeout)
        rss = [common.peak_rss_mb(p) for p in self.worker_pids(proc, spec["system"])]
        exited = proc.poll()
        self.finish(proc)
        reader.stop_flag.set()
        reader.join(10)
        res = reader.throughput(self.n)
        rec = {"label": label, "kind": "throughput", "run": run, "spec": {k: v for k, v in spec.items() if k not in ("redis_url",)},
               "complete": finished, "predictions": reader.count, "exited_early": exited,
               "startup_s": (reader.batches[0][0] - t0) if reader.batches else None,
               "peak_rss_mb": max((r for r in rss if r is not None), default=None), "worker_rss_mb": rss, **res}
        log(f"{label} run {run}: {res['throughput_eps']:.0f} ev/s ({reader.count}/{self.n}, complete={finished}) rss={rec['peak_rss_mb']}")
        common.delete_topics(self.svc.bootstrap, [topic_out])
        return self.save(rec)

    def latency(self, label: str, spec: dict[str, Any], rate: float, kill_after_s: float | None = None) -> dict[str, Any]:
        """Offered load `rate` for args.latency_s; optionally SIGKILL a worker part way (recovery)."""
        topic_in, topic_out = common.uid("bench-lat-in"), common.uid("bench-lat-out")
        common.create_topics(self.svc.bootstrap, [topic_in, topic_out])
        events = common.dataset(min(self.n, 50_000), 5 if spec["categorical"] else 0)
        spec = {**spec, "input_topic": topic_in, "output_topic": topic_out}
        reader = common.OutputReader(self.svc.bootstrap, topic_out, latency=True)
        reader.start()
        reader.ready.wait(30)
        proc = self.spawn(spec)
        # Warm-up: wait until the system answers, so start-up time is not counted as latency.
        warm_n = 40
        common.produce_backlog(self.svc.bootstrap, topic_in, events[:warm_n])
        deadline = time.monotonic() + self.args.run_timeout
        while reader.count < warm_n and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        paced = common.PacedProducer(self.svc.bootstrap, topic_in, events, rate=rate, duration_s=self.args.latency_s)
        paced.start()
        time.sleep(0.5)
        kill_at = None
        killed: list[int] = []
        if kill_after_s is not None:
            time.sleep(kill_after_s)
            # A worker that owns partitions (its process title names the running `run` task), not an idle standby.
            killed = descendants_matching(proc.pid, "PartitionWorker.run")[:1]
            kill_at = time.time()
            for p in killed:
                os.kill(p, signal.SIGKILL)
        paced.join()
        # let the tail drain
        want = warm_n + paced.sent
        deadline = time.monotonic() + 60
        while reader.count < want and time.monotonic() < deadline:
            time.sleep(0.1)
        rss = [common.peak_rss_mb(p) for p in self.worker_pids(proc, spec["system"])]
        self.finish(proc)
        reader.stop_flag.set()
        reader.join(10)
        start_ms = (paced.started_at + self.args.warmup_s) * 1000.0
        lats = [arr * 1000.0 - ts for arr, ts, _p in reader.samples if ts >= start_ms and (kill_at is None)]
        rec: dict[str, Any] = {"label": label, "kind": "recovery" if kill_at else "latency", "run": 0,
                               "spec": {k: v for k, v in spec.items() if k != "redis_url"}, "offered_eps": rate,
                               "sent": paced.sent, "received": reader.count, "samples": len(lats),
                               "latency_p50_ms": common.percentile(lats, 50), "latency_p99_ms": common.percentile(lats, 99),
                               "latency_max_ms": max(lats) if lats else None,
                               "peak_rss_mb": max((r for r in rss if r is not None), default=None)}
        if kill_at is not None:
            # Recovery, per output partition (= input partition): from the SIGKILL until a prediction
            # arrives for an event produced after it; the slowest partition (the killed worker's) counts.
            per_part: dict[int, float] = {}
            for arr, ts, part in reader.samples:
                if ts >= kill_at * 1000.0:
                    per_part[part] = min(per_part.get(part, arr), arr)
            any_after = [arr for arr, _ts, _p in reader.samples if arr > kill_at + 0.1]
            rec.update({"killed_pids": killed,
                        "recovery_s": (max(per_part.values()) - kill_at) if len(per_part) == common.PARTITIONS else None,
                        "recovery_per_partition_s": {str(p): round(t - kill_at, 3) for p, t in sorted(per_part.items())},
                        "first_output_after_kill_s": (min(any_after) - kill_at) if any_after else None,
                        "timeline": self._timeline(reader.samples, kill_at)})
            log(f"{label} recovery: {rec['recovery_s']}s (first output after kill {rec['first_output_after_kill_s']}s)")
        else:
            log(f"{label} latency @ {rate:.0f} ev/s: p50={rec['latency_p50_ms']} p99={rec['latency_p99_ms']} ms ({len(lats)} samples)")
        common.delete_topics(self.svc.bootstrap, [topic_in, topic_out])
        return self.save(rec)

    @staticmethod
    def _timeline(samples: list[tuple[float, float, int]], t0: float) -> list[list[float]]:
        """Sampled predictions (every 4th) per 100 ms bucket relative to the kill (small: for the recovery plot)."""
        buckets: dict[int, int] = {}
        for arr, _ts, _p in samples:
            b = int((arr - t0) * 10)
            buckets[b] = buckets.get(b, 0) + 1
        return [[b / 10.0, c] for b, c in sorted(buckets.items()) if -50 <= b <= 300]


SYSTEMS: dict[str, dict[str, Any]] = {
    "io_baseline": {"system": "io_baseline"},
    "streamlearn_eos_1w": {"system": "streamlearn", "guarantee": "exactly_once", "workers": 1},
    "streamlearn_eos_2w": {"system": "streamlearn", "guarantee": "exactly_once", "workers": 2},
    "streamlearn_alo_1w": {"system": "streamlearn", "guarantee": "at_least_once", "workers": 1},
    "streamlearn_eos_inproc": {"system": "streamlearn", "guarantee": "exactly_once", "workers": 1, "in_process": True},
    "quixstreams_eos": {"system": "quixstreams", "guarantee": "exactly_once"},
    "quixstreams_alo": {"system": "quixstreams", "guarantee": "at_least_once"},
    "bytewax": {"system": "bytewax", "guarantee": "at_least_once"},
}


# Run only when named in --systems: the same worker loop without Ray, to tell Ray's cost from the loop's.
DIAGNOSTIC = {"streamlearn_eos_inproc"}


def median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20k events, 1 run, main systems only (a few minutes)")
    ap.add_argument("--events", type=int, default=None, help="events per throughput run (default 200000; quick 20000)")
    ap.add_argument("--runs", type=int, default=None, help="throughput runs per system (median; default 3; quick 1)")
    ap.add_argument("--systems", default=None, help="comma-separated subset of " + ",".join(["model_limit", *SYSTEMS]))
    ap.add_argument("--latency-s", type=float, default=None, help="seconds of offered load per latency run (default 20; quick 8)")
    ap.add_argument("--warmup-s", type=float, default=2.0)
    ap.add_argument("--run-timeout", type=float, default=600.0)
    ap.add_argument("--no-variants", action="store_true", help="skip commit-interval, checkpoint and model variants")
    ap.add_argument("--bootstrap", help="use this broker instead of starting a private one")
    ap.add_argument("--redis-url", help="use this Redis instead of starting a private one")
    ap.add_argument("--out", default=str(RESULTS / "summary.json"))
    ap.add_argument("--note", default="all systems share the machine's cores with the broker (JVM), Redis and the measuring "
                                      "consumer/producer; load average at start is recorded above",
                    help="free-text note on the run conditions, stored in summary.json")
    ap.add_argument("--recovery-only", action="store_true",
                    help="re-measure only the SIGKILL recovery of the streamlearn systems in an existing --out summary")
    args = ap.parse_args(argv)
    args.events = args.events or (20_000 if args.quick else 200_000)
    args.runs = args.runs or (1 if args.quick else 3)
    args.latency_s = args.latency_s or (8.0 if args.quick else 20.0)
    wanted = args.systems.split(",") if args.systems else ["model_limit", *[n for n in SYSTEMS if n not in DIAGNOSTIC]]
    if args.quick and not args.systems:
        wanted = ["model_limit", "io_baseline", "streamlearn_eos_1w", "streamlearn_alo_1w", "quixstreams_eos"]

    tmp = Path(tempfile.mkdtemp(prefix="streamlearn-bench-"))
    if args.bootstrap and args.redis_url:
        svc = common.Services(args.bootstrap, args.redis_url)
    else:
        log(f"starting private Kafka + Redis under {tmp}")
        svc = common.start_services(tmp)
    log(f"kafka {svc.bootstrap} redis {svc.redis_url.split('@')[-1]}")
    machine = common.machine_info()
    machine["note"] = args.note
    b = Bench(args, svc, tmp)
    summary: dict[str, Any] = {"machine": machine, "config": {"events": args.events, "runs": args.runs, "partitions": common.PARTITIONS,
                                                             "latency_s": args.latency_s, "quick": args.quick,
                                                             "model": "StandardScaler | LogisticRegression (numeric)"},
                               "systems": {}, "variants": {}}
    started = time.time()
    if args.recovery_only:
        summary = orjson.loads(Path(args.out).read_bytes())
        b.raw = [orjson.loads(f.read_bytes()) for f in sorted(RAW.glob("*.json")) if "-recovery-" not in f.name]
    try:
        systems = summary["systems"]
        if args.recovery_only:
            wanted = [w for w in wanted if w.startswith("streamlearn_eos") and w not in DIAGNOSTIC]
            args.no_variants = True
        # 1. throughput, median of runs. Rounds interleave the systems (A B C, A B C, ...), so a slow
        # phase of a shared VM spreads over all of them instead of landing on one system's runs.
        by_system: dict[str, list[dict[str, Any]]] = {name: [] for name in wanted}
        for r in [] if args.recovery_only else range(args.runs):
            for name in wanted:
                if name == "model_limit":
                    by_system[name].append(b.model_limit(name, "logreg", False, r))
                else:
                    by_system[name].append(b.throughput(name, b.base_spec(**SYSTEMS[name]), r))
        for name in [] if args.recovery_only else wanted:
            runs = by_system[name]
            if name == "model_limit":
                systems[name] = {"throughput_eps": median([r["throughput_eps"] for r in runs]), "latency_p50_ms": None,
                                 "latency_p99_ms": None, "recovery_s": None, "peak_rss_mb": median([r["peak_rss_mb"] for r in runs]),
                                 "runs": [r["throughput_eps"] for r in runs], "note": "no I/O: no latency or recovery"}
                continue
            ok = [r for r in runs if r["complete"]]
            systems[name] = {"throughput_eps": median([r["throughput_eps"] for r in ok]), "latency_p50_ms": None, "latency_p99_ms": None,
                             "recovery_s": None, "peak_rss_mb": median([r["peak_rss_mb"] for r in runs]),
                             "runs": [round(r["throughput_eps"], 1) for r in runs], "complete_runs": len(ok)}
        # 2. latency at half of each system's own maximum
        for name in [] if args.recovery_only else wanted:
            if name == "model_limit" or not systems[name]["throughput_eps"]:
                continue
            rate = max(100.0, systems[name]["throughput_eps"] / 2.0)
            lat = b.latency(name, b.base_spec(**SYSTEMS[name]), rate)
            systems[name].update({"latency_p50_ms": lat["latency_p50_ms"], "latency_p99_ms": lat["latency_p99_ms"], "offered_eps": rate})
        # 3. recovery after SIGKILL of a worker (streamlearn)
        for name in [w for w in wanted if w.startswith("streamlearn_eos") and w not in DIAGNOSTIC]:
            rate = max(100.0, systems[name]["throughput_eps"] / 2.0)
            rec = b.latency(name, b.base_spec(**SYSTEMS[name]), rate, kill_after_s=3.0)
            systems[name]["recovery_s"] = rec["recovery_s"]
            systems[name]["first_output_after_kill_s"] = rec["first_output_after_kill_s"]
            systems[name]["recovery_per_partition_s"] = rec["recovery_per_partition_s"]
        # 4. variants (streamlearn eos 1 worker)
        if not args.no_variants:
            variants = summary["variants"]
            vruns = 1 if args.quick else max(1, args.runs - 1)
            base = SYSTEMS["streamlearn_eos_1w"]
            ci = {}
            for ms in (10, 100, 1000):
                if ms == 100 and "streamlearn_eos_1w" in systems:
                    ci[ms] = systems["streamlearn_eos_1w"]["throughput_eps"]
                    continue
                rs = [b.throughput(f"commit_{ms}ms", b.base_spec(**base, commit_interval_ms=ms), r) for r in range(vruns)]
                ci[ms] = median([r["throughput_eps"] for r in rs if r["complete"]])
            variants["commit_interval_ms"] = {str(k): v for k, v in ci.items()}
            ck: dict[str, Any] = {}
            ck_variants = (("never", 0.0, True), ("every_1s", 1.0, True), ("every_1s_inline", 1.0, False))
            ck_runs: dict[str, list[float]] = {label: [] for label, _e, _b in ck_variants}
            for r in range(args.runs):  # interleaved and as many runs as the main table: the effect is small, the noise is not
                for label, every, background in ck_variants:
                    res = b.throughput(f"ckpt_{label}", b.base_spec(**base, model="hoeffding", checkpoint_every_events=0,
                                                                      checkpoint_every_s=every, checkpoint_background=background), r)
                    if res["complete"]:
                        ck_runs[label].append(res["throughput_eps"])
            for label, runs_eps in ck_runs.items():
                ck[label] = median(runs_eps)
            ck["runs"] = {label: [round(x) for x in v] for label, v in ck_runs.items()}
            if ck.get("never") and ck.get("every_1s"):
                ck["overhead_pct"] = 100.0 * (1 - ck["every_1s"] / ck["never"])
            if ck.get("never") and ck.get("every_1s_inline"):
                ck["overhead_inline_pct"] = 100.0 * (1 - ck["every_1s_inline"] / ck["never"])
            variants["checkpoint_hoeffding"] = ck
            mv: dict[str, Any] = {}
            for model, cat in (("hoeffding", False), ("logreg", True)):
                key = f"{model}{'_categorical' if cat else ''}"
                lim = b.model_limit(f"model_limit_{key}", model, cat, 0)
                sl = b.throughput(f"streamlearn_eos_1w_{key}", b.base_spec(**base, model=model, categorical=cat), 0)
                mv[key] = {"model_limit": lim["throughput_eps"], "streamlearn_eos_1w": sl["throughput_eps"] if sl["complete"] else None}
            variants["models"] = mv
    finally:
        summary["recovery_rerun_wall_s" if args.recovery_only else "wall_s"] = round(time.time() - started, 1)
        if not (args.bootstrap and args.redis_url):
            svc.stop()
    if "bytewax" not in summary["systems"]:
        summary["systems"].setdefault("bytewax", {"note": "not run in this invocation (use --systems ... ,bytewax)"})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    log(f"wrote {args.out}")
    try:
        from bench import plots

        plots.render(summary, b.raw, ROOT / "docs" / "img")
    except Exception as exc:  # plots are a convenience; the JSON is the result
        log(f"plots failed: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
