"""The arrows of the design (``DESIGN.md``, the "must not" column): which part may import which.

Two checks, each a table where a new rule is one line:

* :data:`LOADS`: import a module in a fresh interpreter and list what ``sys.modules`` holds afterwards,
  so an eager import anywhere on the way (a package ``__init__``, a module-level import) is caught;
* :data:`IMPORTS`: read the package's source with :mod:`ast` and refuse a forbidden import wherever it is
  written, at module level or inside a function (a lazy import still loads the module when it runs);
  ``if TYPE_CHECKING:`` blocks do not count. The same graph, between archbench's parts, has no cycle.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest

import archbench

SRC = Path(archbench.__file__).resolve().parent.parent  # the folder that holds the archbench package

HEAVY = ("torch", "polars", "optuna", "ray", "pymoo", "transformers")

# (module imported in a fresh interpreter, modules that must not be loaded after it)
LOADS: list[tuple[str, tuple[str, ...]]] = [
    ("archbench", (*HEAVY, "numpy", "archbench.leaderboard", "archbench.search_space", "archbench.search")),
    ("archbench.metrics", (*HEAVY, "numpy", "archbench.leaderboard", "archbench.search_space")),
    (
        "archbench.search_space",
        (*HEAVY, "archbench.leaderboard", "archbench.search", "archbench.evaluators", "archbench.latency"),
    ),
    ("archbench.trial", ("torch", "polars", "archbench.leaderboard")),
    ("archbench.deploy", ("torch", "polars", "archbench.leaderboard")),
    (
        "archbench.latency",
        ("polars", "optuna", "ray", "pymoo", "archbench.leaderboard", "archbench.search", "archbench.evaluators"),
    ),
    (
        "archbench.leaderboard",
        ("torch", "optuna", "ray", "transformers", "archbench.search", "archbench.evaluators", "archbench.latency"),
    ),
    ("archbench.evaluators.evaluate", ("optuna", "ray", "archbench.search", "archbench.leaderboard")),
    # the search reads these defaults and types without loading torch
    ("archbench.evaluators.budget", ("torch", "polars", "archbench.evaluators.evaluate")),
    ("archbench.evaluators.task", ("torch", "polars", "archbench.evaluators.charlm")),
    ("archbench.latency.stats", ("torch", "polars", "archbench.latency.measure")),
]

# (part of archbench, an import it must not write anywhere, why)
IMPORTS: list[tuple[str, str, str]] = [
    ("search_space", "ray", "the space knows nothing of distribution"),
    ("search_space", "optuna", "the Optuna encoding lives with the Optuna strategies"),
    ("search_space", "pymoo", "the space knows no optimiser"),
    ("search_space", "polars", "the space knows nothing of storage"),
    ("search_space", "archbench.search", "search_space is used by all and uses none of them"),
    ("search_space", "archbench.leaderboard", "search_space is used by all and uses none of them"),
    ("search_space", "archbench.evaluators", "search_space is used by all and uses none of them"),
    ("search_space", "archbench.latency", "search_space is used by all and uses none of them"),
    ("search_space", "archbench.cli", "search_space is used by all and uses none of them"),
    ("leaderboard", "torch", "the leaderboard must not import torch"),
    ("leaderboard", "transformers", "interop is never imported by the leaderboard"),
    ("leaderboard", "archbench.search", "arrows point search -> leaderboard"),
    ("leaderboard", "archbench.evaluators", "the leaderboard stores rows; it does not evaluate"),
    ("leaderboard", "archbench.latency", "the leaderboard stores rows; it does not measure"),
    ("latency", "archbench.search", "latency must not import search code"),
    ("latency", "archbench.leaderboard", "latency must not import storage code"),
    ("latency", "archbench.evaluators", "arrows point evaluators -> latency"),
    ("latency", "polars", "latency must not import storage code"),
    ("evaluators", "archbench.search", "arrows point search -> evaluators"),
    ("evaluators", "archbench.leaderboard", "evaluators return TrialResults; the search stores them"),
    ("evaluators", "ray", "the search loop owns distribution"),
    ("evaluators", "optuna", "the search owns the optimisers"),
    ("search", "archbench.cli", "arrows point cli -> search"),
    ("metrics", "torch", "every part may read the metric table"),
    ("metrics", "polars", "every part may read the metric table"),
    ("metrics", "numpy", "every part may read the metric table"),
    ("trial", "torch", "TrialResult flows to the torch-free leaderboard"),
    ("deploy", "torch", "deployments are plain settings"),
    ("train_config", "torch", "training settings load without torch"),
    ("train_config", "archbench.evaluators", "the evaluators import the settings, not the other way"),
    ("leaderboard", "archbench.interop", "interop is never imported by the leaderboard"),
    ("interop", "archbench.search", "arrows point search -> interop (kept weights), cli -> interop"),
    ("interop", "archbench.leaderboard", "interop maps shapes and weights; it does not store rows"),
    ("data", "archbench.search_space", "data knows nothing of models"),
    ("data", "archbench.evaluators", "arrows point evaluators -> data"),
    ("data", "archbench.leaderboard", "data knows nothing of stored results"),
    ("data", "archbench.search", "data knows nothing of the search"),
    ("data", "torch", "preparing and streaming tokens needs no torch"),
]


def _loaded_after(module: str) -> list[str]:
    code = f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def _hits(names: Iterable[str], prefix: str) -> list[str]:
    return sorted(n for n in names if n == prefix or n.startswith(prefix + "."))


@pytest.mark.parametrize(("module", "forbidden"), LOADS, ids=[m for m, _ in LOADS])
def test_importing_a_part_loads_nothing_it_must_not(module: str, forbidden: tuple[str, ...]) -> None:
    loaded = _loaded_after(module)
    assert module in loaded
    found = {prefix: _hits(loaded, prefix)[:3] for prefix in forbidden if _hits(loaded, prefix)}
    assert not found, f"import {module} loads {found}"


# ---- the static import graph ---------------------------------------------------------------------


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, src: Path, known: set[str]) -> list[str]:
    """Every module ``path`` imports outside ``if TYPE_CHECKING:``, at module level or in a function,
    relative imports resolved (``from pkg import name`` is ``pkg.name`` when that is a module)."""
    mod = module_name(path, src)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit_else(child)
                continue
            if isinstance(child, ast.Import):
                out.extend(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*parts, *([child.module] if child.module else [])])
                out.extend(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in child.names)
            visit(child)

    def visit_else(node: ast.If) -> None:
        for child in node.orelse:
            visit(ast.Module(body=[child], type_ignores=[]))

    visit(ast.parse(path.read_text(), filename=str(path)))
    return out


def import_graph(src: Path, package: str = "archbench") -> dict[str, list[str]]:
    """``{module: [imported module, ...]}`` for every module of ``package`` under ``src``."""
    paths = sorted((src / package).rglob("*.py"))
    known = {module_name(p, src) for p in paths}
    return {module_name(p, src): imports_of(p, src, known) for p in paths}


def part(module: str) -> str:
    """The part a module belongs to: its subpackage, or the top-level module itself (``trial``, ``deploy``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def forbidden_imports(graph: dict[str, list[str]], owner: str, prefix: str) -> list[str]:
    return [f"{m} imports {n}" for m, names in graph.items() if part(m) == owner for n in _hits(names, prefix)]


def part_cycles(graph: dict[str, list[str]], package: str = "archbench") -> list[list[str]]:
    """Cycles between the package's parts. The package's own ``__init__`` is left out: it is the facade
    that re-exports names lazily, and every module imports it as their parent anyway."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module, names in graph.items():
        if module == package:
            continue
        for name in names:
            if name.startswith(package + ".") and part(name) != part(module):
                edges[part(module)].add(part(name))
    return _strongly_connected(edges)


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one node (each one a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, list[str]]:
    return import_graph(SRC)


@pytest.mark.parametrize(("owner", "prefix", "why"), IMPORTS, ids=[f"{o}-not-{p}" for o, p, _ in IMPORTS])
def test_no_forbidden_import_in_the_source(graph: dict[str, list[str]], owner: str, prefix: str, why: str) -> None:
    assert any(part(m) == owner for m in graph), f"no part {owner!r}: the rule is stale"
    assert not forbidden_imports(graph, owner, prefix), why


# Edges the cycle check leaves out, each for a stated reason (module -> module it imports, lazily).
ALLOWED: dict[tuple[str, str], str] = {
    ("archbench.search_space.architecture", "archbench.interop.hf"): (
        "Architecture.from_hf, the import API of issue 22, delegates to interop when it is called; "
        "nothing of interop (or transformers) loads otherwise"
    ),
}


def test_no_import_cycle_between_parts(graph: dict[str, list[str]]) -> None:
    for (module, name), why in ALLOWED.items():
        assert name in graph.get(module, []), f"allowed edge {module} -> {name} is gone: remove it ({why})"
    pruned = {m: [n for n in names if (m, n) not in ALLOWED] for m, names in graph.items()}
    assert part_cycles(pruned) == []


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    """The checker on a small package with a cycle (a -> b -> a, b lazily), a forbidden lazy import
    and one hidden behind TYPE_CHECKING (which does not count)."""
    pkg = tmp_path / "pkg"
    (pkg / "a").mkdir(parents=True)
    (pkg / "b").mkdir()
    (pkg / "__init__.py").write_text("from pkg.a import x\n")
    (pkg / "a" / "__init__.py").write_text("from pkg.b.mod import y\nx = 1\n")
    (pkg / "b" / "__init__.py").write_text("")
    (pkg / "b" / "mod.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import polars\n"
        "def y():\n    import torch\n    from ..a import x\n    return x\n"
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.b.mod"] == ["typing", "torch", "pkg.a"]
    assert forbidden_imports(graph, "b", "torch") == ["pkg.b.mod imports torch"]
    assert forbidden_imports(graph, "b", "polars") == []
    assert part_cycles(graph, "pkg") == [["a", "b"]]
