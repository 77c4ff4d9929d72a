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
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench import ckpt_overhead, common, kill_pacing, provenance
from bench.measure import KILL_RULE, Bench, log
from bench.plan import Plan, estimate_s
from bench.serving_row import serving_phase

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RAW = RESULTS / "raw"


SYSTEMS: dict[str, dict[str, Any]] = {
    "io_baseline": {"system": "io_baseline"},
    "streamlearn_eos_1w": {"system": "streamlearn", "guarantee": "exactly_once", "workers": 1},
    "streamlearn_eos_2w": {"system": "streamlearn", "guarantee": "exactly_once", "workers": 2},
    "streamlearn_alo_1w": {"system": "streamlearn", "guarantee": "at_least_once", "workers": 1},
    "streamlearn_labels_1w": {"system": "streamlearn", "guarantee": "exactly_once", "workers": 1, "labels": True},
    "streamlearn_eos_inproc": {"system": "streamlearn", "guarantee": "exactly_once", "workers": 1, "in_process": True},
    "quixstreams_eos": {"system": "quixstreams", "guarantee": "exactly_once"},
    "quixstreams_eos_state": {"system": "quixstreams", "guarantee": "exactly_once", "state": True},
    "quixstreams_alo": {"system": "quixstreams", "guarantee": "at_least_once"},
    "bytewax": {"system": "bytewax", "guarantee": "at_least_once"},
    "bytewax_snap5s": {"system": "bytewax", "guarantee": "at_least_once", "epoch_s": 5.0},
}

# What each system guarantees and how it is configured: stored in summary.json, rendered beside its numbers.
GUARANTEES: dict[str, dict[str, str]] = {
    "model_limit": {"guarantee": "none (no I/O)", "settings": "pre-decoded events, 4 models, one process, no Kafka"},
    "io_baseline": {"guarantee": "none (auto-commit)", "settings": "confluent-kafka consume → orjson → model → produce; no transactions, no checkpoints"},
    "streamlearn_eos_1w": {"guarantee": "exactly-once, model state included", "settings": "1 worker + 1 standby, commit_interval_ms 100, max_batch 5000, checkpoint every 10,000 events (at most one a second) / 5 s (forked child)"},
    "streamlearn_eos_2w": {"guarantee": "exactly-once, model state included", "settings": "2 workers + 1 standby, otherwise as eos_1w"},
    "streamlearn_labels_1w": {"guarantee": "exactly-once, model state and label join included",
                              "settings": "as eos_1w with labels.source topic: events without labels, each label on a co-partitioned label topic (keyed by id, ts 100 ms after its event's), joined in the worker; join journal and sample log in the same transactions"},
    "streamlearn_alo_1w": {"guarantee": "at-least-once, model state included", "settings": "1 worker + 1 standby, offsets in Redis after flush, checkpoints as eos_1w"},
    "quixstreams_eos": {"guarantee": "exactly-once offsets and outputs; models NOT persisted", "settings": "processing_guarantee exactly-once, commit_interval 0.1 s, models in a dict, no state store, no changelog"},
    "quixstreams_eos_state": {"guarantee": "exactly-once, model state included", "settings": "processing_guarantee exactly-once, commit_interval 0.1 s, each partition's model pickled into the RocksDB state store after every event, changelog topic on"},
    "quixstreams_alo": {"guarantee": "at-least-once; models NOT persisted", "settings": "processing_guarantee at-least-once, commit_interval 0.1 s, models in a dict"},
    "bytewax": {"guarantee": "at-least-once (Kafka sink not transactional), model state snapshotted", "settings": "stateful_map keyed by partition, SQLite recovery snapshot every 0.1 s epoch"},
    "bytewax_snap5s": {"guarantee": "at-least-once (Kafka sink not transactional), model state snapshotted", "settings": "as bytewax, snapshot every 5 s epoch (streamlearn's checkpoint_every_s)"},
}

# Run only when named in --systems: the same worker loop without Ray, to tell Ray's cost from the loop's.
DIAGNOSTIC = {"streamlearn_eos_inproc"}
QUICK_SYSTEMS = ["model_limit", "io_baseline", "streamlearn_eos_1w", "quixstreams_eos", "quixstreams_eos_state", "bytewax_snap5s"]
# Throughput only: the latency grid and the kills offer labelled events (label mode would need a paced label stream too).
THROUGHPUT_ONLY = {"streamlearn_labels_1w"}
KINDS = {name: ("streamlearn_labels" if s.get("labels") else s["system"]) for name, s in SYSTEMS.items()}


def median(xs: Sequence[float | None]) -> float | None:
    ys = [x for x in xs if x is not None]
    return statistics.median(ys) if ys else None


def spread(xs: list[float | None]) -> dict[str, float | None]:
    ys = [x for x in xs if x is not None]
    return {"median": median(ys), "min": min(ys) if ys else None, "max": max(ys) if ys else None, "n": len(ys)}


def base_spec(b: Bench, name: str, **extra: Any) -> dict[str, Any]:
    spec = {"guarantee": "exactly_once", "workers": 1, "model": "logreg", "categorical": False, "commit_interval_ms": 100,
            **SYSTEMS[name], **extra}
    app = common.uid(f"b-{name}")
    return {**spec, "app": app, "bootstrap": b.svc.bootstrap, "redis_url": b.svc.redis_url, "state_dir": str(b.tmp / app)}


def throughput_phase(b: Bench, plan: Plan, systems: dict[str, Any]) -> None:
    """Median of runs; rounds interleave the systems (A B C, A B C, ...) so a slow phase of the VM spreads over all.

    `plan.warmup_rounds` rounds go first, the same runs, kept as raw files (kind `throughput_warmup`) and listed
    in summary.json (`warmup_runs`), never counted: a first round on a freshly started broker ran slow for the
    systems at its start. model_limit (no broker) has none."""
    warm: dict[str, list[float]] = {}
    for w in range(plan.warmup_rounds):
        for name in plan.systems:
            if name != "model_limit":
                rec = b.throughput(name, base_spec(b, name), w, plan.events, kind="throughput_warmup")
                warm.setdefault(name, []).append(round(rec["throughput_eps"], 1))
    by: dict[str, list[dict[str, Any]]] = {name: [] for name in plan.systems}
    for r in range(plan.runs):
        for name in plan.systems:
            if name == "model_limit":
                by[name].append(b.model_limit(name, "logreg", False, r, plan.events))
            else:
                by[name].append(b.throughput(name, base_spec(b, name), r, plan.events))
    for name, runs in by.items():
        ok = [r for r in runs if r.get("complete", True)]
        res = [r.get("resources") or {} for r in ok]
        systems[name] = {**GUARANTEES.get(name, {}), "throughput_eps": median([r["throughput_eps"] for r in ok]),
                         "runs": [round(r["throughput_eps"], 1) for r in runs], "complete_runs": len(ok),
                         "latency_p50_ms": None, "latency_p99_ms": None, "recovery_s": None,
                         "peak_rss_mb": median([r.get("peak_rss_mb") or (r.get("resources") or {}).get("peak_rss_total_mb") for r in runs]),
                         "cpu_s_per_1k_events": median([x.get("cpu_s_per_1k_events") for x in res]),
                         "services_cpu_s_per_1k_events": median([x.get("services_cpu_s_per_1k_events") for x in res]),
                         "peak_rss_total_mb": median([x.get("peak_rss_total_mb") for x in res]),
                         "peak_pss_total_mb": median([x.get("peak_pss_total_mb") for x in res]),
                         "processes": median([x.get("processes") for x in res])}
        if name in warm:
            systems[name]["warmup_runs"] = warm[name]
        if any("samples" in r for r in runs):  # label mode: the sample log, read alongside the predictions
            systems[name].update({"samples_complete_runs": sum(1 for r in ok if r.get("samples_complete")),
                                  "samples_throughput_eps": median([r.get("samples_throughput_eps") for r in ok]),
                                  "last_sample_after_last_prediction_s": median([r.get("last_sample_after_last_prediction_s") for r in ok])})


def latency_phase(b: Bench, plan: Plan, systems: dict[str, Any]) -> None:
    """The same offered rates for every system, latency_runs runs each (interleaved); p50/p95/p99 with their spread."""
    names = [n for n in plan.systems if n != "model_limit" and n not in plan.throughput_only]
    by: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(plan.latency_runs):
        for name in names:
            by[name].append(b.latency_grid(name, base_spec(b, name), r))
    for name, runs in by.items():
        grid: dict[str, dict[str, Any]] = {}
        for rate in plan.rates:
            rows = [row for run in runs for row in run["rates"] if row["offered_eps"] == rate]
            grid[str(int(rate))] = {q: spread([row[f"latency_{q}_ms"] for row in rows]) for q in ("p50", "p95", "p99")}
            grid[str(int(rate))]["cpu_s_per_1k_events"] = spread([row["cpu_s_per_1k_events"] for row in rows])
            grid[str(int(rate))]["drained_runs"] = sum(1 for row in rows if row["drained"])
        s = systems.setdefault(name, {**GUARANTEES.get(name, {})})
        s["latency"] = grid
        mid = grid.get("5000") or next(iter(grid.values()))
        # The flat fields of the old shape: the 5k ev/s point (the same offered load for every system).
        s.update({"latency_p50_ms": mid["p50"]["median"], "latency_p99_ms": mid["p99"]["median"], "offered_eps": 5000.0 if "5000" in grid else None})


def recovery_phase(b: Bench, plan: Plan, systems: dict[str, Any]) -> None:
    for name in plan.recovery_systems:
        settings: dict[str, Any] = {"checkpoint_every_s": plan.recovery_checkpoint_every_s, "checkpoint_every_events": 0} \
            if plan.recovery_checkpoint_every_s is not None else {}
        if plan.recovery_standby_refill_delay_s is not None:
            settings["standby_refill_delay_s"] = plan.recovery_standby_refill_delay_s
        rec = b.recovery(name, base_spec(b, name, **settings))
        times = [k["recovery_s"] for k in rec["kills"]]
        firsts = [k["first_output_after_kill_s"] for k in rec["kills"]]
        ok = [t for t in times if t is not None]
        s = systems.setdefault(name, {**GUARANTEES.get(name, {})})
        s.update({"recovery_s": median(ok), "recovery_worst_s": max(ok) if len(ok) == len(times) and ok else None,
                  "recovery_kills": len(times), "recovery_runs_s": times, "recovery_offered_eps": plan.recovery_rate,
                  "recovery_checkpoint_every_s": plan.recovery_checkpoint_every_s,
                  "recovery_standby_refill_delay_s": plan.recovery_standby_refill_delay_s,
                  "first_output_after_kill_s": median(firsts), "first_output_after_kill_worst_s": max((f for f in firsts if f is not None), default=None),
                  # How each kill was paced (`bench/kill_pacing.py`): the state it was made in.
                  "recovery_kill_after_prev_s": [k.get("kill_after_prev_s") for k in rec["kills"]],
                  "recovery_standby_up_wait_s": [k.get("standby_up_wait_s") for k in rec["kills"]],
                  "recovery_standby_warm_wait_s": [k.get("standby_warm_wait_s") for k in rec["kills"]],
                  "recovery_standby_wait_timeouts": sum(1 for k in rec["kills"] if k.get("standby_wait_timed_out"))})


def ckpt_phase(b: Bench, plan: Plan) -> dict[str, Any]:
    """The checkpoint overhead, a small effect (bench.ckpt_overhead): plan.ckpt_rounds rounds of plan.ckpt_n events
    each (80,000 in the full run: the Hoeffding tree is the slow model)."""
    n = plan.ckpt_n

    def measure(arm: str, r: int, settings: dict[str, Any]) -> dict[str, float | None] | None:
        res = b.throughput(f"ckpt_{arm}", base_spec(b, "streamlearn_eos_1w", model="hoeffding", **settings), r, n,
                           extra={"arm": arm, "arm_description": ckpt_overhead.DESCRIPTION[arm]},
                           probe=lambda spec: ckpt_overhead.probe(spec, common.PARTITIONS))
        if not res["complete"]:
            return None
        return {"throughput_eps": res["throughput_eps"], **{f: res["resources"].get(f) for f in ckpt_overhead.CPU_FIELDS}}

    return ckpt_overhead.run_arms(measure, plan.ckpt_rounds, min(plan.ckpt_side_rounds, plan.ckpt_rounds))


def variants_phase(b: Bench, plan: Plan, systems: dict[str, Any], variants: dict[str, Any]) -> None:
    """One run each of the commit intervals and models (plan.variant_events), and the checkpoint overhead."""
    n = plan.variant_events
    variants["checkpoint_hoeffding"] = ckpt_phase(b, plan)
    if plan.ckpt_only:
        return
    ci: dict[str, Any] = {}
    for ms in (10, 1000):
        r = b.throughput(f"commit_{ms}ms", base_spec(b, "streamlearn_eos_1w", commit_interval_ms=ms), 0, n)
        ci[str(ms)] = r["throughput_eps"] if r["complete"] else None
    ci["100"] = systems.get("streamlearn_eos_1w", {}).get("throughput_eps")
    variants["commit_interval_ms"] = ci
    mv: dict[str, Any] = {}
    for model, cat in (("hoeffding", False), ("logreg", True)):
        key = f"{model}{'_categorical' if cat else ''}"
        lim = b.model_limit(f"model_limit_{key}", model, cat, 0, n)
        sl = b.throughput(f"streamlearn_eos_1w_{key}", base_spec(b, "streamlearn_eos_1w", model=model, categorical=cat), 0, n)
        mv[key] = {"model_limit": lim["throughput_eps"], "streamlearn_eos_1w": sl["throughput_eps"] if sl["complete"] else None}
    variants["models"] = mv


def make_plan(args: argparse.Namespace) -> Plan:
    wanted = args.systems.split(",") if args.systems else (
        QUICK_SYSTEMS if args.quick else ["model_limit", *[n for n in SYSTEMS if n not in DIAGNOSTIC]])
    unknown = [w for w in wanted if w != "model_limit" and w not in SYSTEMS]
    if unknown:
        raise SystemExit(f"unknown --systems {unknown}; choose from model_limit,{','.join(SYSTEMS)}")
    plan = Plan.quick(wanted) if args.quick else Plan.full(wanted)
    for attr in ("events", "runs", "warmup_rounds", "latency_runs", "latency_s", "kills", "kill_every_s", "recovery_rate", "recovery_checkpoint_every_s",
                 "recovery_standby_refill_delay_s"):
        v = getattr(args, attr)
        if v is not None:
            setattr(plan, attr, v)
    if plan.recovery_checkpoint_every_s == 0:  # 0: the systems' own checkpoint settings
        plan.recovery_checkpoint_every_s = None
    if args.rates:
        plan.rates = [float(x) for x in args.rates.split(",")]
    plan.variant_events = min(plan.variant_events, plan.events)
    if args.events is not None and plan.ckpt_events is not None:
        plan.ckpt_events = min(plan.ckpt_events, args.events)
    plan.variants = plan.variants and not args.no_variants
    plan.recovery_systems = [w for w in wanted if w.startswith("streamlearn_eos") and w not in DIAGNOSTIC]
    plan.throughput_only = [w for w in wanted if w in THROUGHPUT_ONLY]
    if args.no_latency:
        plan.rates = []
    if args.no_recovery:
        plan.recovery_systems = []
    if args.serving_s is not None:
        plan.serving_s = args.serving_s
    if args.serving_rate is not None:
        plan.serving_rate = args.serving_rate
    if args.no_serving:
        plan.serving_s = 0.0
    plan.ckpt_rounds = args.ckpt_rounds if args.ckpt_rounds is not None else plan.ckpt_rounds
    plan.ckpt_side_rounds = args.ckpt_side_rounds if args.ckpt_side_rounds is not None else plan.ckpt_side_rounds
    if args.ckpt_only:  # the checkpoint-overhead arms alone: no table, latency, recovery, serving or other variants
        plan.systems, plan.rates, plan.recovery_systems, plan.serving_s = [], [], [], 0.0
        plan.variants = plan.ckpt_only = True
    return plan


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: 20k events, 1 run, 2 rates, 2 kills, 6 systems (a few minutes)")
    ap.add_argument("--events", type=int, help="events per throughput run (full 300000; quick 20000)")
    ap.add_argument("--runs", type=int, help="throughput runs per system (median; full 3)")
    ap.add_argument("--warmup-rounds", type=int, help="throughput rounds run first and not counted (full 1; quick 0)")
    ap.add_argument("--rates", help="offered loads of the latency grid, ev/s, comma-separated (full 2000,5000,10000)")
    ap.add_argument("--latency-runs", type=int, help="latency runs per system and rate (full 3)")
    ap.add_argument("--latency-s", type=float, help="seconds of offered load per rate (full 5; the first second not counted)")
    ap.add_argument("--kills", type=int, help="SIGKILLs per recovery configuration (full 5)")
    ap.add_argument("--kill-every-s", type=float, help="seconds between kills (full 8)")
    ap.add_argument("--recovery-rate", type=float, help="offered ev/s during the kills (full 5000)")
    ap.add_argument("--recovery-checkpoint-every-s", type=float,
                    help="checkpoint.every_s of the recovery runs, by time only (default 1; 0: the systems' own, 5 s / 10,000 events)")
    ap.add_argument("--recovery-standby-refill-delay-s", type=float,
                    help="processing.standby_refill_delay_s of the recovery runs (default 5; 0, the product default: Ray restarts the dead worker)")
    ap.add_argument("--systems", default=None, help="comma-separated subset of model_limit," + ",".join(SYSTEMS))
    ap.add_argument("--run-timeout", type=float, default=600.0)
    ap.add_argument("--no-variants", action="store_true", help="skip commit-interval, checkpoint and model variants")
    ap.add_argument("--ckpt-rounds", type=int, help="rounds of the checkpoint-overhead arms never / every 1 s (full 5)")
    ap.add_argument("--ckpt-side-rounds", type=int, help="of those, rounds that also run every 1 s + publish and inline (full 3)")
    ap.add_argument("--ckpt-only", action="store_true", help="run only the checkpoint-overhead arms (bench/ckpt_overhead.py)")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--no-recovery", action="store_true")
    ap.add_argument("--no-serving", action="store_true", help="skip the serving row (bench/serving.py)")
    ap.add_argument("--serving-s", type=float, help="seconds of offered requests in the serving row (full 60; quick 15)")
    ap.add_argument("--serving-rate", type=float, help="requests/s offered in the serving row (200)")
    ap.add_argument("--estimate", action="store_true", help="print the plan and its estimated duration, then exit")
    ap.add_argument("--bootstrap", help="use this broker instead of starting a private one")
    ap.add_argument("--redis-url", help="use this Redis instead of starting a private one")
    ap.add_argument("--out", default=str(RESULTS / "summary.json"))
    ap.add_argument("--raw-dir", default=str(RAW))
    ap.add_argument("--note", default="", help="free-text note on the run conditions, stored in summary.json")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    plan = make_plan(args)
    est = estimate_s(plan, KINDS)
    log(f"plan: {plan}")
    log(f"estimated duration on this machine (2 vCPUs): {est['total'] / 60:.1f} min {est}")
    if args.estimate:
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="streamlearn-bench-"))
    if args.bootstrap and args.redis_url:
        svc = common.Services(args.bootstrap, args.redis_url)
    else:
        log(f"starting private Kafka + Redis under {tmp}")
        svc = common.start_services(tmp)
    log(f"kafka {svc.bootstrap} redis {svc.redis_url.split('@')[-1]}")
    prov = provenance.stamp(sys.argv if argv is None else ["bench.run", *argv])
    summary: dict[str, Any] = {
        "provenance": prov, "machine": {**prov["machine"], "note": args.note},
        "config": {"events": plan.events, "ckpt_events": plan.ckpt_n, "runs": plan.runs, "warmup_rounds": plan.warmup_rounds, "partitions": common.PARTITIONS, "rates_eps": plan.rates,
                   "latency_runs": plan.latency_runs, "latency_s": plan.latency_s, "warmup_s": plan.warmup_s, "kills": plan.kills,
                   "kill_every_s": plan.kill_every_s, "kill_rule": KILL_RULE, "kill_max_wait_s": kill_pacing.MAX_WAIT_S,
                   "first_kill_s": kill_pacing.FIRST_KILL_S, "caught_up_ms": kill_pacing.CAUGHT_UP_MS,
                   "recovery_offered_eps": plan.recovery_rate, "quick": args.quick,
                   "serving_s": plan.serving_s, "serving_rate": plan.serving_rate,
                   "model": "StandardScaler | LogisticRegression (numeric)", "estimated_s": est},
        "systems": {}, "variants": {}}
    b = Bench(plan, svc, tmp, Path(args.raw_dir), args.run_timeout)
    started = time.time()
    try:
        throughput_phase(b, plan, summary["systems"])
        if plan.rates:
            latency_phase(b, plan, summary["systems"])
        recovery_phase(b, plan, summary["systems"])
        if plan.variants:
            variants_phase(b, plan, summary["systems"], summary["variants"])
        if plan.serving:
            serving_phase(b, plan, summary)
    finally:
        summary["wall_s"] = round(time.time() - started, 1)
        summary["machine"]["loadavg_at_end"] = provenance.loadavg()
        if not (args.bootstrap and args.redis_url):
            svc.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    log(f"wrote {args.out} (wall {summary['wall_s']} s, estimated {est['total']} s)")
    try:
        from bench import plots

        # The docs' plots only from the docs' summary; a run written elsewhere gets its plots beside it.
        img = ROOT / "docs" / "img" if Path(args.out).resolve() == (RESULTS / "summary.json").resolve() else Path(args.out).parent / "img"
        plots.render(summary, b.raw, img)
    except Exception as exc:  # plots are a convenience; the JSON is the result
        log(f"plots failed: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
