"""docs/benchmarks.md claims only what bench/results/ holds.

Two checks: the page on disk is exactly what `bench.report` renders from the
data (nobody edited a figure by hand), and every figure on the page, outside
`code` (configuration, commands, targets), is a value of summary.json, of a
raw file, or of `bench.report.derived` computed from them, at the precision
the page shows it (a value shown with k decimals matches data rounded to k).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench import report

ROOT = Path(__file__).resolve().parents[2]
# A leading minus is part of the figure when it follows a space or bracket ("(-8.8 to 5.5 %)"), not a word ("2k-10k").
_NUMBER = re.compile(r"(?<![\w.,])([-\u2212](?=\d))?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w])")


def _strip_code(text: str) -> str:
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)
    return re.sub(r"`[^`]*`", " ", text)


def doc_numbers(text: str) -> list[tuple[str, float, int]]:
    """(as shown, value, decimals shown) of every figure outside code."""
    out = []
    for m in _NUMBER.finditer(_strip_code(text)):
        sign, whole, frac = "-" if m.group(1) else "", m.group(2).replace(",", ""), m.group(3)
        out.append((m.group(0), float(f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"), len(frac) if frac else 0))
    return out


def data_values(obj: Any, into: set[float]) -> set[float]:
    if isinstance(obj, bool) or obj is None:
        return into
    if isinstance(obj, int | float):
        into.add(float(obj))
    elif isinstance(obj, str):
        for m in _NUMBER.finditer(obj):
            into.add(float(m.group(0).replace(",", "").replace("\u2212", "-")))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            data_values(k, into)
            data_values(v, into)
    elif isinstance(obj, list | tuple):
        for v in obj:
            data_values(v, into)
    return into


def matches(value: float, decimals: int, data: set[float]) -> bool:
    return any(round(v, decimals) == value for v in data)


def test_page_is_rendered_from_the_data() -> None:
    summary, raws = report.load()
    assert (ROOT / "docs" / "benchmarks.md").read_text() == report.render(summary, raws), (
        "docs/benchmarks.md differs from what the data renders: run .venv/bin/python -m bench.report --write")


def test_every_figure_on_the_page_is_in_the_data() -> None:
    summary, raws = report.load()
    data = data_values([summary, raws, report.derived(summary, raws)], set())
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    missing = [shown for shown, v, k in doc_numbers(text) if not matches(v, k, data)]
    assert not missing, f"figures on docs/benchmarks.md that no data holds: {missing}"


def test_a_hand_written_figure_is_caught() -> None:
    summary, raws = report.load()
    data = data_values([summary, raws, report.derived(summary, raws)], set())
    # Figures no run can produce by chance (an earlier choice, 1,234.5, turned up in a new run's raw files).
    page = report.render(summary, raws) + "\nRecovery takes 7,654,321.5 s and the p99 is 987.65 ms.\n"
    missing = [shown for shown, v, k in doc_numbers(page) if not matches(v, k, data)]
    assert missing == ["7,654,321.5", "987.65"]


def test_a_figure_with_its_sign_flipped_is_caught() -> None:
    summary, raws = report.load()
    data = data_values([summary, raws, report.derived(summary, raws)], set())
    eps = round(summary["systems"]["streamlearn_eos_1w"]["throughput_eps"])
    page = f"Throughput {eps:,} ev/s; the overhead was -{eps:,} ev/s (2k-10k offered).\n"
    missing = [shown for shown, v, k in doc_numbers(page) if not matches(v, k, data)]
    assert missing == [f"-{eps:,}"]


def _grid(p50: float, p99: float) -> dict[str, Any]:
    def one(v: float) -> dict[str, Any]:
        return {"median": v, "min": v * 0.9, "max": v * 1.1, "n": 3}

    return {"p50": one(p50), "p95": one((p50 + p99) / 2), "p99": one(p99), "cpu_s_per_1k_events": one(0.04), "drained_runs": 3}


def test_the_shape_of_a_new_run_renders_and_verdicts_follow_the_data() -> None:
    summary = {
        "provenance": {"git": {"commit": "abc", "dirty": True, "dirty_files": [" M x.py"]}, "command": "python -m bench.run"},
        "machine": {"cpu_count": 2, "cpu_model": "cpu", "mem_gb": 25.3, "kernel": "6.1", "python": "3.11.7",
                    "libraries": {"ray": "2.60.0"}, "loadavg_at_start": [0.31, 0.52, 0.77], "loadavg_at_end": [1.11, 0.93, 0.82]},
        "config": {"events": 120000, "runs": 3, "partitions": 4, "rates_eps": [5000.0, 10000.0], "latency_runs": 3,
                   "latency_s": 5.0, "warmup_s": 1.0, "kills": 5, "kill_every_s": 8.0, "recovery_offered_eps": 5000.0,
                   "estimated_s": {"total": 1911}},
        "wall_s": 1873.2,
        "systems": {
            "io_baseline": {"guarantee": "none", "settings": "auto-commit", "throughput_eps": 40000.0, "runs": [39000.0, 40000.0, 41000.0],
                            "cpu_s_per_1k_events": 0.021, "peak_pss_total_mb": 120.4, "peak_rss_total_mb": 150.2, "processes": 1,
                            "latency": {"5000": _grid(30.0, 90.0), "10000": _grid(40.0, 120.0)}},
            "streamlearn_eos_1w": {"guarantee": "exactly-once", "settings": "1 worker", "throughput_eps": 36000.0,
                                   "runs": [35000.0, 36000.0, 37000.0], "cpu_s_per_1k_events": 0.029, "peak_pss_total_mb": 900.1,
                                   "peak_rss_total_mb": 1500.7, "processes": 13,
                                   "latency": {"5000": _grid(80.0, 210.0), "10000": _grid(100.0, 260.0)},
                                   "recovery_s": 2.41, "recovery_worst_s": 2.93, "recovery_kills": 5,
                                   "recovery_runs_s": [2.41, 2.2, 2.93, 2.5, 2.3], "recovery_offered_eps": 5000.0,
                                   "first_output_after_kill_s": 0.8},
            "bytewax": {"guarantee": "at-least-once", "settings": "epoch 0.1 s", "throughput_eps": 30000.0, "runs": [30000.0]},
        },
        "variants": {},
    }
    page = report.render(summary, [])
    data = data_values([summary, report.derived(summary, [])], set())
    assert [shown for shown, v, k in doc_numbers(page) if not matches(v, k, data)] == []
    targets = page[page.index("## Targets"):]
    assert "| 36,000 / 30,000 (bytewax) = 1.20 (medians) | met |" in targets  # no raw files: no pairs, medians decide
    assert "| 36,000 / 40,000 = 0.90 (medians) | met |" in targets
    assert "| 210 ms, median of 3 runs (189 to 231) | met |" in targets
    assert "| 260 ms, median of 3 runs (234 to 286) | undecided: the runs' range spans `250 ms` |" in targets
    assert "median 2.41 s, worst 2.93 s | met |" in targets
    assert "working tree dirty" in page


def test_label_mode_row_renders_its_ratio_only_when_both_systems_were_measured() -> None:
    base = {"config": {}, "variants": {}, "machine": {"cpu_count": 2}}  # the method text names the 2-vCPU machine
    inline = {"guarantee": "exactly-once", "settings": "1 worker", "throughput_eps": 20000.0, "runs": [20000.0]}
    labels = {"guarantee": "exactly-once", "settings": "label mode", "throughput_eps": 15000.0, "runs": [15000.0]}
    page = report.render({**base, "systems": {"streamlearn_eos_1w": inline}}, [])
    row = next(line for line in page.splitlines() if line.startswith("| label mode vs inline"))
    assert row.endswith("| not measured | not measured |")
    summary = {**base, "systems": {"streamlearn_eos_1w": inline, "streamlearn_labels_1w": labels}}
    d = report.derived(summary, [])
    assert d["labels_over_inline"] == 0.75 and abs(d["labels_join_cost_us_per_event"] - (1e6 / 15000 - 1e6 / 20000)) < 1e-9
    page = report.render(summary, [])
    row = next(line for line in page.splitlines() if line.startswith("| label mode vs inline"))
    assert "15,000 / 20,000 = 0.75; the join costs 16.7 µs per event" in row and row.endswith("| met |")
    data = data_values([summary, d], set())
    assert [shown for shown, v, k in doc_numbers(page) if not matches(v, k, data)] == []
    assert "| streamlearn_labels_1w | 15,000 |" in page


def _thr(label: str, run: int, eps: float) -> dict[str, Any]:
    return {"label": label, "kind": "throughput", "run": run, "complete": True, "throughput_eps": eps}


def test_throughput_verdicts_follow_the_ratios_paired_by_round() -> None:
    """A host that speeds up between rounds: the medians say 1.20, the rounds say 0.60, 1.00, 1.20."""
    raws = [_thr("streamlearn_eos_1w", 0, 18000.0), _thr("streamlearn_eos_1w", 1, 36000.0), _thr("streamlearn_eos_1w", 2, 36000.0),
            _thr("io_baseline", 0, 20000.0), _thr("io_baseline", 1, 40000.0), _thr("io_baseline", 2, 40000.0),
            _thr("bytewax", 0, 30000.0), _thr("bytewax", 1, 36000.0), _thr("bytewax", 2, 30000.0),
            _thr("quixstreams_eos", 0, 10000.0)]
    d = report.derived({"systems": {}}, raws)
    peer = d["paired_eos_over_fastest_peer"]
    assert peer["ratios"] == [0.6, 1.0, 1.2] and peer["median"] == 1.0  # each round against that round's fastest peer
    assert d["paired_eos_over_io_baseline"]["ratios"] == [0.9, 0.9, 0.9]
    from bench import report_pairs

    assert report_pairs.verdict(peer, 1.1).startswith("undecided")
    assert report_pairs.verdict(d["paired_eos_over_io_baseline"], 0.85) == "met"
    assert report_pairs.verdict(d["paired_eos_over_io_baseline"], 0.95) == "**not met**"
    assert report_pairs.verdict(None, 0.85) is None


def test_latency_verdicts_follow_every_run_like_the_throughput_ones() -> None:
    """A median within the bound is not enough: one run over it makes the target undecided."""
    from bench.report_text import latency_verdict

    assert latency_verdict({"median": 163.0, "min": 136.0, "max": 249.0, "n": 3}, 250) == "met"
    assert latency_verdict({"median": 163.0, "min": 136.0, "max": 441.0, "n": 3}, 250).startswith("undecided")
    assert latency_verdict({"median": 300.0, "min": 251.0, "max": 441.0, "n": 3}, 250) == "**not met**"
    assert latency_verdict({"median": 200.0}, 250) == "met"  # one run (an older summary without the range)
    assert latency_verdict({}, 250) == "not measured"


def test_a_warm_up_round_is_listed_and_never_counted() -> None:
    """`bench.run`'s warm-up rounds: raw kind `throughput_warmup`, shown under the table, outside every ratio."""
    raws = [_thr("streamlearn_eos_1w", 0, 36000.0), _thr("io_baseline", 0, 40000.0), _thr("bytewax", 0, 30000.0),
            {**_thr("streamlearn_eos_1w", 0, 9000.0), "kind": "throughput_warmup"},
            {**_thr("io_baseline", 0, 90000.0), "kind": "throughput_warmup"}]
    d = report.derived({"systems": {}}, raws)
    assert d["paired_eos_over_fastest_peer"]["ratios"] == [1.2]
    assert d["paired_eos_over_io_baseline"]["ratios"] == [0.9]
    summary = {"config": {"runs": 1, "warmup_rounds": 1}, "variants": {}, "machine": {"cpu_count": 2},
               "systems": {"streamlearn_eos_1w": {"throughput_eps": 36000.0, "runs": [36000.0], "warmup_runs": [9000.0]},
                           "io_baseline": {"throughput_eps": 40000.0, "runs": [40000.0], "warmup_runs": [90000.0]}}}
    page = report.render(summary, raws)
    assert "after 1 warm-up round(s) of the same runs, not counted" in page
    assert "Warm-up round, not counted (ev/s; raw kind `throughput_warmup`): io_baseline 90,000; streamlearn_eos_1w 9,000." in page
