"""Where a benchmark number came from: code version, command line, machine, load.

A figure without its provenance cannot be defended: the same command on a
different commit, a different machine or a loaded one gives different
numbers. `summary.json` carries this block and every raw file carries the
load average around its own run, so a reader can tell a quiet run from a
busy one without trusting the prose.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The libraries whose versions decide the numbers (the systems under test and their clients).
LIBRARIES = ("confluent-kafka", "ray", "river", "quixstreams", "bytewax", "orjson", "redis")


def _git(*args: str, root: Path = ROOT) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def code_version(root: Path = ROOT) -> dict[str, Any]:
    """The commit and whether tracked files differ from it (a dirty tree is not that commit)."""
    status = _git("status", "--porcelain", "--untracked-files=no", root=root)
    return {"commit": _git("rev-parse", "HEAD", root=root), "branch": _git("rev-parse", "--abbrev-ref", "HEAD", root=root),
            "dirty": bool(status) if status is not None else None,
            "dirty_files": status.splitlines()[:50] if status else []}


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    try:
        import confluent_kafka

        out["librdkafka"] = confluent_kafka.libversion()[0]
    except ImportError:
        out["librdkafka"] = None
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return {"cpu_count": os.cpu_count(), "cpu_model": _cpu_model(), "mem_gb": round(mem_gb, 1),
            "kernel": platform.release(), "platform": platform.platform(), "python": platform.python_version(),
            "libraries": library_versions(), "loadavg_at_start": loadavg()}


def stamp(argv: list[str] | None = None) -> dict[str, Any]:
    """The provenance block of one invocation."""
    args = sys.argv if argv is None else argv
    return {"git": code_version(), "command": shlex.join([Path(sys.executable).name, "-m", "bench.run", *args[1:]]),
            "argv": list(args[1:]), "machine": machine()}
