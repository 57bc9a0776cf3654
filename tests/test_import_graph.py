"""The folder listing is the feature map: no import cycles between core's modules or between its packages.

Imports are read from the source (inside functions and under TYPE_CHECKING too), so a cycle cannot hide in a
late import. `from core.governance import request_review` counts as importing the module that defines it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in CORE.rglob("*.py")}


def _is_package(name: str) -> bool:
    return name in MODULES and MODULES[name].name == "__init__.py"


def _target(module: str, name: str) -> str:
    """The module that `from module import name` really depends on."""
    if f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    if _is_package(module) and module != "core":
        defining = getattr(importlib.import_module(module), name)
        return getattr(defining, "__module__", module) if f"{getattr(defining, '__module__', '')}" in MODULES else module
    return module


def module_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "core":
                deps.update(_target(node.module, a.name) for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.split(".")[0] == "core")
        graph[name] = {d for d in deps if d in MODULES and d != name and not _is_package(d) or
                       (_is_package(d) and d not in ("core", name))}
    return graph


def _group(module: str) -> str:
    """A module's package below core; modules at core's root form the foundation group 'core'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or _is_package(module) and len(parts) == 2 else "core"


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, deps in module_graph().items():
        graph.setdefault(_group(module), set()).update(_group(d) for d in deps if _group(d) != _group(module))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_imports_itself_through_others():
    cycle = find_cycle(module_graph())
    assert cycle is None, "import cycle between modules: " + " → ".join(cycle)


def test_no_package_imports_itself_through_others():
    cycle = find_cycle(package_graph())
    assert cycle is None, "import cycle between packages: " + " → ".join(cycle)


def test_the_foundation_at_core_root_imports_no_feature():
    assert package_graph()["core"] == set(), "core's root modules must not import a feature package"


def test_the_checker_sees_a_cycle_when_there_is_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_feature_package_says_what_it_is_and_exports_what_it_lists():
    for init in sorted(CORE.glob("*/__init__.py")):
        package = importlib.import_module(_module_name(init))
        assert (package.__doc__ or "").strip(), f"{init.parent.name} has no docstring"
        for name in getattr(package, "__all__", ()):
            assert getattr(package, name) is not None, f"{package.__name__}.{name} does not resolve"
