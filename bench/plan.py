"""What one `bench.run` invocation measures, and how long it will take.

The full run is meant to happen once, on a quiet machine, so the one who
starts it must know beforehand how long the machine has to stay quiet:
`estimate_s` adds up the phases from per-system start-up and speed figures
observed on this machine (2 vCPUs; `bench/results/raw/*-throughput-*.json`,
`startup_s` and `throughput_eps`), and `bench.run` prints it before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Observed on this machine (seconds from spawn to first committed prediction; events/s).
# streamlearn_labels: a guess until measured (the target is 0.6 x inline); start-up also creates the join topics.
STARTUP_S = {"streamlearn": 14.0, "streamlearn_labels": 15.0, "quixstreams": 2.5, "bytewax": 2.5, "io_baseline": 1.5, "model_limit": 2.0}
SPEED_EPS = {"streamlearn": 22_000.0, "streamlearn_labels": 13_000.0, "quixstreams": 13_000.0, "bytewax": 25_000.0, "io_baseline": 38_000.0, "model_limit": 50_000.0}
STOP_S = {"streamlearn": 6.0, "streamlearn_labels": 6.0, "quixstreams": 2.0, "bytewax": 2.0, "io_baseline": 1.0, "model_limit": 0.0}
HOEFFDING_EPS = 8_000.0  # the Hoeffding tree through streamlearn_eos_1w
TOPIC_S = 1.5  # create + delete topics, reader start, per measurement
DRAIN_S = 1.5  # between two rates of the latency grid: the previous rate's tail drains
LABELS_SAMPLES_TAIL_S = 2.0  # label mode: waiting for the sample log to complete after the last prediction
# Serving row (bench/serving.py): `streamlearn serve` start-up (Ray, Serve, HAProxy, first replica), every partition's
# first published version (publish every 2 s), and its SIGTERM; the learner it runs beside starts and stops as above.
SERVE_STARTUP_S, SERVE_FIRST_VERSIONS_S, SERVE_STOP_S = 20.0, 6.0, 8.0
#: The recovery runs checkpoint every second (by time only): what is replayed after a kill is at most about a
#: second of input instead of five (docs/recovery-timeline.md measures both). The other rows keep the default.
RECOVERY_CHECKPOINT_EVERY_S = 1.0
#: A takeover's next standby starts 5 s after it (`processing.standby_refill_delay_s: 5`; the product default is 0),
#: not at once by a Ray restart: the restart's start-up took a core from the new owner's catch-up
#: (docs/recovery-timeline.md measures both). The row's name says so.
RECOVERY_STANDBY_REFILL_DELAY_S = 5.0
SERVE_WARMUP_S, SERVE_QUICK_WARMUP_S = 20.0, 5.0  # offered before the measured window, not counted (bench/serving_row.py)


@dataclass
class Plan:
    events: int
    runs: int
    rates: list[float]
    latency_runs: int
    latency_s: float
    warmup_s: float
    kills: int
    kill_every_s: float
    recovery_rate: float
    systems: list[str]
    variants: bool
    variant_events: int
    recovery_systems: list[str] = field(default_factory=list)
    throughput_only: list[str] = field(default_factory=list)  # no latency grid (label mode)
    serving_s: float = 0.0  # seconds of offered requests in the serving row (0: no serving row)
    serving_rate: float = 200.0  # requests/s offered to POST /predict
    recovery_checkpoint_every_s: float | None = None  # the recovery runs' checkpoint.every_s (None: the systems' own)
    recovery_standby_refill_delay_s: float | None = None  # their processing.standby_refill_delay_s (None: the default)
    ckpt_rounds: int = 5  # checkpoint overhead (bench.ckpt_overhead): rounds of never / every 1 s, paired per round
    ckpt_side_rounds: int = 3  # of those, rounds that also run every 1 s + publish and every 1 s inline
    ckpt_only: bool = False  # the variants phase runs the checkpoint arms only
    # Throughput rounds run first and not counted (raw kind `throughput_warmup`): in the full run on dc4cda0 the
    # first round ran slow for the systems at its start (io_baseline 31,031 against 43,238 and 41,170 after;
    # eos_1w 22,343 against 31,985 and 31,753), on a broker up for about 11 s (bench/results/raw/loop-spin-s33/).
    warmup_rounds: int = 0
    ckpt_events: int | None = None  # events per checkpoint-overhead arm (None: two thirds of `events`)

    @property
    def ckpt_n(self) -> int:
        return self.ckpt_events if self.ckpt_events is not None else self.events * 2 // 3

    @property
    def serving(self) -> bool:
        return self.serving_s > 0

    @property
    def serving_warmup_s(self) -> float:
        """Seconds of the serving row's load offered first and not counted: 20, or 5 for a window under 60 s."""
        return SERVE_WARMUP_S if self.serving_s >= 60 else SERVE_QUICK_WARMUP_S

    @staticmethod
    def full(systems: list[str]) -> Plan:
        # 300,000 events a throughput run (6-8 s measured at 40-55k ev/s): with 120,000 (2-3 s) a run sampled the
        # VM's speed at one moment, and io_baseline / eos_1w moved 0.75-1.19 between rounds of one run (summary.json
        # of 35ba5f8's); at 300,000 three rounds gave 0.88-0.92 (bench/results/raw/ckpt-rate-s40/). The checkpoint
        # arms keep the 80,000 events they had (a Hoeffding tree grows with what it learns: same tree sizes as before).
        return Plan(events=300_000, ckpt_events=80_000, runs=3, rates=[2000.0, 5000.0, 10000.0], latency_runs=3, latency_s=5.0, warmup_s=1.0,
                    kills=5, kill_every_s=8.0, recovery_rate=5000.0, systems=systems, variants=True, variant_events=60_000,
                    serving_s=60.0, recovery_checkpoint_every_s=RECOVERY_CHECKPOINT_EVERY_S,
                    recovery_standby_refill_delay_s=RECOVERY_STANDBY_REFILL_DELAY_S, warmup_rounds=1)

    @staticmethod
    def quick(systems: list[str]) -> Plan:
        return Plan(events=20_000, runs=1, rates=[2000.0, 5000.0], latency_runs=1, latency_s=4.0, warmup_s=1.0,
                    kills=2, kill_every_s=7.0, recovery_rate=2000.0, systems=systems, variants=False, variant_events=20_000,
                    serving_s=15.0, ckpt_rounds=2, ckpt_side_rounds=1, recovery_checkpoint_every_s=RECOVERY_CHECKPOINT_EVERY_S,
                    recovery_standby_refill_delay_s=RECOVERY_STANDBY_REFILL_DELAY_S)


def _kind(system: str, kinds: dict[str, str]) -> str:
    return kinds.get(system, system)


def estimate_s(plan: Plan, kinds: dict[str, str]) -> dict[str, float]:
    """Seconds per phase; `kinds` maps a system name to its implementation (streamlearn, quixstreams, ...)."""
    thr = lat = rec = var = 0.0
    for name in plan.systems:
        k = _kind(name, kinds)
        run_s = STARTUP_S[k] + plan.events / SPEED_EPS[k] + STOP_S[k] + (TOPIC_S if k != "model_limit" else 0.0)
        if k == "streamlearn_labels":
            run_s += TOPIC_S + LABELS_SAMPLES_TAIL_S  # journal + sample log topics; the sample log's tail after the last prediction
        thr += (plan.warmup_rounds + plan.runs) * run_s
        if k != "model_limit" and name not in plan.throughput_only and plan.rates:  # no rates: no latency phase
            lat += plan.latency_runs * (STARTUP_S[k] + 2.0 + len(plan.rates) * (plan.latency_s + DRAIN_S) + STOP_S[k] + TOPIC_S)
    for _name in plan.recovery_systems:
        rec += STARTUP_S["streamlearn"] + 2.0 + 3.0 + plan.kills * plan.kill_every_s + 5.0 + STOP_S["streamlearn"] + TOPIC_S
    if plan.variants:
        sl = STARTUP_S["streamlearn"] + STOP_S["streamlearn"] + TOPIC_S
        # Checkpoint overhead: never / 1 s every round, 1 s + publish and 1 s inline in the side rounds (Hoeffding
        # tree at ~8k ev/s through streamlearn, ckpt_* raw files of the 2026-11-28 run).
        side = min(plan.ckpt_side_rounds, plan.ckpt_rounds)
        var += (2 * plan.ckpt_rounds + 2 * side) * (sl + plan.ckpt_n / HOEFFDING_EPS)
        if not plan.ckpt_only:
            var += 2 * (sl + plan.variant_events / 18_000.0)  # commit interval 10 and 1000 ms
            var += 2 * (sl + plan.variant_events / 11_000.0) + 2 * (STARTUP_S["model_limit"] + plan.variant_events / 18_000.0)
    serve = (STARTUP_S["streamlearn"] + SERVE_STARTUP_S + SERVE_FIRST_VERSIONS_S + plan.serving_s + plan.serving_warmup_s + SERVE_STOP_S
             + STOP_S["streamlearn"] + TOPIC_S) if plan.serving else 0.0
    produce = 10.0 + 2 * plan.events / 50_000.0  # dataset + backlog topics
    if any(_kind(n, kinds) == "streamlearn_labels" for n in plan.systems):
        produce += 3.0 + 2 * plan.events / 50_000.0  # label mode's own backlog: unlabelled events + their labels
    return {"throughput": round(thr), "latency": round(lat), "recovery": round(rec), "variants": round(var),
            "serving": round(serve), "setup": round(produce + 25.0), "total": round(thr + lat + rec + var + serve + produce + 25.0)}
