"""Throughput ratios paired by round: the figure that survives a host whose speed changes during the run.

Why: the throughput runs are interleaved in rounds (one run of every system
per round), and the host's speed can change between rounds (`model_limit`,
which does no I/O, measured 28.6k, 49.4k and 59.7k ev/s in the three rounds
of one run). A ratio of medians then pairs a fast round's numerator with a
slow round's denominator. A ratio within one round compares two systems
that ran minutes apart on the same host; the median of those ratios, with
the smallest and largest as its range, is what a target is judged on (met
only if every round meets it, not met only if none does, else undecided),
as the checkpoint overhead is (`report_ckpt`).
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.report_text import PEERS


def rounds(raws: list[dict[str, Any]], label: str) -> dict[int, float]:
    """Throughput of the label's complete throughput runs, by round."""
    return {int(r["run"]): float(r["throughput_eps"]) for r in raws
            if r.get("label") == label and r.get("kind") == "throughput" and r.get("complete") and r.get("throughput_eps")}


def paired(num: dict[int, float], den: dict[int, float]) -> dict[str, Any] | None:
    common = sorted(set(num) & set(den))
    if not common:
        return None
    ratios = [num[i] / den[i] for i in common]
    return {"rounds": common, "ratios": ratios, "median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def fastest_peer_by_round(raws: list[dict[str, Any]]) -> dict[int, float]:
    by_peer = [rounds(raws, p) for p in PEERS]
    all_rounds = sorted({i for runs in by_peer for i in runs})
    return {i: max(runs[i] for runs in by_peer if i in runs) for i in all_rounds}


def derived(raws: list[dict[str, Any]]) -> dict[str, Any]:
    eos = rounds(raws, "streamlearn_eos_1w")
    return {"paired_eos_over_io_baseline": paired(eos, rounds(raws, "io_baseline")),
            "paired_eos_over_fastest_peer": paired(eos, fastest_peer_by_round(raws)),
            "paired_labels_over_inline": paired(rounds(raws, "streamlearn_labels_1w"), eos)}


def verdict(p: dict[str, Any] | None, at_least: float) -> str | None:
    """met / **not met** / undecided, from the per-round range; None without pairs."""
    if p is None:
        return None
    if p["min"] >= at_least:
        return "met"
    if p["max"] < at_least:
        return "**not met**"
    return f"undecided: the per-round range spans `{at_least:g}`"


def text(p: dict[str, Any] | None) -> str:
    if p is None:
        return ""
    per = ", ".join(f"{i}: {r:.2f}" for i, r in zip(p["rounds"], p["ratios"], strict=True))
    return f"; paired by round ({per}): median {p['median']:.2f} ({p['min']:.2f} to {p['max']:.2f})"
