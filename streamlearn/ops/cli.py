"""`streamlearn` command line. Errors become one line plus a hint, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from connectors.cli_errors import print_error
from streamlearn import __version__, logs
from streamlearn.config import AppConfig, load_config
from streamlearn.errors import ConfigError, ServiceUnavailableError, StreamlearnError

EPILOG = """\
quick start (local Kafka + Redis started by streamlearn itself):
  streamlearn services up
  streamlearn produce -c examples/app.yaml --input examples/events.jsonl
  streamlearn run     -c examples/app.yaml --until-idle 5
  streamlearn consume -c examples/app.yaml --max 5
  streamlearn status  -c examples/app.yaml

every config key can be overridden from the environment, e.g.
  STREAMLEARN_PROCESSING__WORKERS=4 STREAMLEARN_KAFKA__BOOTSTRAP=10.0.0.5:9092 streamlearn run -c app.yaml

new here? `make demo` shows it all working in about a minute. Guide: README.md;
every config key: docs/configuration.md; `streamlearn COMMAND --help` for each command.
"""


def _config(args: argparse.Namespace) -> AppConfig:
    path = args.config or os.environ.get("STREAMLEARN_CONFIG")
    if path is None and Path("app.yaml").exists():
        path = "app.yaml"
    return load_config(path)


def _progress_printer(every_s: float) -> Any:
    last = [0.0]

    def show(st: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last[0] < every_s:
            return
        last[0] = now
        t = st["totals"]
        parts = " ".join(
            f"p{r['partition']}:{r['events']}ev/{r['lag']}lag/{(r['metric']['value'] or 0):.3f}" for r in st["partitions"]
        )
        print(f"[streamlearn] events={t['events']} eps={t['events_per_s']} lag={t['lag']} dlq={t['dlq']} "
              f"recoveries={t['recoveries']} | {parts}", file=sys.stderr, flush=True)

    return show


def cmd_run(args: argparse.Namespace) -> int:
    from streamlearn.app import App

    cfg = _config(args)
    printer = None if args.quiet else _progress_printer(args.progress_every)
    metrics_server = None
    if cfg.metrics.port is not None and not args.no_metrics:
        from streamlearn.ops.metrics_endpoint import serve

        metrics_server = serve(cfg)
        if metrics_server is not None and not args.quiet:
            print(f"[streamlearn] metrics on http://{cfg.metrics.host}:{metrics_server.port}/metrics", file=sys.stderr)
    try:
        # The status is read as often as the progress line is printed (a ping in between, `Runner`).
        final = App(cfg, args.ray_address).run(until_idle_s=args.until_idle, on_status=printer,
                                               status_every_s=max(min(args.progress_every, 5.0), 0.1) if printer else 1.0)
    finally:
        if metrics_server is not None:
            metrics_server.close()
    t = final.get("totals", {})
    print(f"[streamlearn] stopped cleanly: events={t.get('events')} dlq={t.get('dlq')} lag={t.get('lag')}", file=sys.stderr)
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from streamlearn.tools.produce import produce_file

    cfg = _config(args)
    if args.labels is not None:
        produce_file(cfg, Path(args.labels), args.rate, args.key_field, args.partitions, quiet=args.quiet, labels=True)
    else:
        produce_file(cfg, Path(args.input), args.rate, args.key_field, args.partitions, quiet=args.quiet)
    return 0


def cmd_consume(args: argparse.Namespace) -> int:
    from streamlearn.tools.consume import main_consume

    return main_consume(_config(args), args.max, args.timeout, args.dlq)


def cmd_status(args: argparse.Namespace) -> int:
    from streamlearn.ops.status import read_status

    st = read_status(_config(args))
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"app={st['app']} topic={st['input_topic']} guarantee={st['guarantee']}")
    print(_workers_text(st))
    for line in _autoscale_lines(st):
        print(line)
    hdr = f"{'part':>4} {'owner':<28} {'phase':<10} {'epoch':>5} {'committed':>10} {'ckpt':>10} {'ckpt_age':>8} {'events':>9} {'lag':>7} {'dlq':>5} metric"
    print(hdr)
    for r in st["partitions"]:
        m = r["metric"]
        mv = f"{m['name']}={m['value']:.4f}" if m["value"] is not None else "-"
        print(f"{r['partition']:>4} {(r['owner'] or '-')[:28]:<28} {r['phase']:<10} {r['epoch']:>5} {r['committed_offset'] if r['committed_offset'] is not None else '-':>10} "
              f"{r['checkpoint_offset'] if r['checkpoint_offset'] is not None else '-':>10} {r['checkpoint_age_s'] if r['checkpoint_age_s'] is not None else '-':>8} "
              f"{r['events']:>9} {r['lag']:>7} {r['dlq']:>5} {mv}{_served_text(r)}")
    for wid, w in sorted(st.get("worker_nodes", {}).items()):
        print(f"worker {wid}: node {_node_text(w)} partitions {','.join(map(str, w['partitions']))}")
    return 0


def _node_text(w: dict[str, Any]) -> str:
    """A Ray node as an operator tells them apart: its IP and the start of its id ('-' outside Ray)."""
    if not w.get("node_id"):
        return "-"
    return f"{w.get('node_ip') or '?'} ({str(w['node_id'])[:12]})"


def _workers_text(st: dict[str, Any]) -> str:
    """Owning workers and planned hand-offs (live rescale), with the last `streamlearn scale` request."""
    h = st.get("handoffs") or {}
    pauses = (f" pause p50={h['pause_p50_s']:.2f}s p99={h['pause_p99_s']:.2f}s" if h.get("pause_p50_s") is not None else "")
    req = h.get("scale") or {}
    last = f" last scale #{req['seq']}: {req['phase']} ({req['message']})" if req else ""
    return f"workers={st['totals'].get('workers', 0)} handoffs={h.get('count', 0)}{pauses}{last}"


def _autoscale_lines(st: dict[str, Any], last: int = 5) -> list[str]:
    """Counts per direction and the last decisions, when the app autoscales (or did)."""
    a = st.get("autoscale") or {}
    counts, decisions = a.get("counts") or {}, a.get("decisions") or []
    if not a.get("enabled") and not decisions:
        return []
    lines = ["autoscale: " + " ".join(f"{d}={counts.get(d, 0)}" for d in ("up", "down", "held"))]
    for d in decisions[:last]:
        when = time.strftime("%H:%M:%S", time.gmtime(d["ts_ms"] / 1000))
        lines.append(f"  {when}Z {d['direction']:<4} {d['from']}->{d['to']} workers lag={d['lag']:.0f}: {d['reason']}")
    return lines


def _served_text(r: dict[str, Any]) -> str:
    """Published/served model versions and gate refusals, when the app publishes any."""
    if r.get("published_version") is None:
        return ""
    refused = ",".join(f"{k}:{v}" for k, v in sorted((r.get("publish_refused") or {}).items()))
    return (f" published=v{r['published_version']} served=v{r['served_version']}({r['served_mode']})"
            + (f" refused={refused}" if refused else ""))


def cmd_scale(args: argparse.Namespace) -> int:
    from streamlearn.ops.scale import request_scale

    def say(msg: str) -> None:
        print(f"[streamlearn] {msg}", file=sys.stderr, flush=True)

    done = request_scale(_config(args), args.workers, args.timeout, None if args.quiet else say)
    moved = ", ".join(f"p{m['partition']} {m['from'] or '-'}→{m['to']}" for m in done.get("moved", [])) or "none"
    print(f"scaled to {done.get('workers')} worker(s) in {done.get('seconds')} s; moved: {moved}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    print(json.dumps(_config(args).masked(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="streamlearn",
        description="Online machine learning on Kafka streams: one river model per partition, "
        "predict-then-learn on every event, predictions written exactly once.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"streamlearn {__version__}")
    p.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default), ERROR")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, func: Any, **texts: Any) -> argparse.ArgumentParser:
        """A subcommand with its help texts kept as written, the shared -c option and its handler."""
        sp = sub.add_parser(name, formatter_class=argparse.RawDescriptionHelpFormatter, **texts)
        sp.add_argument("-c", "--config", help="app YAML file (default: $STREAMLEARN_CONFIG, else ./app.yaml, else built-in defaults)")
        sp.set_defaults(func=func)
        return sp

    r = command("run", cmd_run, help="run the learner until Ctrl-C (or until idle)",
                description="Start local Ray (or join --ray-address), own every input partition, predict, learn and "
                "commit predictions exactly once. Ctrl-C/SIGTERM commit or abort the open transactions, write checkpoints and exit 0.",
                epilog="example:\n  streamlearn run -c examples/app.yaml\n  streamlearn run -c app.yaml --ray-address 10.0.0.5:6380 --until-idle 10\n\n"
                "while it runs, Prometheus metrics are served on http://127.0.0.1:9464/metrics (metrics.port; 0 = any free port)")
    r.add_argument("--ray-address", default=None, help="join a running Ray cluster at the head's host:port (checked first: an unreachable "
                   "address or a wrong RAY_AUTH_TOKEN fails in seconds), or auto on a node of it; default: start a local one")
    r.add_argument("--until-idle", type=float, default=None, metavar="S", help="stop by itself once every partition has had no lag for S seconds")
    r.add_argument("--progress-every", type=float, default=5.0, metavar="S", help="progress line every S seconds (default 5)")
    r.add_argument("--quiet", action="store_true", help="no progress output")
    r.add_argument("--no-metrics", action="store_true", help="do not start the Prometheus endpoint")

    pr = command("produce", cmd_produce, help="send a .jsonl or .csv file to the input topic",
                 description="Send events to kafka.input_topic (created with --partitions if missing).\n"
                 "JSON lines are sent as they are; CSV rows become {id, features, label}. Keys come\n"
                 "from the id field, so an id always lands on the same partition.",
                 epilog="examples:\n  streamlearn produce -c app.yaml --input events.jsonl --rate 1000\n"
                        "  streamlearn produce -c app.yaml --labels labels.jsonl   # delayed labels (labels.source: topic)")
    what = pr.add_mutually_exclusive_group(required=True)
    what.add_argument("--input", metavar="FILE", help="events as JSON lines, or CSV with a header row")
    what.add_argument("--labels", metavar="FILE", help="labels {id, label, ts} as JSON lines, to the label topic, keyed by id "
                      "(created with the input topic's partition count if missing)")
    pr.add_argument("--rate", type=float, default=None, metavar="N", help="events per second (default: as fast as possible)")
    pr.add_argument("--key-field", default=None, metavar="F", help="record key from this field (default: the id field)")
    pr.add_argument("--partitions", type=int, default=4, metavar="N", help="partitions of the input topic if it has to be created (default 4)")
    pr.add_argument("--quiet", action="store_true")

    c = command("consume", cmd_consume, help="print committed predictions as JSON lines (read_committed)",
                description="Read kafka.output_topic from the beginning with isolation.level=read_committed:\n"
                "exactly what a downstream consumer sees (one prediction per input record).\n"
                "Does not touch the app's consumer group.",
                epilog="example:\n  streamlearn consume -c app.yaml --max 10\n  streamlearn consume -c app.yaml --dlq --timeout 2")
    c.add_argument("--max", type=int, default=None, metavar="N", help="stop after N records")
    c.add_argument("--timeout", type=float, default=5.0, metavar="S", help="stop after S seconds without a new record (default 5)")
    c.add_argument("--dlq", action="store_true", help="read the dead-letter topic instead (value excerpt + error headers)")

    s = command("status", cmd_status, help="per-partition owner, offsets, checkpoint age, lag, metric",
                description="Read the app's state from Kafka and Redis (no Ray needed; works while `run` is stopped):\n"
                "owner, phase, epoch, committed and checkpoint offsets, checkpoint age, events, lag,\n"
                "dead-lettered records and the prequential metric, per partition; then each worker's\n"
                "Ray node and the partitions it holds.",
                epilog="example:\n  streamlearn status -c app.yaml --json")
    s.add_argument("--json", action="store_true", help="machine-readable output")

    sc = command("scale", cmd_scale, help="change the number of workers of a running app (planned hand-off, no restart)",
                 description="Ask the running app's Coordinator for N workers (through Redis: no Ray connection needed).\n"
                 "Partitions move by a planned hand-off: the old owner commits, checkpoints and releases; the new\n"
                 "owner takes ownership and restores with nothing to replay. Partitions that stay where they are\n"
                 "are not paused. Exits 0 once the new assignment is applied; 1 line + non-zero if no app runs\n"
                 "or it is not applied in time. processing.workers stays the start value.",
                 epilog="examples:\n  streamlearn scale -c app.yaml --workers 4\n  streamlearn scale -c app.yaml --workers 1 --timeout 120\n\n"
                 "more workers than input partitions: capped at the partition count. Watch it: `streamlearn status`.")
    sc.add_argument("--workers", type=int, required=True, metavar="N", help="owning workers wanted (standbys not counted)")
    sc.add_argument("--timeout", type=float, default=300.0, metavar="S", help="give up waiting after S seconds (default 300)")
    sc.add_argument("--quiet", action="store_true", help="no progress lines, only the result")

    command("config", cmd_config, help="print the validated configuration (secrets masked)",
            description="Load the YAML file, apply STREAMLEARN_<SECTION>__<KEY> overrides, validate,\nprint as JSON.",
            epilog="example:\n  STREAMLEARN_PROCESSING__WORKERS=4 streamlearn config -c app.yaml")

    from streamlearn.ops.cli_models import register as register_models

    register_models(command, _config)
    try:
        from connectors.services.cli import register
    except ImportError:  # pragma: no cover - services layer missing from a trimmed install
        pass
    else:
        register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except StreamlearnError as exc:
        kind = "config error" if isinstance(exc, ConfigError) else "service unavailable" if isinstance(exc, ServiceUnavailableError) else "error"
        print_error(f"streamlearn: {kind}:", exc.message, exc.hint)
        return 2
    except KeyboardInterrupt:
        print("streamlearn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `streamlearn consume | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        return _known_failure(exc)


def _known_failure(exc: Exception) -> int:
    """Service outages and passthrough mistakes as one line; anything else is a bug: re-raise."""
    import redis

    from connectors import kafka_io

    if isinstance(exc, kafka_io.KafkaUnavailable):
        print_error("streamlearn: service unavailable:", f"Kafka: {exc}", "`streamlearn services status`, or check kafka.bootstrap")
    elif isinstance(exc, redis.RedisError):
        print_error("streamlearn: service unavailable:", f"Redis: {type(exc).__name__}: {exc}",
                    "`streamlearn services status`, or check redis.url (password, TLS)")
    elif isinstance(exc, kafka_io.PinnedSettingError):
        print_error("streamlearn: config error:", str(exc), "remove that key from kafka.consumer / kafka.producer")
    else:
        raise exc
    return 2


if __name__ == "__main__":
    sys.exit(main())
