"""The checkpoint-overhead section of docs/benchmarks.md (bench.ckpt_overhead's arms, rounds and paired ratios).

Rendered only when summary.json's `variants.checkpoint_hoeffding` has the
paired fields, so a summary from before them renders the same page as it did.
The ratios are recomputed from the raw files (`derived`), the settings are
the ones each raw file recorded from its run's AppConfig.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.ckpt_overhead import ARMS, BASE, CPU_FIELDS, DESCRIPTION, paired
from bench.report_text import NA, NOT_MEASURED, fmt


def raw_runs(raws: list[dict[str, Any]], field: str = "throughput_eps") -> dict[str, dict[int, float]]:
    """`field` per arm and round, from the complete ckpt_* throughput raw files (a CPU field: from their resources)."""
    out: dict[str, dict[int, float]] = {}
    for r in raws:
        arm = str(r.get("label", "")).removeprefix("ckpt_")
        if arm in ARMS and r.get("kind") == "throughput" and r.get("complete"):
            v = r.get(field) if field == "throughput_eps" else (r.get("resources") or {}).get(field)
            if v is not None:
                out.setdefault(arm, {})[int(r["run"])] = float(v)
    return out


def derived(raws: list[dict[str, Any]]) -> dict[str, Any]:
    """Paired per-round ratios from the raw files (the page's figures; the doc test recomputes them)."""
    runs = raw_runs(raws)
    return {"ckpt_paired_raw": paired(runs),
            "ckpt_paired_cpu_raw": {f: paired(raw_runs(raws, f), cost=True) for f in CPU_FIELDS},
            "ckpt_raw_median_all": {a: statistics.median(v.values()) if v else None for a, v in runs.items()}}


def new_shape(summary: dict[str, Any]) -> bool:
    return "paired" in summary.get("variants", {}).get("checkpoint_hoeffding", {})


def _settings(raws: list[dict[str, Any]], arm: str) -> str:
    """What the arm's raw files say it ran with; the same for every run, or each distinct one."""
    seen: list[str] = []
    for r in raws:
        s = r.get("settings")
        if r.get("label") != f"ckpt_{arm}" or not s:
            continue
        p, c, pub = s.get("processing", {}), s.get("checkpoint", {}), s.get("model.publish", {})
        txt = (f"`checkpoint_every_s: {p.get('checkpoint_every_s')}, checkpoint_every_events: {p.get('checkpoint_every_events')}, "
               f"checkpoint.background: {str(c.get('background')).lower()}, model.publish.every_s: {pub.get('every_s')}, "
               f"commit_interval_ms: {p.get('commit_interval_ms')}, max_batch: {p.get('max_batch')}`")
        if txt not in seen:
            seen.append(txt)
    return "; ".join(seen) or "not recorded in the raw files"


def _versions(raws: list[dict[str, Any]], arm: str) -> str:
    vs = [r["versions_reserved_per_partition"] for r in raws
          if r.get("label") == f"ckpt_{arm}" and r.get("versions_reserved_per_partition") is not None]
    return ", ".join("/".join(str(x) for x in v) for v in vs) or NA


def section(summary: dict[str, Any], raws: list[dict[str, Any]], d: dict[str, Any]) -> str:
    ck = summary["variants"]["checkpoint_hoeffding"]
    runs, pr = raw_runs(raws), d["ckpt_paired_raw"]
    rows = ["## Checkpoint overhead (Hoeffding tree)", "",
            "`bench/ckpt_overhead.py`: `streamlearn_eos_1w` with the Hoeffding tree, "
            + (f"{fmt(summary['config']['ckpt_events'])} events per run." if summary.get("config", {}).get("ckpt_events")
               else "two thirds of the throughput run's events per run."),
            "The arms differ only in the settings named in their label: model versions ride on checkpoints",
            "(a version due makes a checkpoint due, whatever `checkpoint_every_s` says), so every arm sets",
            "`model.publish.every_s` explicitly and the target's two arms, `never` and `every_1s`, both publish nothing;",
            "checkpoint + publishing is its own arm. The arms run in rounds, one run of each per round, the order",
            "reversed every other round, so a slow phase of the shared machine hits both arms of a round. The overhead is",
            "1 − the median of the per-round ratios arm / `never`; its range comes from the largest and the smallest ratio",
            "(with n rounds that range holds the median ratio with probability `1 − 2^(1−n)`, whatever the noise).", "",
            "| arm | what it does | settings, as the raw files recorded them | model versions per partition during the run |",
            "|---|---|---|---|"]
    for arm in ARMS:
        if arm in runs:
            rows.append(f"| `{arm}` | {DESCRIPTION[arm]} | {_settings(raws, arm)} | {_versions(raws, arm)} |")
    rows += ["", "| arm | ev/s per round (round: ev/s) | median ev/s | ratio to `never` per round | median ratio | "
                 "overhead, median (range) | confidence of the range |", "|---|---|---:|---|---:|---|---:|"]
    for arm in ARMS:
        if arm not in runs:
            continue
        per = ", ".join(f"{r}: {fmt(v)}" for r, v in sorted(runs[arm].items()))
        med = d["ckpt_raw_median_all"].get(arm)
        if arm == BASE:
            rows.append(f"| `{arm}` | {per} | {fmt(med)} | {NA} | {NA} | {NA} | {NA} |")
            continue
        p = pr.get(arm) or {}
        ratios = ", ".join(f"{r}: {fmt(x, 3)}" for r, x in zip(p.get("rounds", []), p.get("ratios", []), strict=True)) or NA
        conf = p.get("confidence_of_range")
        rows.append(f"| `{arm}` | {per} | {fmt(med)} | {ratios} | {fmt(p.get('median_ratio'), 3)} | "
                    f"{overhead_text(p)} | {fmt(conf, 3) if conf is not None else NA} |")
    rows += ["", "CPU-seconds per 1k events over the measured window (`bench/resources.py`): the system's own processes,",
             "forked checkpoint children included, and apart the private broker + Redis. The machine's other tenants change",
             "how much CPU the system gets, which moves ev/s; they move its CPU per event much less. The ratio's overhead is",
             "the extra CPU per event.", "",
             "| arm | system CPU s / 1k events per round | extra, median (range) | broker + Redis CPU s / 1k events per round | extra, median (range) |",
             "|---|---|---|---|---|"]
    for arm in ARMS:
        if arm not in runs:
            continue
        cells = []
        for f in CPU_FIELDS:
            per = ", ".join(f"{r}: {fmt(v, 4)}" for r, v in sorted(raw_runs(raws, f).get(arm, {}).items())) or NA
            cells += [per, NA if arm == BASE else overhead_text(d["ckpt_paired_cpu_raw"][f].get(arm) or {})]
        rows.append(f"| `{arm}` | {' | '.join(cells)} |")
    order = ck.get("order")
    if order:
        rows += ["", f"Order the runs ran in (arm#round): `{' '.join(order)}`."]
    return "\n".join(rows)


def overhead_text(p: dict[str, Any]) -> str:
    if p.get("overhead_pct_median") is None:
        return NOT_MEASURED
    return f"{fmt(p['overhead_pct_median'], 1)} % ({fmt(p['overhead_pct_low'], 1)} to {fmt(p['overhead_pct_high'], 1)} %)"


def target_row(d: dict[str, Any]) -> str:
    """The target's row: met only if the whole range is within 5 %, not met if all of it is above."""
    p = d["ckpt_paired_raw"].get("every_1s") or {}
    pub = d["ckpt_paired_raw"].get("every_1s_publish") or {}
    med, lo, hi = p.get("overhead_pct_median"), p.get("overhead_pct_low"), p.get("overhead_pct_high")
    if med is None or lo is None or hi is None:
        verdict = NOT_MEASURED
    elif p.get("n", 0) < 3:  # a range of one or two ratios says little about the noise
        verdict = "undecided: fewer than 3 rounds"
    else:
        verdict = "met" if hi <= 5 else "**not met**" if lo > 5 else "undecided: the range spans 5 %"
    cpu = d["ckpt_paired_cpu_raw"]["cpu_s_per_1k_events"].get("every_1s") or {}
    measured = (f"{overhead_text(p)}, median of {fmt(p.get('n'))} per-round ratios, publishing off in both arms "
                f"(system CPU per event: {overhead_text(cpu)} more); with model versions as well (`every_1s_publish`): "
                f"{overhead_text(pub)}") if med is not None else NOT_MEASURED
    return f"| checkpoint overhead `(Hoeffding, every 1 s) ≤ 5 %` | {measured} | {verdict} |"
