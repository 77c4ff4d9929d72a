"""The sections of docs/benchmarks.md (see bench.report): tables from the data, prose without figures of its own."""

from __future__ import annotations

from typing import Any

ORDER = ["model_limit", "io_baseline", "streamlearn_eos_1w", "streamlearn_eos_2w", "streamlearn_alo_1w", "streamlearn_labels_1w",
         "quixstreams_eos", "quixstreams_eos_state", "quixstreams_alo", "bytewax", "bytewax_snap5s"]
PEERS = ["quixstreams_eos", "quixstreams_eos_state", "quixstreams_alo", "bytewax", "bytewax_snap5s"]
NA = "–"



def fmt(v: Any, nd: int = 0) -> str:
    """Numbers as the page shows them: thousands separators, `nd` decimals; None as "–"."""
    if v is None:
        return NA
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int | float):
        return f"{v:,.{nd}f}"
    return str(v)


NOT_MEASURED = "not measured"
NOT_RECORDED = "not recorded in this summary.json"


def _code(v: Any) -> str:
    return f"`{v}`" if v not in (None, "") else NOT_RECORDED


def header(summary: dict[str, Any]) -> str:
    p, m, c = summary.get("provenance", {}), summary.get("machine", {}), summary.get("config", {})
    git = p.get("git", {})
    libs = m.get("libraries") or {k: m.get(k) for k in ("river", "confluent_kafka", "librdkafka") if m.get(k)}
    lib_txt = ", ".join(f"`{k} {v}`" for k, v in libs.items() if v) or NOT_RECORDED
    quiet = m.get("loadavg_at_start")
    return "\n".join([
        "# Benchmarks",
        "",
        "<!-- Rendered by `python -m bench.report --write` from bench/results/summary.json and bench/results/raw/;",
        "     do not edit by hand: tests/unit/test_bench_doc.py checks every figure against the data. -->",
        "",
        "streamlearn beside its peers and beside the same model with no guarantees, on one machine, in one run.",
        "Every figure below is read from `bench/results/summary.json` and the per-run files in",
        "`bench/results/raw/`; a figure the data does not hold is shown as \"–\" or \"not measured\".",
        "",
        "## Provenance",
        "",
        "| | |",
        "|---|---|",
        f"| commit | {_code(git.get('commit'))}{' (working tree dirty: ' + str(len(git.get('dirty_files', []))) + ' files)' if git.get('dirty') else ''} |",
        f"| command | {_code(p.get('command'))} |",
        f"| machine | {_code(m.get('cpu_model'))}, {fmt(m.get('cpu_count'))} CPUs, {fmt(m.get('mem_gb'), 1)} GB RAM, kernel {_code(m.get('kernel'))}, Python {_code(m.get('python'))} |",
        f"| libraries | {lib_txt} |",
        f"| load average at start (`1 5 15` min) | {', '.join(fmt(x, 2) for x in quiet) if quiet else NOT_RECORDED} |",
        f"| load average at end | {', '.join(fmt(x, 2) for x in m['loadavg_at_end']) if m.get('loadavg_at_end') else NOT_RECORDED} |",
        f"| wall time of the run, s | {fmt(summary.get('wall_s'))} (estimated beforehand: {fmt((c.get('estimated_s') or {}).get('total'))}) |",
        f"| note | {m.get('note') or NA} |",
        *[f"| re-measured after the run: {', '.join(r.get('rows', []))} | commit {_code(r.get('commit'))}, {_code(r.get('command'))}, "
          f"load average at start {', '.join(fmt(x, 2) for x in r.get('loadavg_at_start') or []) or NOT_RECORDED}: {r.get('why', NA)} |"
          for r in summary.get("reruns", [])],
        "",
        "The machine's cores are shared by the broker (a JVM), Redis, the measuring consumer and producer and the",
        "system under test; the load average says how busy it was. Each raw file carries the load average",
        "before and after its own run (`loadavg_before`, `loadavg_after`).",
    ])


def recovery_pacing(c: dict[str, Any]) -> str:
    """The kills' rule (`bench/kill_pacing.py`): each one a single failure of 1 worker + a standby that is up."""
    return (f"each from steady state: at least {fmt(c.get('kill_every_s'), 1)} s after the previous kill, once every partition "
            "answered an event produced after it and caught up (its latest answer within "
            f"{fmt(c.get('caught_up_ms'))} ms of the event's production), and the next standby was up (the actor it hit, restarted by "
            "Ray: the Coordinator's `worker_restarted_up`; or, with `standby_refill_delay_s` > 0, the fresh standby started after the "
            "delay) with its clients connected (its `standby_warm`), waiting at most "
            f"{fmt(c.get('kill_max_wait_s'))} s (raw files: `kill_after_prev_s`, `standby_up_wait_s`, `standby_warm_wait_s`, "
            f"`standby_wait_timed_out`, and each kill's engine events); the first kill {fmt(c.get('first_kill_s'), 1)} s into the "
            "offered load, once every actor is warm, ")


def method(summary: dict[str, Any]) -> str:
    c = summary.get("config", {})
    rates = ", ".join(fmt(r) for r in c.get("rates_eps", [])) or NOT_RECORDED
    return "\n".join([
        "## How it is measured",
        "",
        "`python -m bench.run` (`make bench`) starts a private Kafka and Redis, produces the dataset",
        "(`streamlearn.tools.datasets.synthetic_events(seed=7)`) once, and runs each system as its own process against",
        "the same input topic and the same model per input partition (`bench/models.py`). A `read_committed` consumer",
        "in the orchestrator measures every system from outside.",
        "",
        f"* **throughput**: {fmt(c.get('events'))} events in the input topic before the system starts, "
        f"{fmt(c.get('partitions'))} partitions; events/s from the first to the last committed prediction "
        f"(start-up not counted); median of {fmt(c.get('runs'))} interleaved runs (all listed)"
        + (f", after {fmt(c.get('warmup_rounds'))} warm-up round(s) of the same runs, not counted (listed below the table)."
           if c.get("warmup_rounds") else "."),
        f"* **latency**: the same offered loads for every system ({rates} ev/s), each for {fmt(c.get('latency_s'), 1)} s "
        f"in one system lifetime, the first {fmt(c.get('warmup_s'), 1)} s not counted; {fmt(c.get('latency_runs'))} runs; latency = arrival at "
        "the `read_committed` consumer minus the produce time written into the event (same clock), every fourth prediction; "
        "the table gives the median over runs and the spread (min–max). The offered load comes from one paced producer in "
        "the orchestrator (`linger.ms` 2, `connectors.kafka_io.Pacer`); it sends records up to 1 ms early rather than "
        "busy-wait the gaps between them (until f56e72c it did, and used up to a core beside the system under test).",
        f"* **recovery**: {fmt(c.get('kills'))} SIGKILLs of a `ray::PartitionWorker` that owns partitions (the pid the owner of "
        "partition `kill % 4` publishes in Redis; `victim_chosen_by` in the raw files), "
        + (recovery_pacing(c) if c.get("kill_rule") == "steady" else f"{fmt(c.get('kill_every_s'), 1)} s apart, ")
        + f"under {fmt(c.get('recovery_offered_eps'))} ev/s offered; per kill, the time until every "
        "partition answered an event produced after the kill (`recovery_s`); median and worst.",
        "* **resources**: every process a system starts (for streamlearn: driver, Ray's GCS, raylet, dashboard, the",
        "Coordinator, workers, standby, forked checkpoint children), sampled from `/proc` (`bench/resources.py`):",
        "CPU-seconds per 1k events over the measured window, and the peak of the summed PSS (shared pages split",
        "between processes) and of the summed RSS (shared pages counted per process: an upper bound). The private broker's",
        "and Redis's CPU in the same window is given apart (transactions and checkpoints make them work for the system).",
        "* **label mode** (`streamlearn_labels_1w`, delayed labels): the same app and model as `streamlearn_eos_1w` with",
        "`labels.source: topic`; the same events without their labels, each label on a co-partitioned label topic (keyed",
        "by id, `ts` = the event's `ts` + `bench.common.LABEL_DELAY_MS`), both topics filled before the system starts.",
        "Throughput is measured as for the others (committed predictions); the sample log is read alongside, and a run",
        "records whether it held one sample per event (raw files: `samples`, `samples_complete`). Throughput only: the",
        "latency grid and the kills offer labelled events.",
        "* **run lengths**: chosen so that the full run (every system, the grid, the kills, the variants) takes about half",
        *(["an hour on this 2-vCPU machine, about six minutes less with `--no-variants`; `bench.run` prints its estimate before",
           "it starts (`--estimate` prints only that). Run it on a quiet machine: the provenance table shows how quiet it was."]
          if "paired" not in summary.get("variants", {}).get("checkpoint_hoeffding", {}) else
          [f"an hour on this 2-vCPU machine, of which the variants take {fmt((c.get('estimated_s') or {}).get('variants'))} s "
           "(estimated; `--no-variants` skips them); `bench.run` prints its estimate before it starts (`--estimate` prints only",
           "that). Run it on a quiet machine: the provenance table shows how quiet it was."]),
    ])


def systems_table(summary: dict[str, Any]) -> str:
    rows = ["## Systems and their guarantees", "", "| system | guarantee | settings |", "|---|---|---|"]
    for name in ORDER:
        s = summary.get("systems", {}).get(name)
        if s is None:
            continue
        rows.append(f"| {name} | {s.get('guarantee') or NOT_RECORDED} | {_code(s.get('settings'))} |")
    rows += ["", "Outputs of at-least-once systems are visible as soon as they are produced, those of exactly-once systems",
             "only once their transaction commits: compare latencies within a guarantee."]
    return "\n".join(rows)


def throughput_table(summary: dict[str, Any]) -> str:
    rows = ["## Throughput and whole-system resources", "",
            "| system | ev/s (median) | runs | CPU s per 1k events | broker + Redis CPU s per 1k events | peak PSS MB, all processes | peak RSS MB, all processes | processes |",
            "|---|---:|---|---:|---:|---:|---:|---:|"]
    for name in ORDER:
        s = summary.get("systems", {}).get(name)
        if not s:
            continue
        runs = ", ".join(fmt(r) for r in s.get("runs", [])) or NA
        rows.append(f"| {name} | {fmt(s.get('throughput_eps'))} | {runs} | {_or_nm(s.get('cpu_s_per_1k_events'), 3)} | "
                    f"{_or_nm(s.get('services_cpu_s_per_1k_events'), 3)} | "
                    f"{_or_nm(s.get('peak_pss_total_mb'))} | {_or_nm(s.get('peak_rss_total_mb'))} | {_or_nm(s.get('processes'))} |")
    warm = [f"{name} {', '.join(fmt(r) for r in s['warmup_runs'])}" for name in ORDER
            if (s := summary.get("systems", {}).get(name)) and s.get("warmup_runs")]
    if warm:
        rows += ["", "Warm-up round, not counted (ev/s; raw kind `throughput_warmup`): " + "; ".join(warm) + "."]
    return "\n".join(rows)


def _or_nm(v: Any, nd: int = 0) -> str:
    return NOT_MEASURED if v is None else fmt(v, nd)


def _spread(d: dict[str, Any] | None, nd: int = 0) -> str:
    if not d or d.get("median") is None:
        return NOT_MEASURED
    if d.get("n", 1) > 1:
        return f"{fmt(d['median'], nd)} ({fmt(d['min'], nd)}–{fmt(d['max'], nd)})"
    return fmt(d["median"], nd)


def latency_table(summary: dict[str, Any]) -> str:
    rows = ["## Latency at fixed offered loads", "",
            "| system | offered ev/s | p50 ms | p95 ms | p99 ms | CPU s per 1k events | runs drained |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    old = []
    for name in ORDER:
        s = summary.get("systems", {}).get(name) or {}
        grid = s.get("latency")
        if grid:
            for rate, g in grid.items():
                rows.append(f"| {name} | {fmt(float(rate))} | {_spread(g.get('p50'))} | {_spread(g.get('p95'))} | {_spread(g.get('p99'))} | "
                            f"{_spread(g.get('cpu_s_per_1k_events'), 3)} | {fmt(g.get('drained_runs'))} |")
        elif s.get("latency_p99_ms") is not None:
            old.append(f"| {name} | {fmt(s.get('offered_eps'))} | {fmt(s.get('latency_p50_ms'))} | {NOT_MEASURED} | "
                       f"{fmt(s.get('latency_p99_ms'))} | {NOT_MEASURED} | {NA} |")
    if old:
        rows += old
        rows += ["", "Rows without a spread come from a summary made before the fixed grid: one run per system, offered",
                 "half of that system's own throughput, so the offered loads differ between systems and the rows do not",
                 "compare systems at the same load."]
    return "\n".join(rows)


def recovery_table(summary: dict[str, Any]) -> str:
    rows = ["## Recovery after SIGKILL of a worker", "",
            "| configuration | offered ev/s | kills | `recovery_s` median | worst | first prediction after the kill, median | per kill |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for name in ORDER:
        s = summary.get("systems", {}).get(name) or {}
        if s.get("recovery_s") is None:
            continue
        kills = s.get("recovery_kills")
        per = ", ".join(fmt(x, 2) for x in s.get("recovery_runs_s", [])) or NA
        ckpt = s.get("recovery_checkpoint_every_s")  # set only by --recovery-checkpoint-every-s
        name_cell = f"{name}, checkpoint every {fmt(ckpt, 1)} s" if ckpt is not None else name
        if (refill := s.get("recovery_standby_refill_delay_s")) is not None:  # set by --recovery-standby-refill-delay-s
            name_cell += f", standby refilled {fmt(refill, 0)} s after a takeover"
        rows.append(f"| {name_cell} | {fmt(s.get('recovery_offered_eps', s.get('offered_eps')))} | {fmt(kills) if kills else '1 (old method)'} | "
                    f"{fmt(s['recovery_s'], 2)} | {fmt(s.get('recovery_worst_s'), 2)} | {fmt(s.get('first_output_after_kill_s'), 2)} | {per} |")
    return "\n".join(rows)


def variants_section(summary: dict[str, Any], d: dict[str, Any]) -> str:
    v = summary.get("variants", {})
    ci, ck, mv = v.get("commit_interval_ms", {}), v.get("checkpoint_hoeffding", {}), v.get("models", {})
    med = d["ckpt_raw_median"]
    rows = ["## Variants (streamlearn_eos_1w)", "", "| variant | result |", "|---|---|",
            f"| `commit_interval_ms 10 / 100 / 1000` | {' / '.join(fmt(ci.get(k)) for k in ('10', '100', '1000'))} ev/s |",
            f"| Hoeffding tree, checkpoint `never / every 1 s (forked child) / every 1 s (inline)`, medians of the raw runs | "
            f"{' / '.join(fmt(med.get(k)) for k in ('never', 'every_1s', 'every_1s_inline'))} ev/s: overhead "
            f"{fmt(d['ckpt_overhead_pct_raw'], 1)} % |"]
    if "paired" in ck:  # bench.ckpt_overhead's arms: their own section
        from bench.ckpt_overhead import ARMS

        rows[-1] = (f"| Hoeffding tree, checkpoint `{' / '.join(ARMS)}`, medians of the raw runs | "
                    f"{' / '.join(fmt(d['ckpt_raw_median_all'].get(k)) for k in ARMS)} ev/s (settings and paired ratios: next section) |")
    if ck.get("overhead_pct") is not None and d["ckpt_overhead_pct_raw"] is not None and abs(ck["overhead_pct"] - d["ckpt_overhead_pct_raw"]) > 0.05:
        rows.append(f"| the same, as summary.json states it | {fmt(ck.get('overhead_pct'), 1)} %: **no raw files match these runs**, "
                    "so the page does not rely on it |")
    for key, m in mv.items():
        rows.append(f"| model `{key}`: model_limit / streamlearn_eos_1w, one run | {fmt(m.get('model_limit'))} / {fmt(m.get('streamlearn_eos_1w'))} ev/s |")
    return "\n".join(rows)


def _verdict(ok: bool | None) -> str:
    return NOT_MEASURED if ok is None else ("met" if ok else "**not met**")


def latency_measured(p99: dict[str, Any]) -> str:
    """The median p99 of the runs, and their range when there is more than one."""
    v = p99.get("median")
    if v is None:
        return NOT_MEASURED
    n = p99.get("n") or 1
    return f"{fmt(v)} ms" + (f", median of {n} runs ({fmt(p99['min'])} to {fmt(p99['max'])})" if n > 1 and "min" in p99 else "")


def latency_verdict(p99: dict[str, Any], at_most: float) -> str:
    """The throughput targets' rule, for a latency bound: met only if every run is within it, not met only if none is."""
    if p99.get("median") is None:
        return NOT_MEASURED
    lo, hi = p99.get("min", p99["median"]), p99.get("max", p99["median"])
    if hi <= at_most:
        return "met"
    return "**not met**" if lo > at_most else f"undecided: the runs' range spans `{fmt(at_most)} ms`"


def targets(summary: dict[str, Any], d: dict[str, Any]) -> str:
    s = summary.get("systems", {})
    eos = s.get("streamlearn_eos_1w", {})
    r_io, r_peer = d["eos_over_io_baseline"], d["eos_over_fastest_peer"]
    grid = eos.get("latency") or {}
    p99 = {rate: (grid.get(rate) or {}).get("p99", {}) for rate in ("5000", "10000")}
    ck = d["ckpt_overhead_pct_raw"]
    rec_med, rec_worst = eos.get("recovery_s"), eos.get("recovery_worst_s")
    from bench import report_pairs as pairs  # imports this module: imported here, not at the top

    rows = ["## Targets", "", "Throughput ratios are given two ways: the ratio of the medians, and paired by round (each round runs",
            "every system once, interleaved; a ratio within a round compares runs minutes apart on the same host). The",
            "verdict follows the paired ratios: met only if every round meets the target, not met only if none does.",
            "The latency targets follow the same rule over their runs.", "",
            "| target | measured | verdict |", "|---|---|---|",
            f"| `streamlearn_eos_1w ≥ 1.1 ×` the fastest peer at any guarantee | {fmt(eos.get('throughput_eps'))} / {fmt(d['fastest_peer_eps'])} "
            f"({d['fastest_peer'] or NA}) = {fmt(r_peer, 2)} (medians){pairs.text(d.get('paired_eos_over_fastest_peer'))} | "
            f"{pairs.verdict(d.get('paired_eos_over_fastest_peer'), 1.1) or _verdict(None if r_peer is None else r_peer >= 1.1)} |",
            f"| `streamlearn_eos_1w ≥ 0.85 × io_baseline` | {fmt(eos.get('throughput_eps'))} / {fmt(s.get('io_baseline', {}).get('throughput_eps'))} "
            f"= {fmt(r_io, 2)} (medians){pairs.text(d.get('paired_eos_over_io_baseline'))} | "
            f"{pairs.verdict(d.get('paired_eos_over_io_baseline'), 0.85) or _verdict(None if r_io is None else r_io >= 0.85)} |"]
    for rate, runs in p99.items():
        rows.append(f"| `p99 ≤ 250 ms at {fmt(float(rate))} ev/s offered`, checkpoints on | {latency_measured(runs)} | {latency_verdict(runs, 250)} |")
    if "paired" in summary.get("variants", {}).get("checkpoint_hoeffding", {}):
        from bench.report_ckpt import target_row

        rows.append(target_row(d))
    else:
        rows.append(f"| checkpoint overhead `(Hoeffding, every 1 s) ≤ 5 %` | {_or_nm(ck, 1)}{' %' if ck is not None else ''} | {_verdict(None if ck is None else ck <= 5)} |")
    lab, r_lab, cost = s.get("streamlearn_labels_1w", {}), d.get("labels_over_inline"), d.get("labels_join_cost_us_per_event")
    rows.append("| label mode vs inline: `streamlearn_labels_1w ≥ 0.6 × streamlearn_eos_1w` (same run) | "
                + (f"{fmt(lab.get('throughput_eps'))} / {fmt(eos.get('throughput_eps'))} = {fmt(r_lab, 2)}; the join costs "
                   f"{fmt(cost, 1)} µs per event (wall clock, whole system){pairs.text(d.get('paired_labels_over_inline'))}"
                   if r_lab is not None else NOT_MEASURED)
                + f" | {pairs.verdict(d.get('paired_labels_over_inline'), 0.6) or _verdict(None if r_lab is None else r_lab >= 0.6)} |")
    old = not eos.get("recovery_kills")
    rows.append(f"| recovery after SIGKILL `(1 worker + standby)`: every partition `within 3 s`, median and worst of `≥ 5` kills | "
                f"median {_or_nm(rec_med, 2)}{' s' if rec_med is not None else ''}, worst {_or_nm(rec_worst, 2)}{' s' if rec_worst is not None else ''}{' (one kill, old method)' if old and rec_med is not None else ''} | "
                f"{_verdict(None if rec_med is None or rec_worst is None else rec_worst <= 3)} |")
    return "\n".join(rows)


def page(summary: dict[str, Any], raws: list[dict[str, Any]], d: dict[str, Any]) -> str:
    from bench.report_ckpt import new_shape, section
    from bench.report_hotpath import hotpath_section
    from bench.report_serving import serving_section  # (it formats with this module's helpers)

    peers = ", ".join(f"`{p}`" for p in PEERS)
    serving = serving_section(summary)
    parts = [header(summary), method(summary), systems_table(summary), throughput_table(summary), latency_table(summary),
             recovery_table(summary), variants_section(summary, d), *([section(summary, raws, d)] if new_shape(summary) else []),
             targets(summary, d), *([serving] if serving else []),
             hotpath_section(raws),
             "\n".join(["## Reproduce", "", "```sh",
                        "make bench-quick                       # smoke test, a few minutes",
                        "make bench                             # the full run (bench.run prints its estimated duration first)",
                        ".venv/bin/python -m bench.run --estimate   # only the plan and its estimated duration",
                        ".venv/bin/python -m bench.report --write --plots   # this page and docs/img/bench_*.png from the data",
                        "```", "", f"Peers: {peers}; their guarantees are in the systems table above.",
                        "", "![throughput](img/bench_throughput.png)", "![latency](img/bench_latency.png)",
                        "![recovery](img/bench_recovery.png)"])]
    return "\n\n".join(parts) + "\n"
