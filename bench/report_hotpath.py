"""The benchmark page's in-process hot-path sections (`bench.hotpath`, `bench.ab_hotpath` raw files)."""

from __future__ import annotations

from typing import Any

from bench.report_text import NOT_MEASURED, fmt


def _lead(r: dict[str, Any]) -> str:
    """A row's first cells: the raw file, how it was measured, the load average before / after."""
    method = "chunk-interleaved" if str(r.get("method", "")).startswith("chunk-interleaved") else "whole runs alternating"
    loads = [", ".join(fmt(x, 2) for x in r.get(k) or []) for k in ("loadavg_before", "loadavg_after")]
    return f"| `{r['_file']}` | {method} | {loads[0]} / {loads[1]} |"


def hotpath_section(raws: list[dict[str, Any]]) -> str:
    hp = [r for r in raws if r.get("kind") == "hotpath" and "io_loop_eps" in r]
    rows = ["## Hot path, in-process: the engine against a guarantee-free loop", "",
            "`python -m bench.hotpath --json`: no broker, no Ray. `engine` is `streamlearn.model.step.process` (decode with",
            "validation → predict → encode → learn → prequential metric → emit) over in-memory records; `io loop` is",
            "`io_baseline`'s per-event work (orjson decode → the same model → orjson encode); `model only` is the model over",
            "pre-decoded dicts. Thread CPU time, median of the passes. `method`: `chunk-interleaved`, the records go",
            "through the three in turn a few hundred at a time, so the host's slow phases fall on all three; `whole runs",
            "alternating` (older files), one run's slow phase could move a ratio by a tenth or more.", ""]
    if hp:
        rows += ["| file | method | load average before / after | model only ev/s | io loop ev/s | engine ev/s | engine / io loop | engine minus io loop, µs per event |",
                 "|---|---|---|---:|---:|---:|---:|---:|"]
        for r in hp:
            rows.append(f"{_lead(r)} {fmt(r['model_only_eps'])} | {fmt(r['io_loop_eps'])} | {fmt(r['engine_eps'])} | {fmt(r['engine_over_io_loop'], 3)} | {fmt(r['engine_minus_io_loop_us_per_event'], 2)} |")
    else:
        rows.append(NOT_MEASURED + ".")
    ab = [r for r in raws if r.get("kind") == "hotpath_ab"]
    rows += ["", "### Before/after of a hot-path change", "",
            "`python -m bench.ab_hotpath --rev REV --json`: the engine's per-event step (decode → predict → encode → learn →",
            "metric → emit) over the same in-memory records, `before` being `streamlearn/model/step.py` at REV (older files:",
            "copies of the old modules), CPU time, median of the passes; `model only` is the same model over pre-decoded dicts.", ""]
    if not ab:
        return "\n".join([*rows, NOT_MEASURED + "."])
    rows += ["| file | method | load average before / after | model only ev/s | before ev/s | after ev/s | before / after, µs per event beyond the model |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in ab:
        rows.append(f"{_lead(r)} {fmt(r['model_only_eps'])} | {fmt(r['before_eps'])} | {fmt(r['after_eps'])} | {fmt(r['before_overhead_us'], 1)} / {fmt(r['after_overhead_us'], 1)} |")
    return "\n".join(rows)
