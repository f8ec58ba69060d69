"""Lazy package exports (PEP 562): a package names what it offers without importing it.

    __getattr__, __dir__ = lazy_exports(__name__, {".api": ("Leaderboard",), "archbench.errors": ("ConfigError",)})

Importing a submodule imports its package first; an eager ``__init__`` would drag everything it
re-exports (torch, polars) into every import of any of its modules. The names are imported on first use
and then kept in the package's namespace. An export may share its name with the submodule that defines
it (``archbench.evaluators.evaluate``, the function, in ``evaluate.py``): importing that submodule binds
the export, as the eager ``from .evaluate import evaluate`` did, not the submodule.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any


class _Package(types.ModuleType):
    """A package module that keeps its exports over same-named submodules (see the module docstring)."""

    def __setattr__(self, name: str, value: Any) -> None:
        exports: Mapping[str, str] = self.__dict__.get("_lazy_exports", {})
        if isinstance(value, types.ModuleType) and exports.get(name) == value.__name__ == f"{self.__name__}.{name}":
            value = getattr(value, name)  # the import system binding a submodule: keep the export instead
        super().__setattr__(name, value)


def lazy_exports(
    package: str, by_module: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, offering the names ``by_module`` lists under the
    module that defines them (``.name``: relative to ``package``)."""
    exports = {
        name: importlib.util.resolve_name(module, package) for module, names in by_module.items() for name in names
    }
    pkg = sys.modules[package]
    pkg.__class__ = _Package
    pkg.__dict__["_lazy_exports"] = exports

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(pkg, name, value)  # later lookups find it without this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(pkg), *exports} - {"_lazy_exports"})

    return __getattr__, __dir__
