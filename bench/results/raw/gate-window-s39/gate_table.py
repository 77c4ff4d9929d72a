"""Prints the A/B table of README.md from the raw files here: `python bench/results/raw/gate-window-s39/gate_table.py`."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent


def worker_cpu_s(run: dict) -> float:
    """The owning worker: the PartitionWorker process with the most CPU (the other is the idle standby)."""
    return max(v["cpu_s"] for k, v in run["resources"]["by_process"].items() if "PartitionWorker" in k)


def main() -> None:
    print("| round | old ev/s | new ev/s | new/old | old / new owning worker CPU us per event (start-up included) | old / new whole-system CPU s per 1k events (measured window) |")
    print("| ---: | ---: | ---: | ---: | --- | --- |")
    for r in range(1, 6):
        old, new = (json.loads((HERE / f"labels-240k-{a}-{r}.json").read_text()) for a in ("old", "new"))
        us = [round(worker_cpu_s(x) / x["events"] * 1e6, 1) for x in (old, new)]
        whole = [x["resources"]["cpu_s_per_1k_events"] for x in (old, new)]
        print(f"| {r} | {old['throughput_eps']:,.0f} | {new['throughput_eps']:,.0f} | "
              f"{new['throughput_eps'] / old['throughput_eps']:.3f} | {us[0]} / {us[1]} | {whole[0]} / {whole[1]} |")


if __name__ == "__main__":
    main()
