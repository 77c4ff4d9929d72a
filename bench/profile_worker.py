"""Profile the real worker loop in-process: `python -m bench.profile_worker --bootstrap B --redis-url R [-n N]`.

Drives `streamlearn.runtime.worker.PartitionWorker.run` (no Ray) over a pre-produced
backlog on a real broker with pyinstrument attached, stopping once every
partition has consumed the backlog. Prints events/s and the profile.
"""

from __future__ import annotations

import argparse
import threading

from bench import common, models
from streamlearn.config import AppConfig
from streamlearn.runtime.worker import PartitionWorker


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("-n", type=int, default=40_000)
    ap.add_argument("--guarantee", default="exactly_once")
    ap.add_argument("--model", default="logreg")
    ap.add_argument("--commit-interval-ms", type=int, default=100)
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()
    t_in, t_out = common.uid("prof-in"), common.uid("prof-out")
    common.create_topics(args.bootstrap, [t_in, t_out])
    common.produce_backlog(args.bootstrap, t_in, common.dataset(args.n, 0))
    app = common.uid("prof")
    cfg = AppConfig.model_validate({
        "app": app, "kafka": {"bootstrap": args.bootstrap, "input_topic": t_in, "output_topic": t_out, "dlq_topic": t_out + "-dlq"},
        "redis": {"url": args.redis_url}, "model": models.streamlearn_model_config(args.model, False),
        "processing": {"guarantee": args.guarantee, "workers": 1, "commit_interval_ms": args.commit_interval_ms}, "metrics": {"port": None},
        "checkpoint": {"allow_dev_key": True}})
    common.create_topics(args.bootstrap, [t_out + "-dlq"])
    w = PartitionWorker(cfg.to_wire(), "prof-w")
    reader = common.OutputReader(args.bootstrap, t_out, expected=args.n)
    reader.start()
    def stopper() -> None:
        reader.done.wait(600)
        w.stop()

    threading.Thread(target=stopper, daemon=True).start()
    prof = None
    if not args.no_profile:
        from pyinstrument import Profiler

        prof = Profiler(interval=0.001, async_mode="disabled")
        prof.start()
    w.run(list(range(common.PARTITIONS)))  # on the main thread, so the profiler sees it
    if prof is not None:
        prof.stop()
    res = reader.throughput(args.n)
    print(f"events/s (first→last committed prediction): {res['throughput_eps']:.0f} over {res['duration_s']:.1f}s")
    if prof is not None:
        print(prof.output_text(unicode=False, color=False, show_all=False))
    common.delete_topics(args.bootstrap, [t_in, t_out, t_out + "-dlq"])


if __name__ == "__main__":
    main()
