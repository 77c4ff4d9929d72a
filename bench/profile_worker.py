"""Profile the real worker loop in-process: `python -m bench.profile_worker --bootstrap B --redis-url R [-n N] [--labels]`.

Drives `streamlearn.runtime.worker.PartitionWorker.run` (no Ray) over a pre-produced
backlog on a real broker with pyinstrument attached, stopping once every
partition has consumed the backlog. Prints events/s and the profile.
`--labels`: label mode as `bench.run`'s `streamlearn_labels_1w` sets it up (unlabelled
events, their labels on a co-partitioned topic, join journal and sample log).
"""

from __future__ import annotations

import argparse
import threading
import time

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
    ap.add_argument("--labels", action="store_true", help="label mode (labels on their own topic), as streamlearn_labels_1w")
    ap.add_argument("--checkpoint-every-s", type=float, help="processing.checkpoint_every_s (and checkpoint_every_events 0)")
    ap.add_argument("--publish-every-s", type=float, help="model.publish.every_s (0: no model versions)")
    args = ap.parse_args()
    t_in, t_out = common.uid("prof-in"), common.uid("prof-out")
    extra: list[str] = [t_in + ".labels", t_out + ".join-journal", t_out + ".samples"] if args.labels else []
    common.create_topics(args.bootstrap, [t_in, t_out, *extra])
    events = common.dataset(args.n, 0)
    if args.labels:
        common.produce_backlog(args.bootstrap, t_in, [{k: v for k, v in ev.items() if k != "label"} for ev in events])
        common.produce_backlog(args.bootstrap, extra[0], common.labels_of(events))
    else:
        common.produce_backlog(args.bootstrap, t_in, events)
    app = common.uid("prof")
    kafka: dict[str, object] = {"bootstrap": args.bootstrap, "input_topic": t_in, "output_topic": t_out, "dlq_topic": t_out + "-dlq"}
    if args.labels:
        kafka.update(label_topic=extra[0], samples_topic=extra[2])
    cfg = AppConfig.model_validate({
        "app": app, "kafka": kafka,
        "redis": {"url": args.redis_url},
        "model": {**models.streamlearn_model_config(args.model, False),
                  **({"publish": {"every_s": args.publish_every_s}} if args.publish_every_s is not None else {})},
        "processing": {"guarantee": args.guarantee, "workers": 1, "commit_interval_ms": args.commit_interval_ms,
                       **({"checkpoint_every_s": args.checkpoint_every_s, "checkpoint_every_events": 0}
                          if args.checkpoint_every_s is not None else {})},
        "metrics": {"port": None},
        "checkpoint": {"allow_dev_key": True},
        **({"labels": {"source": "topic", "journal_topic": extra[1]}} if args.labels else {})})
    common.create_topics(args.bootstrap, [t_out + "-dlq"])
    w = PartitionWorker(cfg.to_wire(), "prof-w")
    reader = common.OutputReader(args.bootstrap, t_out, expected=args.n)
    reader.start()
    forks: list[int] = []

    def stopper() -> None:
        reader.done.wait(600)
        run = w._run  # the run in progress: how many checkpoint children it forked (gone once it returns)
        if run is not None and run.forker is not None:
            forks.append(run.forker.started)
        w.stop()

    threading.Thread(target=stopper, daemon=True).start()
    prof = None
    if not args.no_profile:
        from pyinstrument import Profiler

        prof = Profiler(interval=0.001, async_mode="disabled")
        prof.start()
    cpu0 = time.process_time()  # every thread of this process: the loop, librdkafka's, the output reader's
    w.run(list(range(common.PARTITIONS)))  # on the main thread, so the profiler sees it
    cpu_s = time.process_time() - cpu0
    if prof is not None:
        prof.stop()
    res = reader.throughput(args.n)
    print(f"events/s (first→last committed prediction): {res['throughput_eps']:.0f} over {res['duration_s']:.1f}s; "
          f"process CPU {1000 * cpu_s / args.n:.4f} s per 1k events (start-up and stop included); "
          f"checkpoint children forked before the stop: {forks[0] if forks else 'none'}")
    if prof is not None:
        print(prof.output_text(unicode=False, color=False, show_all=False))
    common.delete_topics(args.bootstrap, [t_in, t_out, t_out + "-dlq", *extra])


if __name__ == "__main__":
    main()
