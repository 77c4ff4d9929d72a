"""Serving benchmark: request latency at a fixed offered load while the learner runs, and publish → served delay.

    python -m bench.serving [--rate 200] [--duration 60] [--warmup 20] [--learner-rate N] [--shared]

Setup on one machine: `streamlearn run` (1 worker) learning a paced stream at
`--learner-rate` events/s (default: half the committed single-worker
throughput in bench/results/summary.json), `streamlearn serve` (one replica),
and an open-loop load generator offering `--rate` requests/s to POST /predict
(each request is one event, routed by its id). Latency is measured from each
request's *scheduled* send time to its answer, so a slow server is not hidden
by the generator waiting for it (no coordinated omission). The first
`--warmup` seconds of the same load are not counted. The generator runs in a
process and session of its own, at serve's priority (`--serve-nice`) unless
`--client-nice` says otherwise: it stands in for callers on other machines
(bench/serving_load.py), and `late_p99_ms` reports its remaining own delay.

Publish → served: the bench subscribes to the app's model channel and takes
each publish announcement's arrival as the publish time; serving reports when
it swapped each version in (`GET /models`: `since_ms`). Both on this machine's
clock. Written to bench/results/raw/serving-<n>.json.

`--shared` uses the Kafka and Redis already running on 127.0.0.1 (a unique
app and topic) instead of private ones: lighter on a shared machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis
import yaml

from bench.common import (
    Services,
    create_topics,
    dataset,
    delete_topics,
    machine_info,
    percentile,
    uid,
)
from bench.serving_load import Feeder, cpu_shares, cpu_snapshot, load_in_own_session, machine_busy

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "bench" / "results" / "raw"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _half_learner_throughput() -> float:
    summary = json.loads((ROOT / "bench" / "results" / "summary.json").read_text())
    return float(summary["systems"]["streamlearn_eos_1w"]["throughput_eps"]) / 2


def _wait(pred: Any, timeout_s: float, what: str, root: Path, procs: list[subprocess.Popen[bytes]] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in procs or []:
            if proc.poll() is not None:
                logs = "\n".join(f"{f.name}: {f.read_text()[-1500:]}" for f in sorted(root.glob("*.log")))
                raise RuntimeError(f"a streamlearn subprocess (pid {proc.pid}) exited with {proc.returncode} "
                                   f"while waiting for {what}:\n{logs}")
        try:
            if pred():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what} (logs in {root})")


def _get(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


class Announcements(threading.Thread):
    """Arrival time of every publish announcement on the app's model channel: (partition, version) → epoch ms."""

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(daemon=True)
        self.url, self.channel = url, channel
        self.seen: dict[tuple[int, int], float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        ps = redis.Redis.from_url(self.url).pubsub(ignore_subscribe_messages=True)
        ps.subscribe(self.channel)
        while not self.stop.is_set():
            msg = ps.get_message(timeout=0.5)
            if msg and msg["type"] == "message":
                part, version, event = msg["data"].decode().split(":")
                if event == "publish":
                    self.seen[(int(part), int(version))] = time.time() * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rate", type=float, default=200.0, help="offered requests/s (default 200)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of offered load measured (default 60)")
    ap.add_argument("--warmup", type=float, default=20.0,
                    help="seconds of the same load offered first and not counted (default 20): the learner's and both Rays' "
                         "start-up work (idle workers importing, first publishes) ends in it")
    ap.add_argument("--learner-rate", type=float, default=None, help="events/s into the learner (default: half its throughput)")
    ap.add_argument("--publish-every", type=float, default=2.0, help="model.publish.every_s (default 2)")
    ap.add_argument("--shared", action="store_true", help="use the Kafka/Redis on 127.0.0.1:9092/6379")
    ap.add_argument("--bootstrap", help="use this broker (with --redis-url; bench.run passes its own)")
    ap.add_argument("--redis-url", help="use this Redis (with --bootstrap)")
    ap.add_argument("--raw-dir", default=str(RAW), help="where serving-<n>.json goes (default bench/results/raw)")
    ap.add_argument("--result-file", help="also write the result JSON here (bench.run reads it)")
    ap.add_argument("--ingress", choices=["haproxy", "proxy"], default="haproxy", help="serving.ingress (default haproxy)")
    ap.add_argument("--replicas", type=int, default=1, help="serving.replicas (default 1)")
    ap.add_argument("--connections", type=int, default=32, help="client connections of the load generator (default 32)")
    ap.add_argument("--series", action="store_true",
                    help="also keep every request's due time, own delay and service time, and every publish announcement's arrival, in the raw file")
    ap.add_argument("--serve-realtime", type=int, default=None,
                    help="serving.realtime_priority (SCHED_RR 1-99; default: normal scheduling; needs root or CAP_SYS_NICE)")
    ap.add_argument("--client-realtime", type=int, default=None,
                    help="SCHED_RR priority of the load generator (default: --serve-realtime)")
    ap.add_argument("--serve-nice", type=int, default=None, help="serving.nice (default: inherited; negative needs root)")
    ap.add_argument("--client-nice", type=int, default=None,
                    help="the generator's nice (own session and autogroup too; default: --serve-nice)")
    ap.add_argument("--learner-nice", type=int, default=None,
                    help="start the learner under `nice -n N`, its session's autogroup at N too (its Ray inherits both)")
    args = ap.parse_args(argv)
    # SIGTERM (or a SIGINT a background job ignores) must still run the cleanup below: the learner and
    # serving run in their own sessions and would outlive this process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    loadavg_at_start = os.getloadavg()  # (machine_info's is taken when the JSON is written, at the end)
    learner_rate = args.learner_rate or _half_learner_throughput()
    client_nice = args.client_nice if args.client_nice is not None else args.serve_nice
    client_realtime = args.client_realtime if args.client_realtime is not None else args.serve_realtime
    root = Path(tempfile.mkdtemp(prefix="streamlearn-bench-serving-"))
    if args.bootstrap and args.redis_url:
        services = Services(args.bootstrap, args.redis_url)
    elif args.shared:
        services = Services("127.0.0.1:9092", "redis://127.0.0.1:6379/0")
    else:
        from bench.common import start_services

        services = start_services(root)
    app, topic = uid("b-serving"), uid("bench-serving-in")
    create_topics(services.bootstrap, [topic])
    config = root / "app.yaml"
    config.write_text(yaml.safe_dump({
        "app": app,
        "kafka": {"bootstrap": services.bootstrap, "input_topic": topic, "output_topic": f"{topic}-out", "dlq_topic": f"{topic}-dlq"},
        "redis": {"url": services.redis_url, "key_prefix": "bench"},
        "model": {"estimator": "river.linear_model.LogisticRegression", "preprocessing": ["river.preprocessing.StandardScaler"],
                  "publish": {"every_s": args.publish_every}},
        "processing": {"workers": 1, "standby_workers": 0},
        "serving": {"ingress": args.ingress, "replicas": args.replicas, "nice": args.serve_nice,
                    "realtime_priority": args.serve_realtime},
        # Learner and serving refuse to sign or verify versions with the development key: a real, per-run secret.
        "checkpoint": {"secret": "bench-" + secrets.token_hex(16)},
        "metrics": {"port": None},
    }))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env = {k: v for k, v in env.items() if not (k.startswith("STREAMLEARN_") and "__" in k)}
    events = dataset(20_000, 0)
    port = _free_port()
    procs: list[subprocess.Popen[bytes]] = []
    feeder = Feeder(services.bootstrap, topic, events, learner_rate, args.warmup + args.duration + 240)
    ann = Announcements(services.redis_url, f"bench:{app}:{topic}:models")
    result: dict[str, Any] = {}
    try:
        ann.start()
        # One Ray start at a time, and the stream only once both answer: on a busy 2-core machine
        # concurrent starts time out.
        log = open(root / "run.log", "wb")  # noqa: SIM115 - closed with the process
        # Its session's autogroup too (the learner runs in a session of its own): with autogroups the CPU is
        # shared between sessions first, and a nice value alone only counts inside its own (serving/priority.py).
        learner_nice = ["sh", "-c", 'echo "$0" > /proc/self/autogroup 2>/dev/null; exec nice -n "$0" "$@"',
                        str(args.learner_nice)] if args.learner_nice is not None else []
        procs.append(subprocess.Popen([*learner_nice, sys.executable, "-m", "streamlearn", "run", "-c", str(config), "--quiet", "--no-metrics"],
                                      env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        store = redis.Redis.from_url(services.redis_url)
        _wait(lambda: all(store.exists(f"bench:{app}:{topic}:{p}:lease") for p in range(4)), 300, "the learner owning every partition", root, procs)
        procs.append(subprocess.Popen([sys.executable, "-m", "streamlearn", "serve", "-c", str(config), "--port", str(port)],
                                      env=env, cwd=ROOT, stdout=open(root / "serve.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
                                      start_new_session=True))
        _wait(lambda: _get(port, "/healthz")["status"] == "ok", 300, "serving to answer", root, procs)
        feeder.start()
        _wait(lambda: all(r["version"] is not None for r in _get(port, "/models")["partitions"]), 300,
              "serving to serve every partition", root, procs)
        served_at: dict[tuple[int, int], float] = {}
        watching = threading.Event()

        def watch() -> None:
            while not watching.is_set():
                try:
                    for r in _get(port, "/models")["partitions"]:
                        if r["version"] is not None and r["since_ms"]:
                            served_at.setdefault((r["partition"], r["version"]), r["since_ms"])
                except (OSError, ValueError):
                    pass
                watching.wait(0.25)

        watcher = threading.Thread(target=watch, daemon=True)
        since = time.time() * 1000  # versions announced from now on (earlier ones were served at serve's start)
        watcher.start()
        # "bench" is this orchestrator: the generator is a process of its own that has exited by the second
        # snapshot, so its CPU is the result's `client_cpu_share`, not part of this group.
        roots = {"serve": procs[1].pid, "learner": procs[0].pid, "feeder": feeder.pid or 0, "bench": os.getpid()}
        if args.warmup > 0:
            load_in_own_session(client_nice, port, args.rate, args.warmup, events, args.connections, realtime=client_realtime)
        cpu0, busy0, t_load = cpu_snapshot(roots), machine_busy(), time.monotonic()
        result = load_in_own_session(client_nice, port, args.rate, args.duration, events, args.connections, args.series,
                                     client_realtime)
        result["warmup_s"] = args.warmup
        result["loadavg_after_load"] = os.getloadavg()
        result["cpu"] = cpu_shares(cpu0, cpu_snapshot(roots), time.monotonic() - t_load, (busy0, machine_busy()))
        watching.set()
        watcher.join()
        seen = dict(ann.seen)  # a copy: the announcement thread still adds to it
        delays = [served_at[k] - t for k, t in seen.items() if k in served_at and t >= since]
        result.update({
            "publish_to_served_p50_ms": percentile(delays, 50), "publish_to_served_p99_ms": percentile(delays, 99),
            "publish_to_served_max_ms": max(delays) if delays else None, "publishes_seen": len(seen), "delays": len(delays),
            "learner_offered_eps": learner_rate, "learner_sent": feeder.sent,
        })
        if args.series:  # (partition, version, arrival epoch ms, served epoch ms or None)
            result["announcements"] = sorted([p, v, round(t, 1), served_at.get((p, v))] for (p, v), t in seen.items() if t >= since)
    finally:
        feeder.stop()
        ann.stop.set()
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(120)
                except subprocess.TimeoutExpired:
                    p.kill()
        delete_topics(services.bootstrap, [topic, f"{topic}-out", f"{topic}-dlq"])
        services.stop()
    out = {"label": "serving", "kind": "serving", "loadavg_at_start": loadavg_at_start, "loadavg_at_end": os.getloadavg(), "spec": {"app": app, "shared_services": args.shared or bool(args.bootstrap), "publish_every_s": args.publish_every,
           "replicas": args.replicas, "workers": 1,
           "connections": args.connections, "ingress": args.ingress, "serve_nice": args.serve_nice, "client_nice": client_nice,
           "serve_realtime": args.serve_realtime, "client_realtime": client_realtime, "learner_nice": args.learner_nice, "serve_env": {k: v for k, v in sorted(env.items()) if k.startswith("RAY_SERVE_")}}, **result, "machine": machine_info()}
    raw = Path(args.raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    n = 0
    while (raw / f"serving-{n}.json").exists():  # the first free number: never overwrite an earlier run
        n += 1
    path = raw / f"serving-{n}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    if args.result_file:
        Path(args.result_file).write_text(json.dumps({**out, "_file": path.name}) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "machine"}, indent=2))
    print(_summary_line(out))
    print(f"wrote {path}")
    return 0


def _summary_line(out: dict[str, Any]) -> str:
    """The numbers the target is stated in, on one line (the raw JSON has the rest)."""
    def ms(key: str) -> str:
        v = out.get(key)
        return f"{v:.1f}" if isinstance(v, int | float) else "-"

    return (f"serving: offered {out.get('offered_rps', 0):.0f} req/s, achieved {out.get('achieved_rps', 0):.1f} req/s, "
            f"latency p50/p95/p99 {ms('latency_p50_ms')}/{ms('latency_p95_ms')}/{ms('latency_p99_ms')} ms "
            f"(service {ms('service_p50_ms')}/{ms('service_p95_ms')}/{ms('service_p99_ms')} ms), errors {out.get('errors')}, "
            f"publish->served p50/p99 {ms('publish_to_served_p50_ms')}/{ms('publish_to_served_p99_ms')} ms, "
            f"loadavg start {[round(x, 2) for x in out['loadavg_at_start']]} end {[round(x, 2) for x in out['loadavg_at_end']]}")


if __name__ == "__main__":
    sys.exit(main())
