"""Where a forked checkpoint's CPU goes: `python -m bench.ckpt_profile [-n N] [--rounds R] [--json]`.

`bench.ckpt_overhead` measures the whole system; this takes one checkpoint
apart, in one process, on the models the throughput run ends with (four
Hoeffding trees, one per partition, each having learned N/4 events of the
benchmark's dataset) and a process about the worker's size (streamlearn's
runtime, Ray and librdkafka imported). Per checkpoint of all four partitions:

* the child's work: `checkpoint.encode` (pickle + HMAC) of the four states;
* the parent's: `os.fork()` itself (its CPU time: copying the page tables grows with
  the parent's mapped memory, not with the model), and the copy-on-write
  faults of its learning loop while the child lives (every page the loop
  writes that the child still shares is copied: CPython's reference counts
  write to every object they touch).

The parent's cost is measured as the learning loop's CPU time over the same
events, with and without a child forked at its start that encodes the states
(as the real child does, less the Redis write), the two interleaved. No
Redis and no broker: their part shows in `bench.ckpt_overhead`'s broker +
Redis CPU. Never part of the test suite.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import time
from typing import Any

import orjson

from bench import common, models, provenance


def _rss_mb() -> float:
    with open("/proc/self/statm", "rb") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576.0


def _minflt() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=80_000, help="events learned before the checkpoints (the ckpt runs' count)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--loop-events", type=int, default=2_000, help="events learned while a child lives (per round)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import confluent_kafka  # noqa: F401 - the worker's size: its imports are mapped and forked too
    import ray  # noqa: F401

    from streamlearn.runtime import worker  # noqa: F401
    from streamlearn.state import checkpoint
    from streamlearn.state.checkpoint import ModelState

    load0 = provenance.loadavg()
    events = common.dataset(args.n + args.loop_events * 4, 0)
    parts = common.PARTITIONS
    ms = [models.build("hoeffding", False) for _ in range(parts)]
    for i, ev in enumerate(events[:args.n]):
        models.predict_learn(ms[i % parts], ev["features"], ev["label"])
    states = [ModelState(m, None, args.n // parts, args.n // parts, args.n // parts) for m in ms]
    key = b"k" * 32
    extra = events[args.n:]
    gc.collect()

    def encode_all() -> int:
        return sum(len(checkpoint.encode(s, key)) for s in states)

    enc_ms, nbytes = [], 0
    for _ in range(args.rounds):
        t = time.process_time()
        nbytes = encode_all()
        enc_ms.append(1000 * (time.process_time() - t))

    def loop(off: int) -> tuple[float, int]:
        f0, t0 = _minflt(), time.process_time()
        for i in range(args.loop_events):
            ev = extra[(off + i) % len(extra)]
            models.predict_learn(ms[i % parts], ev["features"], ev["label"])
        return time.process_time() - t0, _minflt() - f0

    fork_ms, plain, forked, child_cpu_ms = [], [], [], []
    for r in range(args.rounds):
        for with_child in ((False, True) if r % 2 == 0 else (True, False)):
            if not with_child:
                plain.append(loop(r))
                continue
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            f0, t0 = _minflt(), time.process_time()
            pid = os.fork()
            if pid == 0:
                gc.disable()
                encode_all()
                os._exit(0)
            fork_ms.append(1000 * (time.process_time() - t0))
            loop(r)  # measured as a whole below: the fork, then the loop while the child lives
            os.waitpid(pid, 0)
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            forked.append((time.process_time() - t0, _minflt() - f0))
            child_cpu_ms.append(1000 * (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime))
    base_ms = statistics.median(1000 * c for c, _ in plain)
    with_ms = statistics.median(1000 * c for c, _ in forked)
    res = {"kind": "ckpt_profile", "n": args.n, "partitions": parts, "rounds": args.rounds, "loop_events": args.loop_events,
           "rss_mb": round(_rss_mb(), 1), "blob_bytes_all_partitions": nbytes,
           "encode_ms_all_partitions": round(statistics.median(enc_ms), 2),
           "child_cpu_ms": round(statistics.median(child_cpu_ms), 2),
           "fork_cpu_ms": round(statistics.median(fork_ms), 3),
           "loop_cpu_ms_no_child": round(base_ms, 2), "loop_cpu_ms_with_child": round(with_ms, 2),
           "parent_extra_cpu_ms_per_fork": round(with_ms - base_ms, 2),
           "loop_minflt_no_child": statistics.median(f for _, f in plain),
           "loop_minflt_with_child": statistics.median(f for _, f in forked),
           "loadavg_before": load0, "loadavg_after": provenance.loadavg()}
    if args.json:
        print(orjson.dumps(res).decode())
    else:
        for k, v in res.items():
            print(f"{k}: {v}")
    return res


if __name__ == "__main__":
    main()
