"""Lazy re-exports for the feature packages.

`from core.governance import request_review` (or `governance.request_review` after `from core import
governance`) imports only the module that defines it, so a light command never pays for scikit-learn or
Evidently, and a package's `__init__` never takes part in an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def reexport(package: str, modules: dict[str, tuple[str, ...]]
             ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`__getattr__`, `__dir__` and `__all__` for a package re-exporting `names` of each of its `modules`."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name in modules:
            return import_module(f"{package}.{name}")
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:
        return sorted({*where, *modules})

    return __getattr__, __dir__, sorted(where)
