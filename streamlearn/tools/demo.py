"""`make demo` / `python -m streamlearn.tools.demo`: watch models learn from a Kafka stream.

What it does, in order, so a newcomer sees every moving part once:

1. brings up Kafka and Redis (`services_up`: the project's own launchers, or
   Docker when an engine answers) — idempotent, so shared services are reused;
2. removes the topics and Redis keys of earlier demo runs, then names this
   run's topics after a timestamp, so a second `make demo` starts clean;
3. starts the learner on local Ray (the same `Runner` as `streamlearn run`)
   and, once every partition is owned, streams a synthetic data set with
   concept drift (the rule flips half way) plus a few malformed records that
   must land in the dead-letter topic;
4. shows live progress per partition (rich), and stops by itself once every
   produced record is accounted for (predicted or dead-lettered);
5. reads the prediction topic back (read_committed) to check exactly one
   prediction per event, and writes `demo-output/summary.json` and
   `demo-output/prequential.png`.

Ctrl-C at any moment stops cleanly: the workers commit or abort their open
transactions and write checkpoints, and whatever was measured is written.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from streamlearn.tools.demo_setup import (
    DemoState,
    all_consumed,
    build_config,
    forget_previous_runs,
    make_events,
    produce,
    write_app_yaml,
)

__all__ = ["DemoState", "all_consumed", "build_config", "main", "make_events"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m streamlearn.tools.demo",
        description="One-command demo: local Kafka + Redis, a drifting stream, live progress, a learning-curve plot.",
        epilog="example:\n  make demo\n  python -m streamlearn.tools.demo --events 10000 --rate 2000 --out /tmp/demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--events", type=int, default=30_000, help="events to stream (default 30000)")
    p.add_argument("--rate", type=float, default=1_500.0, help="events per second produced (default 1500)")
    p.add_argument("--partitions", type=int, default=4, help="input topic partitions (default 4)")
    p.add_argument("--workers", type=int, default=2, help="Ray PartitionWorker actors (default 2)")
    p.add_argument("--malformed", type=int, default=12, help="malformed records mixed in, for the DLQ (default 12)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default="demo-output", help="output directory (default demo-output)")
    p.add_argument("--max-seconds", type=float, default=600.0, help="stop after this long whatever happens (default 600)")
    p.add_argument("--plain", action="store_true", help="progress lines instead of the live table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rich.console import Console

    from streamlearn.tools import demo_view

    console = Console(stderr=True)
    out = Path(args.out)
    try:
        return _run(args, console, out, demo_view)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/] — nothing was left running by the demo")
        return 130


def _run(args: argparse.Namespace, console: Any, out: Path, demo_view: Any) -> int:
    from connectors.cli_errors import print_error
    from connectors.kafka_records import ReadTimeout
    from connectors.services.backends import services_up
    from connectors.services.errors import ServiceError
    from streamlearn.errors import StreamlearnError
    from streamlearn.ops.metrics_endpoint import serve
    from streamlearn.runtime.runner import Runner
    from streamlearn.tools import demo_report

    t_start = time.monotonic()
    console.rule("[bold]streamlearn demo")
    console.print("1/5 starting Kafka and Redis (first run downloads the Kafka jars from Maven Central) ...")
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    try:
        endpoints = services_up()
    except ServiceError as exc:
        print_error("[red]error:[/]", exc.message, exc.hint, write=console.print)
        return 2
    console.print(f"    kafka {endpoints.kafka_bootstrap}   redis {endpoints.redis_url}")

    run_id = time.strftime("%Y%m%d-%H%M%S")
    cfg = build_config(run_id, endpoints.kafka_bootstrap, endpoints.redis_url, args.workers)
    out.mkdir(parents=True, exist_ok=True)
    write_app_yaml(cfg, out / "app.yaml")
    console.print(f"2/5 app [bold]{cfg.app}[/]: topic {cfg.kafka.input_topic} ({args.partitions} partitions); "
                  "removing earlier demo runs ...")
    from connectors import kafka_io

    forget_previous_runs(cfg, cfg.app)
    kafka_io.ensure_topic(kafka_io.admin(cfg.kafka.bootstrap), cfg.kafka.input_topic, args.partitions)
    drift_at = args.events // 2
    records, labels = make_events(args.events, args.seed, drift_at, args.malformed)
    st = DemoState(total=len(records), drift_at=drift_at)

    console.print(f"3/5 starting the learner on local Ray ({args.workers} workers, model "
                  f"StandardScaler | LogisticRegression, one per partition) ...")
    metrics_server = None
    try:
        metrics_server = serve(cfg)
    except StreamlearnError:
        metrics_server = None
    metrics_url = metrics_server.url if metrics_server is not None else None
    t0 = time.monotonic()
    producer_thread = threading.Thread(target=produce, args=(cfg, records, args.rate, st, drift_at), daemon=True, name="demo-producer")
    view = demo_view.LiveView(console, st, cfg, metrics_url, plain=args.plain or not console.is_terminal)

    def on_status(status: dict[str, Any]) -> None:
        st.last = status
        if st.produce_started_at is not None:
            st.samples.append((time.monotonic() - st.produce_started_at, status))
        if not producer_thread.is_alive() and not st.producing_done and st.produce_started_at is None:
            parts = status.get("partitions", [])
            if (parts and all(r["phase"] == "running" for r in parts)) or time.monotonic() - t0 > 90:
                producer_thread.start()
        view.update()

    def stop_when(status: dict[str, Any]) -> bool:
        if time.monotonic() - t0 > args.max_seconds:
            console.print(f"[yellow]--max-seconds {args.max_seconds:.0f} reached, stopping[/]")
            return True
        return all_consumed(st, status)

    runner = Runner(cfg)
    final: dict[str, Any] = {}
    try:
        with view:
            final = runner.run(on_status=on_status, stop_when=stop_when)
    except StreamlearnError as exc:
        print_error("[red]error:[/]", exc.message, exc.hint, write=console.print)
        return 2
    finally:
        st.stop.set()
        # Runner installs its own SIGINT handler; give Ctrl-C back its default meaning.
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if metrics_server is not None:
            metrics_server.close()
        if producer_thread.is_alive():
            producer_thread.join(timeout=35)
    interrupted = runner.stop_requested.is_set()
    run_s = time.monotonic() - t0
    if final:
        st.last = final

    predictions = None
    if not interrupted:
        console.print("4/5 reading the prediction topic back (read_committed) to check one prediction per event ...")
        try:
            predictions = demo_report.read_predictions(cfg, labels)
        except ReadTimeout as exc:  # reported as "not checked"
            console.print(f"[yellow]{exc}[/]")
    console.print("5/5 writing the report ...")
    summary = demo_report.summarize(cfg, st, labels, predictions, run_s=run_s, total_s=time.monotonic() - t_start,
                                    interrupted=interrupted, metrics_url=metrics_url, args=args)
    png = demo_report.plot(out / "prequential.png", st, predictions, drift_at)
    summary["published_versions"] = demo_report.published_versions(cfg, [r["partition"] for r in st.last.get("partitions", [])])
    summary["files"] = {"summary": str(out / "summary.json"), "plot": str(png) if png else None, "config": str(out / "app.yaml")}
    (out / "summary.json").write_text(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    demo_view.print_summary(console, summary)
    if interrupted:
        return 130
    return 0 if summary["exactly_once"]["ok"] and st.producer_error is None else 1


if __name__ == "__main__":
    sys.exit(main())
