"""The three measurements of a system: throughput, the latency grid, recovery after SIGKILL.

Each starts the system as its own process (`bench.sysproc`), samples the
whole process tree it starts (`bench.resources`), measures from outside
with a read_committed consumer (`bench.common.OutputReader`) and writes one
raw file per run, stamped with the load average before and after it: a run
on a loaded machine can be told from a quiet one in the data itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench import common, kill_pacing, kill_target, provenance
from bench.plan import Plan
from bench.resources import TreeSampler

ROOT = Path(__file__).resolve().parent.parent
WARM_N = 40  # events answered before a latency run starts: start-up is not latency


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def latency_stats(lats: list[float]) -> dict[str, Any]:
    return {"samples": len(lats), "latency_p50_ms": common.percentile(lats, 50), "latency_p95_ms": common.percentile(lats, 95),
            "latency_p99_ms": common.percentile(lats, 99), "latency_max_ms": max(lats) if lats else None}


def tail_times(window: list[tuple[float, float]], t0: float) -> list[list[float]]:
    """The slowest 1 % as [s since the window opened, ms]: one stall shows as a cluster, a slow path as a spread."""
    worst = sorted(window, key=lambda s: s[1], reverse=True)[:max(1, len(window) // 100)] if window else []
    return [[round(ts / 1000.0 - t0, 3), round(lat, 1)] for ts, lat in sorted(worst)]


class Bench:
    def __init__(self, plan: Plan, svc: common.Services, tmp: Path, raw_dir: Path, run_timeout: float) -> None:
        self.plan, self.svc, self.tmp, self.raw_dir, self.run_timeout = plan, svc, tmp, raw_dir, run_timeout
        self.inputs: dict[tuple[bool, int], str] = {}
        self.label_pairs: dict[tuple[bool, int], tuple[str, str]] = {}
        self.raw: list[dict[str, Any]] = []

    # ---- helpers ---------------------------------------------------------------------------------
    def input_topic(self, categorical: bool, n: int) -> str:
        key = (categorical, n)
        if key not in self.inputs:
            t = common.uid("bench-in-cat" if categorical else "bench-in")
            common.create_topics(self.svc.bootstrap, [t])
            common.produce_backlog(self.svc.bootstrap, t, common.dataset(n, 5 if categorical else 0))
            self.inputs[key] = t
            log(f"produced {n} events to {t}")
        return self.inputs[key]

    def label_inputs(self, categorical: bool, n: int) -> tuple[str, str]:
        """(input, label topic) of label mode: the same events without labels, their labels on a co-partitioned topic."""
        key = (categorical, n)
        if key not in self.label_pairs:
            t = common.uid("bench-in-unlab-cat" if categorical else "bench-in-unlab")
            lt = t + ".labels"
            common.create_topics(self.svc.bootstrap, [t, lt])
            events = common.dataset(n, 5 if categorical else 0)
            common.produce_backlog(self.svc.bootstrap, t, [{k: v for k, v in ev.items() if k != "label"} for ev in events])
            common.produce_backlog(self.svc.bootstrap, lt, common.labels_of(events))
            self.label_pairs[key] = (t, lt)
            log(f"produced {n} unlabelled events to {t} and their labels to {lt}")
        return self.label_pairs[key]

    def spawn(self, spec: dict[str, Any], env_extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "STREAMLEARN_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
               "PYTHONWARNINGS": "ignore", **(env_extra or {})}
        logf = open(self.tmp / f"{spec['app']}.log", "wb")  # noqa: SIM115 - lives as long as the process
        return subprocess.Popen([sys.executable, "-m", "bench.sysproc", orjson.dumps(spec).decode()], cwd=ROOT, env=env,
                                stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)

    @staticmethod
    def finish(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        # Ray's raylet/gcs of a local cluster go with their driver; reap any straggler of this run's session.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def save(self, rec: dict[str, Any]) -> dict[str, Any]:
        self.raw.append(rec)
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        (self.raw_dir / f"{rec['label']}-{rec['kind']}-{rec['run']}.json").write_bytes(orjson.dumps(rec, option=orjson.OPT_INDENT_2))
        return rec

    @staticmethod
    def _public(spec: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in spec.items() if k != "redis_url"}

    # ---- throughput ----------------------------------------------------------------------------------
    def model_limit(self, label: str, model: str, categorical: bool, run: int, n: int) -> dict[str, Any]:
        spec = {"system": "model_limit", "n": n, "model": model, "categorical": categorical}
        load0 = provenance.loadavg()
        out = subprocess.run([sys.executable, "-m", "bench.sysproc", orjson.dumps(spec).decode()], cwd=ROOT, capture_output=True,
                             check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        res = orjson.loads(out.stdout.strip().splitlines()[-1])
        log(f"{label} run {run}: {res['throughput_eps']:.0f} ev/s (no I/O)")
        return self.save({"label": label, "kind": "throughput", "run": run, "model": model, "categorical": categorical, "events": n,
                          "loadavg_before": load0, "loadavg_after": provenance.loadavg(), **res})

    def throughput(self, label: str, spec: dict[str, Any], run: int, n: int, *, extra: dict[str, Any] | None = None,
                   probe: Callable[[dict[str, Any]], dict[str, Any]] | None = None, kind: str = "throughput") -> dict[str, Any]:
        """`extra`: stored in the raw file as is; `probe(spec)`: read once the output is complete, before the stop;
        `kind`: `throughput_warmup` for a warm-up round (kept, never counted)."""
        topic_out = common.uid("bench-out")
        extra_topics: list[str] = []
        if spec.get("labels"):
            # Label mode: per run its own journal and sample log (created here, as the app would, with the input's count).
            topic_in, topic_labels = self.label_inputs(spec["categorical"], n)
            extra_topics = [topic_out + ".join-journal", topic_out + ".samples"]
            spec = {**spec, "label_topic": topic_labels, "journal_topic": extra_topics[0], "samples_topic": extra_topics[1]}
        else:
            topic_in = self.input_topic(spec["categorical"], n)
        common.create_topics(self.svc.bootstrap, [topic_out, *extra_topics])
        spec = {**spec, "input_topic": topic_in, "output_topic": topic_out}
        reader = common.OutputReader(self.svc.bootstrap, topic_out, expected=n)
        reader.start()
        reader.ready.wait(30)
        # Label mode: the sample log (one record per learned event) is read too, apart from the throughput figure.
        samples = common.OutputReader(self.svc.bootstrap, spec["samples_topic"], expected=n) if spec.get("labels") else None
        if samples is not None:
            samples.start()
            samples.ready.wait(30)
        load0 = provenance.loadavg()
        t0 = time.time()
        proc = self.spawn(spec)
        sampler = TreeSampler(proc.pid).start()
        # The broker and Redis work for the system too (transactions, checkpoints): their CPU in the same window.
        services = [TreeSampler(pid, pss_every=1_000_000).start() for pid in self.svc.pids()]
        finished = self._wait_output(reader, proc)
        probed = probe(spec) if probe is not None and proc.poll() is None else {}
        sampler.stop()
        for s in services:
            s.stop()
        samples_done = samples.done.wait(SAMPLES_GRACE_S) if samples is not None and finished else False
        exited = proc.poll()
        self.finish(proc)
        reader.stop_flag.set()
        reader.join(10)
        res = reader.throughput(n)
        window = (reader.batches[0][0], reader.batches[0][0] + res["duration_s"]) if reader.batches else None
        resources = sampler.result(events=n, window=window)
        svc_cpu = [s.cpu_between(*window) for s in services] if window else []
        if services and all(c is not None for c in svc_cpu):
            resources["services_cpu_s_window"] = round(sum(c for c in svc_cpu if c is not None), 3)
            resources["services_cpu_s_per_1k_events"] = round(1000.0 * resources["services_cpu_s_window"] / n, 4)
        rec = {"label": label, "kind": kind, "run": run, "spec": self._public(spec), "events": n,
               "complete": finished, "predictions": reader.count, "exited_early": exited,
               "startup_s": (reader.batches[0][0] - t0) if reader.batches else None,
               "loadavg_before": load0, "loadavg_after": provenance.loadavg(), "resources": resources, **res,
               **(extra or {}), **probed}
        if samples is not None:
            samples.stop_flag.set()
            samples.join(10)
            last_pred = reader.batches[-1][0] if reader.batches else None
            last_sample = samples.batches[-1][0] if samples.batches else None
            rec.update({"samples": samples.count, "samples_complete": samples_done,
                        "samples_throughput_eps": samples.throughput(n)["throughput_eps"] if samples.batches else None,
                        "last_sample_after_last_prediction_s": round(last_sample - last_pred, 3)
                        if last_pred is not None and last_sample is not None else None})
        log(f"{label} {'warm-up ' if kind != 'throughput' else ''}run {run}: {res['throughput_eps']:.0f} ev/s ({reader.count}/{n}, complete={finished}) "
            f"cpu/1k={resources.get('cpu_s_per_1k_events')}s pss={resources['peak_pss_total_mb']}MB over {resources['processes']} processes"
            + (f"; samples {rec['samples']}/{n}" if samples is not None else ""))
        common.delete_topics(self.svc.bootstrap, [topic_out, *extra_topics])
        return self.save(rec)

    def _wait_output(self, reader: common.OutputReader, proc: subprocess.Popen[bytes]) -> bool:
        """Until the output is complete, the run times out, or the system exits without completing it (Ray's start-up
        can time out on a stalled machine: waiting the whole run timeout for a dead system only delays the next run)."""
        deadline = time.monotonic() + self.run_timeout
        while not reader.done.wait(1.0):
            if time.monotonic() > deadline:
                return False
            if proc.poll() is not None:
                return reader.done.wait(EXITED_GRACE_S)  # what it committed before it exited may still be on its way
        return True

    # ---- latency grid and recovery: one system lifetime, offered load from a paced producer ---------------
    def _start_warm(self, spec: dict[str, Any], env_extra: dict[str, str] | None = None) -> tuple[dict[str, Any], subprocess.Popen[bytes], common.OutputReader, TreeSampler,
                                                          list[dict[str, Any]]]:
        topic_in, topic_out = common.uid("bench-lat-in"), common.uid("bench-lat-out")
        common.create_topics(self.svc.bootstrap, [topic_in, topic_out])
        events = common.dataset(50_000, 5 if spec["categorical"] else 0)
        spec = {**spec, "input_topic": topic_in, "output_topic": topic_out}
        reader = common.OutputReader(self.svc.bootstrap, topic_out, latency=True)
        reader.start()
        reader.ready.wait(30)
        proc = self.spawn(spec, env_extra)
        sampler = TreeSampler(proc.pid).start()
        common.produce_backlog(self.svc.bootstrap, topic_in, events[:WARM_N])
        deadline = time.monotonic() + self.run_timeout
        while reader.count < WARM_N and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        return spec, proc, reader, sampler, events

    def _wait_drained(self, reader: common.OutputReader, want: int, max_s: float) -> bool:
        deadline = time.monotonic() + max_s
        while reader.count < want and time.monotonic() < deadline:
            time.sleep(0.05)
        return reader.count >= want

    def _stop(self, spec: dict[str, Any], proc: subprocess.Popen[bytes], reader: common.OutputReader, sampler: TreeSampler) -> None:
        sampler.stop()
        self.finish(proc)
        reader.stop_flag.set()
        reader.join(10)
        common.delete_topics(self.svc.bootstrap, [spec["input_topic"], spec["output_topic"]])

    def latency_grid(self, label: str, spec: dict[str, Any], run: int) -> dict[str, Any]:
        """Every rate of the plan in turn, each for latency_s (the first warmup_s not counted), same system lifetime."""
        p = self.plan
        load0 = provenance.loadavg()
        spec, proc, reader, sampler, events = self._start_warm(spec)
        want = WARM_N
        by_rate: list[dict[str, Any]] = []
        if reader.count < WARM_N:  # never answered (died at start-up, e.g. Ray's node start timing out on a busy machine)
            log(f"{label} run {run}: no answer to the warm-up events (exit code {proc.poll()}); no latency measured")
            self._stop(spec, proc, reader, sampler)
            return self.save({"label": label, "kind": "latency", "run": run, "spec": self._public(spec), "failed": "no answer to warm-up",
                              "exit_code": proc.poll(), "rates": [], "loadavg_before": load0, "loadavg_after": provenance.loadavg()})
        for rate in p.rates:
            paced = common.PacedProducer(self.svc.bootstrap, spec["input_topic"], events, rate=rate, duration_s=p.latency_s)
            paced.start()
            paced.join()
            want += paced.sent
            drained = self._wait_drained(reader, want, max(3 * DRAIN_FLOOR_S, p.latency_s))
            t0, t1 = paced.started_at + p.warmup_s, paced.started_at + p.latency_s
            window = [(ts, arr * 1000.0 - ts) for arr, ts, _p in reader.samples if t0 * 1000.0 <= ts < t1 * 1000.0]
            lats = [lat for _ts, lat in window]
            cpu = sampler.cpu_between(t0, t1)
            achieved = paced.sent / p.latency_s
            # Per event answered in the window (a system that falls behind answers fewer than were offered).
            answered = sum(n for arr, n in reader.batches if t0 <= arr < t1)
            row = {"offered_eps": rate, "achieved_offered_eps": round(achieved, 1), "sent": paced.sent, "drained": drained,
                   "answered_in_window": answered,
                   "cpu_s_per_1k_events": round(1000.0 * cpu / answered, 4) if cpu is not None and answered else None,
                   **latency_stats(lats), "tail": tail_times(window, t0)}
            by_rate.append(row)
            log(f"{label} run {run} @ {rate:.0f} ev/s: p50={row['latency_p50_ms']} p95={row['latency_p95_ms']} "
                f"p99={row['latency_p99_ms']} ms ({len(lats)} samples, drained={drained}, cpu/1k={row['cpu_s_per_1k_events']})")
        self._stop(spec, proc, reader, sampler)
        rec = {"label": label, "kind": "latency", "run": run, "spec": self._public(spec), "latency_s": p.latency_s,
               "warmup_s": p.warmup_s, "rates": by_rate, "resources": sampler.result(),
               "loadavg_before": load0, "loadavg_after": provenance.loadavg()}
        return self.save(rec)

    def recovery(self, label: str, spec: dict[str, Any], run: int = 0) -> dict[str, Any]:
        """`kills` SIGKILLs of a worker running partitions under recovery_rate offered load, each from steady
        state (`kill_pacing`: kill_every_s after the previous one at least, once it recovered and the actor
        it hit is up again as the standby). The producer runs until the last kill + kill_every_s.

        Per kill: time until every partition answered an event produced after the kill
        (`recovery_s`) and until any prediction arrived again.
        """
        p = self.plan
        load0 = provenance.loadavg()
        # The pacing reads the engine's events from the run's log (`kill_pacing`): INFO at least, not de-duplicated.
        level = "DEBUG" if os.environ.get("BENCH_LOG_LEVEL", "").upper() == "DEBUG" else "INFO"
        spec, proc, reader, sampler, events = self._start_warm(spec, {**kill_pacing.LOG_ENV, "STREAMLEARN_LOG_LEVEL": level})
        if reader.count < WARM_N:
            log(f"{label}: no answer to the warm-up events (exit code {proc.poll()}); no recovery measured")
            self._stop(spec, proc, reader, sampler)
            return self.save({"label": label, "kind": "recovery", "run": run, "spec": self._public(spec), "failed": "no answer to warm-up",
                              "kills": [], "loadavg_before": load0, "loadavg_after": provenance.loadavg()})
        # A cap only: the producer is stopped once the kills are done (their pace depends on the system).
        cap = kill_pacing.FIRST_KILL_S + p.kills * (kill_pacing.MAX_WAIT_S + 5.0) + p.kill_every_s
        paced = common.PacedProducer(self.svc.bootstrap, spec["input_topic"], events, rate=p.recovery_rate, duration_s=cap)
        paced.start()
        while not paced.started_at:
            time.sleep(0.01)
        engine = kill_pacing.EngineLog(self.tmp / f"{spec['app']}.log")
        actors = spec["workers"] + 1  # the owners and the standby (processing.standby_workers: 1)
        answers = kill_pacing.Recovered(reader.samples, common.PARTITIONS)
        gate = kill_pacing.Gate(p.kill_every_s, lambda t: engine.first_after(kill_pacing.UP_OR_REFILLED, t), answers.since,
                                warm_after=lambda t: engine.first_after(kill_pacing.WARM, t), caught_up=answers.caught_up,
                                all_warm=lambda: engine.warm_actors() >= actors)

        def kill(pids: list[int]) -> None:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):  # gone since it was chosen: the kill is listed
                    os.kill(pid, signal.SIGKILL)

        def said(i: int, k: kill_pacing.KillRecord) -> None:
            log(f"{label} kill {i} ({k.victim_chosen_by} {k.pids}): {k.kill_after_prev_s} s after the previous, standby up "
                f"{k.standby_up_wait_s} s / warm {k.standby_warm_wait_s} s after it, gated by {k.gated_by}, load {provenance.loadavg()}")

        kills = kill_pacing.run_kills(p.kills, paced.started_at + kill_pacing.FIRST_KILL_S, gate,
                                      lambda i: kill_target.worker_to_kill(proc.pid, spec, i, common.PARTITIONS), kill, said)
        time.sleep(max(0.0, kills[-1].at + p.kill_every_s - time.time()))  # the last kill's recovery, under load
        paced.stop_flag.set()
        paced.join()
        self._wait_drained(reader, WARM_N + paced.sent, 30.0)
        engine.read()
        self._stop(spec, proc, reader, sampler)
        # A kill that found no worker running partitions killed nothing: it is listed, not measured.
        per_kill = [self._one_recovery(reader.samples, k.at, k.pids, kills[i + 1].at if i + 1 < len(kills) else None)
                    if k.pids else {"killed_pids": [], "recovery_s": None, "first_output_after_kill_s": None, "note": "no worker to kill"}
                    for i, k in enumerate(kills)]
        for i, (r, k) in enumerate(zip(per_kill, kills, strict=True)):
            r.update({"victim_chosen_by": k.victim_chosen_by, **k.fields(),
                      "restarted_up_after_s": _after(engine.first_after(kill_pacing.UP, k.at), k.at),
                      # Who had the CPU while the partitions came back (2 cores; the restart's imports compete).
                      "cpu_s_in_recovery_by_pid": sampler.by_pid_between(k.at, k.at + (r["recovery_s"] or p.kill_every_s)),
                      "engine_events": engine.between(k.at, kills[i + 1].at if i + 1 < len(kills) else None)})
            log(f"{label} kill {i}: recovery {r['recovery_s']} s, first output after {r['first_output_after_kill_s']} s, "
                f"its actor up again after {r['restarted_up_after_s']} s")
        rec = {"label": label, "kind": "recovery", "run": run, "spec": self._public(spec), "offered_eps": p.recovery_rate,
               "kill_every_s": p.kill_every_s, "kill_rule": KILL_RULE, "kill_max_wait_s": kill_pacing.MAX_WAIT_S,
               "sent": paced.sent, "received": reader.count, "kills": per_kill,
               "resources": sampler.result(), "loadavg_before": load0, "loadavg_after": provenance.loadavg()}
        return self.save(rec)

    @staticmethod
    def _one_recovery(samples: list[tuple[float, float, int]], kill_at: float, pids: list[int], next_kill: float | None) -> dict[str, Any]:
        per_part: dict[int, float] = {}
        for arr, ts, part in samples:
            if ts >= kill_at * 1000.0:
                per_part[part] = min(per_part.get(part, arr), arr)
        any_after = [arr for arr, _ts, _p in samples if arr > kill_at + 0.1]
        rec = max(per_part.values()) - kill_at if len(per_part) == common.PARTITIONS else None
        return {"killed_pids": pids, "recovery_s": round(rec, 3) if rec is not None else None,
                "recovered_before_next_kill": rec is not None and (next_kill is None or kill_at + rec < next_kill),
                "recovery_per_partition_s": {str(q): round(t - kill_at, 3) for q, t in sorted(per_part.items())},
                "first_output_after_kill_s": round(min(any_after) - kill_at, 3) if any_after else None,
                "timeline": _timeline(samples, kill_at)}


DRAIN_FLOOR_S = 5.0
KILL_RULE = "steady"  # `kill_pacing`: each kill after the previous one recovered and its actor is up again
EXITED_GRACE_S = 10.0  # after the system exited early, how long its committed output may take to reach the reader
SAMPLES_GRACE_S = 30.0  # label mode: after the last prediction, how long the sample log may take to complete


def _after(t: float | None, t0: float) -> float | None:
    return round(t - t0, 3) if t is not None else None


def _timeline(samples: list[tuple[float, float, int]], t0: float) -> list[list[float]]:
    """Sampled predictions (every 4th) per 100 ms bucket relative to the kill (small: for the recovery plot)."""
    buckets: dict[int, int] = {}
    for arr, _ts, _p in samples:
        b = int((arr - t0) * 10)
        if -20 <= b <= 80:
            buckets[b] = buckets.get(b, 0) + 1
    return [[b / 10.0, c] for b, c in sorted(buckets.items())]


