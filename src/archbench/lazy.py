"""Lazy package exports (PEP 562): a package names what it offers without importing it.

    __getattr__, __dir__ = lazy_exports(__name__, {".api": ("Leaderboard",), "archbench.errors": ("ConfigError",)})

Importing a submodule imports its package first; an eager ``__init__`` would drag everything it
re-exports (torch, polars) into every import of any of its modules. The names are imported on first use
and then kept in the package's namespace.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, by_module: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, offering the names ``by_module`` lists under the
    module that defines them (``.name``: relative to ``package``)."""
    exports = {name: module for module, names in by_module.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)  # later lookups find it without this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
