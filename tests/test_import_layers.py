"""ppnets's packages import one way, from the bottom up, and no two modules import each other.

Every ``import`` of every module is read from its source (those inside functions too); an import
of a package higher in :data:`LAYERS` than the importing module's, or one that closes a cycle
between modules, fails naming the modules. Deployment must not load the training engine.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from typing import Dict, List, Set

import ppnets

ROOT = os.path.dirname(os.path.abspath(ppnets.__file__))

#: the layers, bottom first; a package may import its own layer (without cycles) and those below
LAYERS = (
    ("errors", "registry", "utils"),
    ("arch", "data", "loss", "metric", "optimizer"),
    ("config",),
    ("checkpoint",),
    ("deploy",),        # reads an exported folder: nothing of engine/ or export/
    ("engine",),        # training and evaluation
    ("export",),        # writes exported folders (checks them with deploy's runtimes)
    ("analysis",),
    ("bench",),
    ("cli", "__main__"),  # the command line (python -m ppnets)
)
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def _modules() -> Dict[str, str]:
    """``{dotted module name: file}`` of every module of ppnets."""
    out = {}
    for folder, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, f), os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = os.path.join(folder, f)
    return out


MODULES = _modules()


def _imports(name: str, path: str) -> Set[str]:
    """The ppnets modules ``name`` imports (``from pkg import sub`` counts as ``pkg.sub`` when that is a module)."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("ppnets"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not base.startswith("ppnets"):
                continue
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            out.update(subs if len(subs) == len(node.names) else subs + [base])
    out.discard(name)
    return {m for m in out if m in MODULES}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_layer():
    tops = {_top(m) for m in MODULES} - {""}
    assert tops <= set(RANK), f"packages without a layer in LAYERS: {sorted(tops - set(RANK))}"


def test_no_import_runs_upward():
    upward = [f"{a} imports {b}" for a, deps in GRAPH.items() for b in deps
              if _top(a) and _top(b) and RANK[_top(b)] > RANK[_top(a)]]
    assert not upward, "imports that run upward (see LAYERS):\n" + "\n".join(sorted(upward))


def _cycle() -> List[str]:
    """One cycle of the module graph, as the list of modules around it, or []."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for dep in sorted(GRAPH[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(GRAPH):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_no_two_modules_import_each_other():
    cycle = _cycle()
    assert not cycle, "import cycle: " + " → ".join(cycle)


def test_the_checker_finds_upward_imports_and_cycles(monkeypatch):
    """The two checks above fail when they should (a fake upward edge and a fake cycle)."""
    monkeypatch.setitem(GRAPH, "ppnets.errors", GRAPH["ppnets.errors"] | {"ppnets.registry", "ppnets.deploy.predictor"})
    assert "ppnets.errors" in _cycle()
    upward = [b for b in GRAPH["ppnets.errors"] if RANK[_top(b)] > RANK["errors"]]
    assert upward == ["ppnets.deploy.predictor"]


def test_deploy_loads_no_training_or_export_code():
    code = ("import sys, ppnets.deploy, ppnets.deploy.server\n"
            "print(sorted(m for m in sys.modules if m.startswith(('ppnets.engine', 'ppnets.export'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
