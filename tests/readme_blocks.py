"""Find the README's code blocks and their `readme-test` markers (shared by the README tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"(?:<!-- readme-test: (?P<marker>[^>]*?) -->\n)?```(?P<lang>[a-z]*)\n(?P<body>.*?)```", re.S)


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    marker: str | None  # "run", "skip (reason)", or None when unmarked
    line: int


def blocks(text: str | None = None) -> list[Block]:
    text = README.read_text() if text is None else text
    out = []
    for m in _BLOCK.finditer(text):
        out.append(Block(m.group("lang"), m.group("body"), m.group("marker"), text.count("\n", 0, m.start()) + 1))
    return out


def runnable() -> list[Block]:
    return [b for b in blocks() if b.marker == "run"]


def cluster_recipe() -> Block:
    """The "Scaling out to a Ray cluster" block, run by tests/chaos/test_readme_cluster.py (marker `cluster (...)`)."""
    (block,) = [b for b in blocks() if (b.marker or "").startswith("cluster (")]
    return block
