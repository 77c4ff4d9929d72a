"""The serving benchmark's instruments: the open-loop request generator, the learner's feeder, per-process CPU.

Kept apart from bench/serving.py (which orchestrates) so that what is
measured and how it is measured can be read on their own.

The generator must not be the bottleneck it measures. Two things made it
one: (1) a fixed pool of 8 connections caps an open-loop load at
8 / service time (8 / 68 ms = 117 req/s, the 108 of 200 req/s achieved in
raw/serving-2.json), so the pool is `connections` wide (default 32);
(2) the learner's feeder (~12,000 events/s) ran as a thread of this process
and held the GIL the request threads wait on (a switch interval is 5 ms), so
it runs in its own process now; its pacer also busy-waited every sub-ms gap
(0.9 cores) until `connectors.kafka_io.Pacer` stopped polling gaps shorter
than a millisecond. The generator's own CPU share is reported
(`client_cpu_share`) next to its numbers.
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import queue
import sys
import threading
import time
from typing import Any

import orjson

from bench.common import PacedProducer, percentile
from bench.resources import _cmd, tree


def load(port: int, rate: float, duration_s: float, events: list[dict[str, Any]], connections: int = 32,
         series: bool = False) -> dict[str, Any]:
    """Open loop: request i is due at t0 + i/rate; latency counts from when it was due.

    `series`: also return every answered request as [due (epoch ms), own delay ms, service ms], to line
    slow requests up with what else happened then (publishes, the learner's checkpoints).
    """
    due: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
    lat_ms: list[float] = []
    service_ms: list[float] = []  # from the actual send: the server's part, without the generator's queueing
    errors: list[str] = []
    lock = threading.Lock()
    late_ms: list[float] = []  # from the scheduled to the actual send: the generator's own delay
    per_request: list[tuple[float, float, float]] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            item = due.get()
            if item is None:
                return
            at, body = item
            wait = at - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            sent = time.perf_counter()
            resp: http.client.HTTPResponse | None
            try:
                conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                ok, resp = False, None
                errors.append(type(exc).__name__)
            done = time.perf_counter()
            with lock:
                if ok:
                    late_ms.append((sent - at) * 1000)
                    lat_ms.append((done - at) * 1000)
                    service_ms.append((done - sent) * 1000)
                    if series:
                        per_request.append((at, (sent - at) * 1000, (done - sent) * 1000))
                elif resp is not None:
                    errors.append(str(resp.status))

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in pool:
        t.start()
    cpu0 = time.process_time()
    t0 = time.perf_counter() + 0.2
    n = int(rate * duration_s)
    for i in range(n):
        ev = events[i % len(events)]
        due.put((t0 + i / rate, orjson.dumps({"id": ev["id"], "features": ev["features"]})))
    for _ in pool:
        due.put(None)
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    client_cpu = time.process_time() - cpu0
    epoch = time.time() - time.perf_counter()  # perf_counter → epoch seconds, to match other clocks' records
    extra = {"series": sorted([round((at + epoch) * 1000, 1), round(late, 2), round(svc, 2)] for at, late, svc in per_request)} if series else {}
    return {**extra, "offered_rps": rate, "requests": n, "ok": len(lat_ms), "errors": len(errors), "error_kinds": sorted(set(errors))[:5],
            "connections": connections, "client_cpu_share": round(client_cpu / wall, 3) if wall > 0 else None,
            "achieved_rps": len(lat_ms) / wall if wall > 0 else 0.0,
            "latency_p50_ms": percentile(lat_ms, 50), "latency_p95_ms": percentile(lat_ms, 95),
            "latency_p99_ms": percentile(lat_ms, 99), "latency_max_ms": max(lat_ms) if lat_ms else None,
            "service_p50_ms": percentile(service_ms, 50), "service_p95_ms": percentile(service_ms, 95),
            "service_p99_ms": percentile(service_ms, 99), "late_p99_ms": percentile(late_ms, 99)}


def load_in_own_session(nice: int | None, port: int, rate: float, duration_s: float, events: list[dict[str, Any]],
                        connections: int = 32, series: bool = False,
                        realtime: int | None = None) -> dict[str, Any]:
    """`load` from a process and session of its own, at `nice` (None: inherited).

    The generator stands in for callers on other machines. On this shared 2-core machine its own
    wake-ups wait in the run queue too, and a request sent late counts as late in `latency_*`;
    with autogroups the CPU is shared between sessions first (streamlearn/serving/priority.py), so
    the generator gets a session of its own and, where serving runs at a raised priority, the same
    one (`nice`, and SCHED_RR at `realtime` when serve has it too). `late_p99_ms` reports what is left of its own delay.
    """
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with Kafka and Redis client threads
    out = ctx.Queue()
    proc = ctx.Process(target=_load_child, args=(nice, out, port, rate, duration_s, events, connections, series, realtime),
                       daemon=True, name="bench-serving-generator")
    proc.start()
    try:
        result: dict[str, Any] = out.get(timeout=duration_s + 120)
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    result["client_nice"] = nice
    result["client_realtime"] = realtime
    return result


def _load_child(nice: int | None, out: Any, port: int, rate: float, duration_s: float, events: list[dict[str, Any]],
                connections: int, series: bool, realtime: int | None) -> None:
    from streamlearn.serving import priority

    os.setsid()
    priority.apply(nice, realtime)
    # 32 request threads share one GIL: a thread whose request is due waits for it up to the switch
    # interval (5 ms by default) while another parses an answer. Every such wait counts as latency.
    sys.setswitchinterval(0.0005)
    out.put(load(port, rate, duration_s, events, connections, series))


def _feed(bootstrap: str, topic: str, events: list[dict[str, Any]], rate: float, duration_s: float,
          sent: Any, stop: Any) -> None:
    feeder = PacedProducer(bootstrap, topic, events, rate, duration_s)
    feeder.start()
    while feeder.is_alive() and not stop.is_set():
        sent.value = feeder.sent
        stop.wait(0.5)
    feeder.stop_flag.set()
    feeder.join(60)
    sent.value = feeder.sent


class Feeder:
    """The learner's paced stream, produced from a child process (see the module docstring for why)."""

    def __init__(self, bootstrap: str, topic: str, events: list[dict[str, Any]], rate: float, duration_s: float) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with Kafka and Redis client threads
        self._sent = ctx.Value("q", 0)
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_feed, args=(bootstrap, topic, events, rate, duration_s, self._sent, self._stop),
                                 daemon=True, name="bench-serving-feeder")

    def start(self) -> None:
        self._proc.start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def sent(self) -> int:
        return int(self._sent.value)

    def stop(self) -> None:
        self._stop.set()
        if self._proc.pid is not None:
            self._proc.join(90)
            if self._proc.is_alive():
                self._proc.kill()


def machine_busy() -> tuple[float, float, float]:
    """(busy, total, steal) jiffies of all cores since boot, from /proc/stat: two of them give the machine's busy share.

    Steal is time the hypervisor ran something else on this VM's virtual CPUs: no priority inside the VM,
    real-time included, gets it back (docs/serving-latency.md, session 36)."""
    with open("/proc/stat") as fh:
        fields = [float(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields), fields[7] if len(fields) > 7 else 0.0


def _runq_wait_s(pid: int) -> float:
    """Seconds this process's threads spent runnable but waiting for a core (/proc/<pid>/task/*/schedstat)."""
    total = 0.0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                total += int(fh.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    return total


def cpu_snapshot(roots: dict[str, int]) -> dict[int, tuple[str, str, float, float]]:
    """pid → (group, command, own CPU s, run-queue wait s) for each root's process tree (its descendants and session)."""
    out: dict[int, tuple[str, str, float, float]] = {}
    for group, root in roots.items():
        for pid, (_ppid, _sid, own, _child) in tree(root).items():
            if pid not in out:
                out[pid] = (group, _cmd(pid), own, _runq_wait_s(pid))
    return out


def cpu_shares(before: dict[int, tuple[str, str, float, float]], after: dict[int, tuple[str, str, float, float]],
               wall_s: float, busy: tuple[tuple[float, float, float], tuple[float, float, float]]) -> dict[str, Any]:
    """Share of one core each process used between two snapshots, by group and command (busiest first).

    `busy` is machine_busy() at both ends: the whole machine's busy share, other users and the broker included.
    `runq_wait_share`: seconds per second a process's threads were ready to run but waited for a core (summed
    over threads, so it can exceed 1): on a shared machine, the part of a latency no code change removes.
    """
    by: dict[str, float] = {}
    wait: dict[str, float] = {}
    groups: dict[str, float] = {}
    for pid, (group, cmd, own, waited) in after.items():
        used = own - (before[pid][2] if pid in before else 0.0)
        key = f"{group}: {cmd}"
        by[key] = by.get(key, 0.0) + used
        wait[key] = wait.get(key, 0.0) + waited - (before[pid][3] if pid in before else 0.0)
        groups[group] = groups.get(group, 0.0) + used
    share = {k: round(v / wall_s, 3) for k, v in sorted(by.items(), key=lambda kv: -kv[1]) if v / wall_s >= 0.005}
    total = max(1.0, busy[1][1] - busy[0][1])
    return {"wall_s": round(wall_s, 1), "machine_busy_share": round((busy[1][0] - busy[0][0]) / total, 3),
            "machine_steal_share": round((busy[1][2] - busy[0][2]) / total, 4),
            "by_group": {k: round(v / wall_s, 3) for k, v in sorted(groups.items())}, "by_process": share,
            "runq_wait_share": {k: round(wait[k] / wall_s, 3) for k in share}, "machine_cores": os.cpu_count()}
