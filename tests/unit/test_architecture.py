"""The layout is a contract: packages by concern, imports flowing one way.

Read statically (ast), so function-level imports count too: a lazy import
is still a dependency. What this keeps true (docs/architecture.md):

- no import circle between streamlearn modules;
- ``connectors`` knows nothing of streamlearn (no models, no config);
- lower layers never import higher ones: base (config, errors, logs,
  faults) < model < state < labels (the join), models (published versions) < eos < runtime
  < ops, app and serving; ``tools`` (demo, datasets,
  produce/consume helpers) sits beside the engine and only the CLI reaches it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = {"config", "config_sections", "config_model", "masking", "errors", "logs", "faults"}
#: ``app`` (the public API) drives the runtime and reads status like ``ops`` does.
RANK = {"base": 0, "model": 1, "state": 2, "labels": 2.5, "models": 2.5, "eos": 3, "runtime": 4, "ops": 5, "app": 5,
        "serving": 5, "tools": 6, "__main__": 7}
#: Reaching up on purpose: the Coordinator serves the same status as `streamlearn status`.
ALLOWED_UP = {("streamlearn.runtime.coordinator", "streamlearn.ops.status"),
              ("streamlearn.runtime.runner", "streamlearn.ops.status"),
              ("streamlearn.runtime.worker", "streamlearn.ops.status")}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            # `from pkg import mod` depends on mod; `from mod import name` on mod
            names = subs if all(s in known for s in subs) else [*subs, node.module]
        else:
            continue
        for name in names:
            # the longest known module this name is or lies in
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def _graph(package: str) -> dict[str, set[str]]:
    files = sorted((ROOT / package).rglob("*.py"))
    known = {_module_name(f) for f in files} | {_module_name(f) for f in (ROOT / "connectors").rglob("*.py")}
    known |= {_module_name(f) for f in (ROOT / "streamlearn").rglob("*.py")}
    return {_module_name(f): _imports(f, known) - {_module_name(f)} for f in files}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 2 or parts[1] in BASE:
        return "base"
    return parts[1]


def test_no_import_circle_in_streamlearn() -> None:
    graph = {m: {d for d in deps if d.startswith("streamlearn")} for m, deps in _graph("streamlearn").items()}
    # Package __init__ modules are namespaces here: an import of a submodule
    # names its package too, which is not a dependency on the package's code.
    graph = {m: {d for d in deps if not (m.startswith(d + ".") or d == "streamlearn")} for m, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycle = [*stack[stack.index(d):], d]
                pytest.fail("import circle: " + " → ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_connectors_know_nothing_of_streamlearn() -> None:
    leaks = {m: sorted(d for d in deps if d.startswith("streamlearn")) for m, deps in _graph("connectors").items()}
    assert {m: d for m, d in leaks.items() if d} == {}


def test_lower_layers_never_import_higher_ones() -> None:
    wrong = []
    for module, deps in _graph("streamlearn").items():
        if module == "streamlearn" or module == "streamlearn.ops.cli":
            continue  # the package's lazy App export and the CLI sit on top of everything
        for dep in deps:
            if not dep.startswith("streamlearn.") or (module, dep) in ALLOWED_UP:
                continue
            if RANK[_layer(dep)] > RANK[_layer(module)]:
                wrong.append(f"{module} → {dep}")
    assert wrong == []
