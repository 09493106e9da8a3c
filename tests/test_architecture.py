"""The package's shape: no import cycle among the modules of ``src/hubasync``."""

from __future__ import annotations

import ast
import os
from typing import Dict, List, Set

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src",
                       "hubasync")


def module_name(path: str) -> str:
    relative = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
    return relative[: -len(".__init__")] if relative.endswith(".__init__") else relative


def imports_of(path: str, name: str) -> Set[str]:
    """The hubasync modules ``path`` imports, anywhere in it (inside functions too)."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("hubasync"):
                if node.module:  # "from . import x" imports the module x, not the package
                    found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("hubasync"))
    return found


def graph() -> Dict[str, Set[str]]:
    modules: Dict[str, str] = {}
    for folder, _, files in os.walk(PACKAGE):
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(folder, file)
                modules[module_name(path)] = path
    return {name: {target for target in imports_of(path, name)
                   if target in modules and target != name}
            for name, path in modules.items()}


def cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    found: List[List[str]] = []
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_the_graph_is_read() -> None:
    edges = graph()
    assert "hubasync.pipeline" in edges["hubasync.download"]
    assert "hubasync.job" in edges["hubasync.session"]


def test_there_is_no_import_cycle() -> None:
    edges = graph()
    # the package's __init__ re-exports its modules: it is the top, not a cycle
    edges = {name: {t for t in targets if t != "hubasync"} for name, targets in edges.items()}
    assert cycles(edges) == []
