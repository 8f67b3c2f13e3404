"""The package's house rule: imports point down the layers only, and no modules import each other in a cycle.

Every `import` in facewright/ counts: at module level, inside functions (a late import hides a cycle, it does
not remove it) and under TYPE_CHECKING (a type that lives upstairs is a dependency on upstairs).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "facewright"

# Bottom to top (DESIGN.md). A module may import its own layer and the layers below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "errors", "config", "files", "locks", "names", "timing", "progress", "prefetch", "workers"),
    ("media", "workspace", "assets"),
    ("faces",),
    ("collect", "provenance"),
    ("train",),
    ("swap",),
    ("score",),
    ("api",),
    ("bench", "demo", "cluster"),
    ("cli", "web", "__main__"),
)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported facewright module, dotted
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def imports_of(path: Path, root: Path, modules: set[str]) -> list[Import]:
    """The facewright modules `path` imports, wherever the import statement stands."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # `from facewright.x import y` imports the module x.y when there is one, else names from x
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        found += [Import(name, t, node.lineno) for t in targets if t in modules and t != name]
    return found


def layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise LookupError(top)


def graph(root: Path) -> list[Import]:
    paths = sorted(root.rglob("*.py"))
    modules = {module_name(p, root) for p in paths}
    return [edge for p in paths for edge in imports_of(p, root, modules)]


def upward(edges: list[Import]) -> list[Import]:
    return [e for e in edges if layer(e.target) > layer(e.module)]


def cycles(edges: list[Import]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    successors: dict[str, list[str]] = {}
    for e in edges:
        successors.setdefault(e.module, []).append(e.target)
        successors.setdefault(e.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in successors:
        if start in index:
            continue
        work = [(start, iter(successors[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(successors[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_every_module_has_a_layer():
    edges = graph(PACKAGE)
    unplaced = set()
    for module in {e.module for e in edges} | {e.target for e in edges}:
        try:
            layer(module)
        except LookupError:
            unplaced.add(module)
    assert not unplaced, f"add these to LAYERS (and to DESIGN.md's package layout): {sorted(unplaced)}"


def test_no_import_points_up_the_layers():
    found = [f"{e.module} (line {e.line}) imports {e.target}, a higher layer" for e in upward(graph(PACKAGE))]
    assert not found, "\n".join(found)


def test_no_import_cycles():
    found = cycles(graph(PACKAGE))
    assert not found, "modules that import each other in a cycle: " + "; ".join(" <-> ".join(c) for c in found)


@pytest.fixture
def fake_package(tmp_path) -> Path:
    root = tmp_path / "facewright"
    for rel, text in {
        "__init__.py": "",
        "errors.py": "",
        "workspace.py": "from facewright import errors\n",
        "provenance/__init__.py": "",
        "provenance/mark.py": "from facewright.workspace import now\n",
        "swap/__init__.py": "",
        "swap/run.py": "def late():\n    from . import pipeline\n",
        "swap/pipeline.py": "from facewright.swap.run import late\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_checker_sees_upward_and_late_imports(fake_package):
    """The rules above can fail: an upward import and a cycle closed inside a function are both found."""
    assert upward(graph(fake_package)) == []
    assert cycles(graph(fake_package)) == [["facewright.swap.pipeline", "facewright.swap.run"]]
    (fake_package / "workspace.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                               "    from facewright.provenance.mark import MarkPlan\n")
    [edge] = upward(graph(fake_package))
    assert (edge.module, edge.target, edge.line) == ("facewright.workspace", "facewright.provenance.mark", 3)


def test_the_web_ui_calls_the_public_api_only():
    """DESIGN.md: facewright/web imports facewright.api (and the package's version), nothing deeper, so the UI can
    do nothing a script cannot."""
    allowed = {"facewright", "facewright.api"}
    deeper = [e for e in graph(PACKAGE) if e.module.startswith("facewright.web")
              and not e.target.startswith("facewright.web") and e.target not in allowed]
    assert not deeper, "web imports below the API: " + "; ".join(f"{e.module}:{e.line} -> {e.target}" for e in deeper)
