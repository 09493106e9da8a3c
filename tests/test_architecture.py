"""The package's shape: layers that import only downward, and no import cycle.

The sub-packages of ``src/hubasync`` are layers. A module may import its own layer and the
layers below it, never one above: the protocol core knows nothing of sockets or files, the
transport nothing of outputs, the run nothing of the command line or the service. The
simulator stands apart: it imports nothing of hubasync outside itself, so it is a fair judge.
"""

from __future__ import annotations

import ast
import os
from typing import Dict, List, Set

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src",
                       "hubasync")

# Each layer, and the layers it may import (besides itself). ``base`` is errors and version.
ALLOWED: Dict[str, Set[str]] = {
    "base": set(),
    "core": {"base"},
    "files": {"base", "core"},
    "events": {"base", "core", "files"},
    "transport": {"base", "core", "events"},
    "delivery": {"base", "core", "events", "files", "transport"},
    "run": {"base", "core", "events", "files", "transport", "delivery"},
    "library": {"base", "core", "events", "files", "transport", "run"},
    "service": {"base", "core", "events", "files", "transport", "delivery", "run"},
    "cli": {"base", "core", "events", "files", "transport", "delivery", "run", "service"},
    "sim": set(),
    "top": {"base", "core", "events", "files", "transport", "delivery", "run", "library",
            "service", "cli"},
}
MODULE_LAYERS = {"hubasync.errors": "base", "hubasync.version": "base",
                 "hubasync.client": "library", "hubasync": "top", "hubasync.__main__": "top"}


def layer_of(module: str) -> str:
    if module in MODULE_LAYERS:
        return MODULE_LAYERS[module]
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in ALLOWED:
        return parts[1]
    raise AssertionError(f"{module} belongs to no layer: add it to test_architecture.py")


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


def upward_imports(edges: Dict[str, Set[str]]) -> List[str]:
    found = []
    for module, targets in sorted(edges.items()):
        layer = layer_of(module)
        for target in sorted(targets):
            other = layer_of(target)
            if other != layer and other not in ALLOWED[layer] and not target.endswith(
                    "__init__") and target != f"hubasync.{other}":
                found.append(f"{module} ({layer}) imports {target} ({other})")
    return found


def test_the_graph_is_read() -> None:
    edges = graph()
    assert "hubasync.run.resumable" in edges["hubasync.cli.download"]
    assert "hubasync.core.job" in edges["hubasync.transport.session"]


def test_every_module_is_in_a_layer() -> None:
    for module in graph():
        layer_of(module)


def test_layers_import_only_downward() -> None:
    assert upward_imports(graph()) == []


def test_an_upward_import_is_found() -> None:
    edges = {"hubasync.core.job": {"hubasync.transport.session"},
             "hubasync.transport.session": {"hubasync.core.job"}}
    assert upward_imports(edges) == [
        "hubasync.core.job (core) imports hubasync.transport.session (transport)"]


def test_the_simulator_stands_apart() -> None:
    edges = graph()
    for module, targets in edges.items():
        if module.startswith("hubasync.sim"):
            assert all(t.startswith("hubasync.sim") for t in targets), module


def test_there_is_no_import_cycle() -> None:
    edges = graph()
    # the package's __init__ re-exports its modules: it is the top, not a cycle
    edges = {name: {t for t in targets if t != "hubasync"} for name, targets in edges.items()}
    assert cycles(edges) == []
