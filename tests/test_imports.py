"""The import structure of rtplan: no import cycle, layers respected, lazy top level.

The graph is built from the source with :mod:`ast` (module-level and function-level
imports alike, ``TYPE_CHECKING`` blocks left out: they never run), so a cycle hidden in a
function body is found too. An edge goes to the module named by the import (``from
rtplan.structures.margins import expand`` -> ``rtplan.structures.margins``; ``from
rtplan.structures import margins`` -> ``rtplan.structures.margins``), not to its parent
packages.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "rtplan"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    out: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("rtplan"):
                    out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("rtplan"):
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    out.add(sub if sub in modules else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def import_graph() -> dict[str, set[str]]:
    """``module -> modules it imports`` over every ``rtplan/**/*.py``."""
    files = sorted(ROOT.rglob("*.py"))
    modules = {_module_name(p) for p in files}
    graph = {}
    for p in files:
        name = _module_name(p)
        tree = ast.parse(p.read_text(encoding="utf-8"))
        graph[name] = {m for m in _imports(tree, name, p.name == "__init__.py", modules)
                       if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_cycle_finder_finds_a_planted_cycle():
    # the checker itself: a 3-cycle and a self-contained chain
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(g) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    from rtplan.x import y\nimport rtplan.z\n"
                     "if TYPE_CHECKING:\n    import rtplan.w\n")
    assert _imports(tree, "rtplan.m", False, {"rtplan.x", "rtplan.x.y", "rtplan.z",
                                              "rtplan.w"}) == {"rtplan.x.y", "rtplan.z"}


def test_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50  # every module was read
    assert cycles(graph) == []


def test_only_the_pipeline_imports_the_pipeline():
    # lower structure modules never import the pipeline (targets.py, pipeline.py)
    graph = import_graph()
    top = {"rtplan.structures.targets", "rtplan.structures.pipeline"}
    # the QA images draw a built TargetSet: a consumer of the pipeline, like the CLI
    allowed = top | {"rtplan.structures", "rtplan.structures.qa"}
    offenders = {m: sorted(graph[m] & top) for m in graph
                 if m.startswith("rtplan.structures.") and m not in allowed and graph[m] & top}
    assert offenders == {}


def test_lesions_model_is_a_bottom_layer():
    graph = import_graph()
    # rtplan._shared.jsonio (the safe JSON loader) imports only the stdlib and errors
    assert graph["rtplan.lesions"] <= {"rtplan.errors", "rtplan._shared.jsonio"}
    assert graph["rtplan._shared.jsonio"] <= {"rtplan.errors"}


def test_top_level_lists_every_subpackage_and_loads_them_lazily():
    import rtplan

    subpackages = sorted(p.name for p in ROOT.iterdir()
                         if (p / "__init__.py").is_file() and not p.name.startswith("_"))
    assert set(subpackages) <= set(rtplan.__all__)
    code = ("import sys, rtplan; assert 'rtplan.structures' not in sys.modules; "
            "f = rtplan.structures.plan_targets; assert callable(f); "
            "import rtplan.imaging; assert rtplan.imaging.THRESHOLD_PRESETS")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_commands_use_no_private_helper_of_another_command():
    # rtplan demo used to call rtplan.cli.structures._progress and _print_structures
    offenders = []
    for p in sorted((ROOT / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.ImportFrom) and node.module
                    and node.module.startswith("rtplan.cli.")
                    and not node.module.rpartition(".")[2].startswith("_")):
                offenders += [f"{p.name}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_")]
    assert offenders == []
