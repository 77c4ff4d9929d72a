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
_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w])")


def _strip_code(text: str) -> str:
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)
    return re.sub(r"`[^`]*`", " ", text)


def doc_numbers(text: str) -> list[tuple[str, float, int]]:
    """(as shown, value, decimals shown) of every figure outside code."""
    out = []
    for m in _NUMBER.finditer(_strip_code(text)):
        whole, frac = m.group(1).replace(",", ""), m.group(2)
        out.append((m.group(0), float(f"{whole}.{frac}" if frac else whole), len(frac) if frac else 0))
    return out


def data_values(obj: Any, into: set[float]) -> set[float]:
    if isinstance(obj, bool) or obj is None:
        return into
    if isinstance(obj, int | float):
        into.add(float(obj))
    elif isinstance(obj, str):
        for m in _NUMBER.finditer(obj):
            into.add(float(m.group(0).replace(",", "")))
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
    page = report.render(summary, raws) + "\nRecovery takes 1,234.5 s and the p99 is 987.65 ms.\n"
    missing = [shown for shown, v, k in doc_numbers(page) if not matches(v, k, data)]
    assert missing == ["1,234.5", "987.65"]
