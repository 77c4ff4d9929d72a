"""`streamlearn models list|show|export|rollback|pin|unpin` and `streamlearn serve`.

What is served, per partition, is a pointer in Redis (`connectors.version_store`):
`latest` follows every version the learner publishes; `rollback` and `pin`
hold serving on one version until `unpin`. Every change is pushed to running
`streamlearn serve` processes at once.

`rollback --restart-learning` also restarts the learner's model from that
version. Replay semantics: the version's model is checkpointed at the
partition's committed offset K under a new epoch, so the next owner restores
it and learns from K on; the events between the version's offset and K are
not learned again (their predictions stay as committed). In label mode the
join's state cannot be rebuilt at K without replaying the journal, so the
version's model replaces the model of the last checkpoint (R <= K) and keeps
its join state: the next owner replays the join journal from R into the
version's model (the labels joined in [R, K) are learned again, silently).

It needs the learner stopped for that partition: a running owner holds the
partition's lease and its in-flight checkpoints would overwrite the restart.
With a live lease the command fails at once, before changing anything, with
one line saying what to do (stop `streamlearn run`, or drop the flag to change
only what is served); the learner is never stopped behind the operator's back.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from connectors import kafka_io
from connectors.redis_store import CheckpointStore, open_store
from connectors.version_store import VersionStore
from streamlearn.config import AppConfig
from streamlearn.errors import ConfigError, StreamlearnError
from streamlearn.models import blob
from streamlearn.state import checkpoint
from streamlearn.state.checkpoint import ModelState

Command = Callable[..., argparse.ArgumentParser]


class _Ctx:
    def __init__(self, cfg: AppConfig) -> None:
        self.cfg = cfg
        self.store: CheckpointStore = open_store(cfg.redis, cfg.app, cfg.kafka.input_topic)
        self.versions = VersionStore(self.store)

    def partitions(self, only: int | None) -> list[int]:
        """The partitions to act on. A named partition with published versions needs no Kafka: a rollback or
        pin must work while the broker is slow or down (it changes only what is served, in Redis)."""
        if only is not None and (self.versions.versions(only) or self.versions.served(only).version is not None):
            return [only]
        parts = kafka_io.topic_partitions(kafka_io.admin(self.cfg.kafka.bootstrap, self.cfg.kafka.consumer), self.cfg.kafka.input_topic)
        if parts is None:
            raise ConfigError(f"kafka.input_topic: topic '{self.cfg.kafka.input_topic}' does not exist", hint="produce to it first")
        if only is not None and only not in parts:
            raise ConfigError(f"--partition {only}: {self.cfg.kafka.input_topic} has partitions {parts[0]}..{parts[-1]}")
        return [only] if only is not None else parts

    def version(self, p: int, v: int | None) -> int:
        """V, checked to exist; default: the served version."""
        v = v if v is not None else self.versions.served(p).version
        if v is None:
            raise StreamlearnError(f"partition {p} has no published version yet", hint="run the learner for model.publish.every_s")
        if v not in self.versions.versions(p):
            raise self.not_kept(p, v)
        return v

    def before_served(self, p: int) -> int:
        """The newest kept version older than the served one (rollback's default)."""
        served = self.versions.served(p).version
        older = [x for x in self.versions.versions(p) if served is not None and x < served]
        if not older:
            raise StreamlearnError(f"partition {p}: no version older than the served one ({served}) is kept", hint="name one with --version")
        return older[-1]

    def not_kept(self, p: int, v: int) -> StreamlearnError:
        return StreamlearnError(f"partition {p} has no version {v} (kept: {self.versions.versions(p)})",
                                hint=f"model.publish.keep={self.cfg.model.publish.keep} versions are kept per partition")


def cmd_list(cfg: AppConfig, args: argparse.Namespace) -> int:
    c = _Ctx(cfg)
    rows = []
    for p in c.partitions(args.partition):
        served = c.versions.served(p)
        for v in c.versions.versions(p):
            meta = c.versions.meta(p, v) or {}
            rows.append({**meta, "served": v == served.version, "mode": served.mode if v == served.version else None})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'part':>4} {'version':>7} {'served':<9} {'offset':>9} {'learned':>9} {'metric':<18} {'size':>9} created")
    for r in rows:
        m = r.get("metric") or {}
        mv = f"{m.get('name')}={m['value']:.4f}" if m.get("value") is not None else "-"
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.get("created_at", 0) / 1000))
        print(f"{r['partition']:>4} {r['version']:>7} {(r['mode'] or ''):<9} {r['offset']:>9} {r['events_learned']:>9} {mv:<18} "
              f"{r['size_bytes']:>9} {created}")
    return 0


def cmd_show(cfg: AppConfig, args: argparse.Namespace) -> int:
    c = _Ctx(cfg)
    for p in c.partitions(args.partition):
        v = c.version(p, args.version)
        served = c.versions.served(p)
        print(json.dumps({**(c.versions.meta(p, v) or {}), "served": served.version == v, "served_mode": served.mode}, indent=2))
    return 0


def cmd_export(cfg: AppConfig, args: argparse.Namespace) -> int:
    c = _Ctx(cfg)
    for p in c.partitions(args.partition):
        v = c.version(p, args.version)
        stored = c.versions.read(p, v)
        assert stored is not None
        blob.open_blob(stored[1], blob.key_for(cfg, p), expect={"app": cfg.app, "partition": p, "version": v})  # never export a bad one
        model_path, meta_path = blob.export(stored[1], stored[0], Path(args.out), f"{cfg.app}-p{p}-v{v}")
        print(f"{model_path}\n{meta_path}")
    return 0


def cmd_rollback(cfg: AppConfig, args: argparse.Namespace) -> int:
    c = _Ctx(cfg)
    for p in c.partitions(args.partition):
        target: int | str
        if args.version is not None:
            target = c.version(p, args.version)
        elif args.restart_learning:  # the learner must be stopped (checked next): nothing publishes, nothing is trimmed
            target = c.before_served(p)
        else:
            target = "before_served"  # chosen in the script that sets it: a running learner's publishes can't trim it first
        if args.restart_learning:
            assert isinstance(target, int)
            _restart_learning(c, p, target)
        chosen = c.versions.set_served(p, target, "rollback")
        if chosen is None:
            if isinstance(target, int):
                raise c.not_kept(p, target)
            c.before_served(p)  # raises, naming the served version, when nothing older is kept
            raise StreamlearnError(f"partition {p}: no version older than the served one is kept", hint="name one with --version")
        print(f"partition {p}: serving version {chosen} (rollback{', learning restarted from it' if args.restart_learning else ''}; "
              f"`streamlearn models unpin` follows the newest again)")
    return 0


def _restart_learning(c: _Ctx, p: int, v: int) -> None:
    owner, ttl_ms = c.store.lease(p)
    if owner is not None:
        raise StreamlearnError(
            f"--restart-learning: partition {p} is owned by a running learner ({owner}, lease valid {ttl_ms / 1000:.1f} s more); "
            f"stop `streamlearn run` (Ctrl-C/SIGTERM: it checkpoints and releases the lease; a killed one's lease expires "
            f"by itself) and run this command again, or drop --restart-learning to change only what is served")
    stored = c.versions.read(p, v)
    assert stored is not None
    key = blob.key_for(c.cfg, p)
    model = blob.open_blob(stored[1], key, expect={"app": c.cfg.app, "partition": p, "version": v})
    old = c.store.read_checkpoint(p)
    current = checkpoint.decode(old.blob, key) if old is not None else None
    if c.cfg.processing.guarantee == "exactly_once":
        consumer = kafka_io.make_consumer(c.cfg.kafka.bootstrap, c.cfg.group_id, c.cfg.kafka.consumer)
        try:
            k = kafka_io.committed_offsets(consumer, c.cfg.kafka.input_topic, [p])[p]
        finally:
            consumer.close()
    else:
        k = c.store.committed_offset(p)
    k = k if k is not None else int(model.meta["offset"])
    version_state = checkpoint.decode(stored[1], key)
    if c.cfg.label_mode and current is None:
        raise StreamlearnError(f"--restart-learning: partition {p} has no checkpoint to restart from (labels.source: topic "
                               f"keeps the join's state in it); run the learner until it checkpoints, then retry")
    if c.cfg.label_mode and current is not None:
        # The join state is valid at the checkpoint's offset only: keep both, and the journal replay relearns [R, K).
        k, extra = current.offset, current.extra
    else:
        extra = {"dlq": current.extra.get("dlq", 0)} if current is not None else {}
    state = ModelState(model=model.model, metric=version_state.metric, offset=k, model_version=version_state.model_version,
                       events=current.events if current is not None else version_state.events,
                       extra=extra, spec_id=version_state.spec_id)
    epoch = c.store.next_epoch(p)  # fences any owner that would still write
    res = c.store.write_checkpoint(p, epoch, k, checkpoint.encode(state, key))
    if not res.ok:
        raise StreamlearnError(f"partition {p}: checkpoint at offset {k} refused (code {res.code}, current {res.current})")


def cmd_pin(cfg: AppConfig, args: argparse.Namespace) -> int:
    c = _Ctx(cfg)
    for p in c.partitions(args.partition):
        # Checked and pinned in one script: with no --version, the version served at that instant.
        v = c.versions.set_served(p, args.version if args.version is not None else "served", "pinned")
        if v is None:
            if args.version is not None:
                raise c.not_kept(p, args.version)
            raise StreamlearnError(f"partition {p} has no published version yet", hint="run the learner for model.publish.every_s")
        print(f"partition {p}: pinned on version {v} until `streamlearn models unpin`")
    return 0


def cmd_unpin(cfg: AppConfig, args: argparse.Namespace) -> int:
    c = _Ctx(cfg)
    for p in c.partitions(args.partition):
        v = c.versions.set_served(p, "newest", "latest")
        print(f"partition {p}: serving the newest version again ({v})")
    return 0


def cmd_serve(cfg: AppConfig, args: argparse.Namespace) -> int:
    try:
        from streamlearn.serving.app import serve_forever
    except ImportError as exc:
        raise ConfigError(f"serving needs Ray Serve ({exc})", hint="pip install 'streamlearn[serve]' (make setup installs it)") from None
    host = args.host or cfg.serving.host
    port = args.port if args.port is not None else cfg.serving.port

    def ready(h: str, p: int) -> None:
        print(f"[streamlearn] serving {cfg.app} on http://{h}:{p} (POST /predict, GET /models, /healthz, /metrics)",
              file=sys.stderr, flush=True)

    serve_forever(cfg, args.ray_address, host, port, ready)
    print("[streamlearn] serving stopped", file=sys.stderr)
    return 0


ACTIONS: dict[str, tuple[Callable[[AppConfig, argparse.Namespace], int], str]] = {
    "list": (cmd_list, "published versions per partition, and which one is served"),
    "show": (cmd_show, "the metadata of one version (default: the served one)"),
    "export": (cmd_export, "write a version as a signed file + metadata JSON (load it with streamlearn.models.load)"),
    "rollback": (cmd_rollback, "serve an older version now (default: the one before the served one) until unpin"),
    "pin": (cmd_pin, "freeze serving on a version (default: the served one) until unpin"),
    "unpin": (cmd_unpin, "serve the newest published version again, and follow new ones"),
}


def register(command: Command, config_of: Callable[[argparse.Namespace], AppConfig]) -> None:
    def run_action(args: argparse.Namespace) -> int:
        return ACTIONS[args.action][0](config_of(args), args)

    m = command("models", run_action, help="published model versions: list, show, export, rollback, pin, unpin",
                description="Published model versions per partition (model.publish): lineage, the validation gate's\n"
                "outcome, and what `streamlearn serve` answers with.",
                epilog="examples:\n  streamlearn models list -c app.yaml\n  streamlearn models export -c app.yaml --partition 0 --out models/\n"
                "  streamlearn models rollback -c app.yaml --partition 0 --version 3\n  streamlearn models unpin -c app.yaml")
    m.add_argument("action", choices=list(ACTIONS), help="; ".join(f"{k}: {v[1]}" for k, v in ACTIONS.items()))
    m.add_argument("--partition", type=int, default=None, metavar="P", help="one partition (default: all)")
    m.add_argument("--version", type=int, default=None, metavar="V", help="the version (default: see each action)")
    m.add_argument("--out", default=".", metavar="DIR", help="export: directory to write to (default: .)")
    m.add_argument("--restart-learning", action="store_true",
                   help="rollback: also restart the learner from that version (the learner must be stopped; see README)")
    m.add_argument("--json", action="store_true", help="list: machine-readable output")

    s = command("serve", lambda args: cmd_serve(config_of(args), args),
                help="serve request-time predictions from the newest published versions (Ray Serve)",
                description="Start a Ray Serve application answering POST /predict with the served version of the\n"
                "partition each id was produced to; new versions, rollbacks and pins arrive by push.\n"
                "Runs until Ctrl-C/SIGTERM, with or without `streamlearn run`.",
                epilog="example:\n  streamlearn serve -c app.yaml --port 8000\n"
                "  curl -s localhost:8000/predict -d '{\"id\": \"e-1\", \"features\": {\"x0\": 0.5}}'")
    s.add_argument("--host", default=None, help="bind address (default: serving.host, 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="port (default: serving.port, 8000)")
    s.add_argument("--ray-address", default=None, help="join an existing Ray cluster (default: start a local one)")


__all__ = ["register"]
