"""docs/benchmarks.md, rendered from bench/results/summary.json and the raw files: `python -m bench.report [--write]`.

Why rendered: a benchmark page written by hand drifts from its data (the
page once said 15 s and 3 s where the code and data said 20 s and 3.5 s).
Every figure on the page comes from the data here; a field the data lacks
renders as "–" or "not measured", never as a remembered number. Figures the
page derives (ratios, overheads) come from `derived()`, which the unit test
(tests/unit/test_bench_doc.py) recomputes from the same data. Text in `code
spans` is configuration or a command, not a measurement.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import orjson

from bench import report_ckpt, report_pairs, report_text
from bench.report_text import ORDER, PEERS, fmt  # noqa: F401 - re-exported for callers

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
def load(results: Path = RESULTS) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    summary = orjson.loads((results / "summary.json").read_bytes())
    raws = [orjson.loads(f.read_bytes()) | {"_file": f.name} for f in sorted((results / "raw").glob("*.json"))]
    return summary, raws


def _ratio(a: Any, b: Any) -> float | None:
    return a / b if isinstance(a, int | float) and isinstance(b, int | float) and b else None


def derived(summary: dict[str, Any], raws: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures the page computes from the data (the doc test recomputes them the same way)."""
    s = summary.get("systems", {})
    eos = s.get("streamlearn_eos_1w", {}).get("throughput_eps")
    peers = {n: s[n]["throughput_eps"] for n in PEERS if s.get(n, {}).get("throughput_eps")}
    fastest = max(peers, key=peers.__getitem__) if peers else None
    ck = summary.get("variants", {}).get("checkpoint_hoeffding", {})
    ck_raw = {label: [r["throughput_eps"] for r in raws if r.get("label") == f"ckpt_{label}" and r.get("kind") == "throughput"
                      and r.get("complete")] for label in ("never", "every_1s", "every_1s_inline")}
    ck_med = {k: statistics.median(v) if v else None for k, v in ck_raw.items()}
    out: dict[str, Any] = {
        "eos_over_io_baseline": _ratio(eos, s.get("io_baseline", {}).get("throughput_eps")),
        "fastest_peer": fastest, "fastest_peer_eps": peers.get(fastest) if fastest else None,
        "eos_over_fastest_peer": _ratio(eos, peers.get(fastest)) if fastest else None,
        "eos_over_model_limit": _ratio(eos, s.get("model_limit", {}).get("throughput_eps")),
        "ckpt_raw_median": ck_med,
        "ckpt_overhead_pct_raw": (100.0 * (1 - ck_med["every_1s"] / ck_med["never"])
                                  if ck_med["never"] and ck_med["every_1s"] else None),
        "ckpt_overhead_pct_summary": ck.get("overhead_pct"),
    }
    # Label mode vs inline: same app, same data, same run; the join's cost per event is the difference of the
    # wall-clock time per event (whole system, broker included), in µs.
    lab = s.get("streamlearn_labels_1w", {}).get("throughput_eps")
    out["labels_over_inline"] = _ratio(lab, eos)
    out["labels_join_cost_us_per_event"] = (1e6 / lab - 1e6 / eos) if out["labels_over_inline"] is not None else None
    out.update(report_ckpt.derived(raws))  # per-round ratios of the checkpoint arms (bench.ckpt_overhead)
    out.update(report_pairs.derived(raws))  # throughput ratios paired by round
    return out


def render(summary: dict[str, Any], raws: list[dict[str, Any]]) -> str:
    return report_text.page(summary, raws, derived(summary, raws))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)} (default: print)")
    ap.add_argument("--plots", action="store_true", help="also re-render docs/img/bench_*.png")
    args = ap.parse_args()
    summary, raws = load()
    text = render(summary, raws)
    if args.write:
        DOC.write_text(text)
        print(f"wrote {DOC}")
    else:
        print(text)
    if args.plots:
        from bench import plots

        for f in plots.render(summary, raws, ROOT / "docs" / "img"):
            print(f)


if __name__ == "__main__":
    main()
