"""archbench: hardware-aware architecture search and benchmarking for transformers.

import archbench
arch = archbench.load_arch("my_arch.yaml")
model = archbench.build(arch)

The top-level names are loaded on first use (a module ``__getattr__``, PEP 562): importing
``archbench.search_space`` or ``archbench.latency`` imports this package first, and must not pull in
polars and the leaderboard with it (the arrows of the design; ``tests/test_arrows.py`` checks them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from archbench.errors import ArchbenchError, ArchitectureError, ConfigError, UnknownNameError

if TYPE_CHECKING:
    from archbench.leaderboard import Leaderboard
    from archbench.search_space import (
        ATTENTION,
        RESIDUALS,
        Architecture,
        SearchSpace,
        build,
        dump_config,
        load_arch,
        save_config,
        to_config,
    )

__version__ = "0.3.1"

# name -> the module that defines it, imported when the name is first asked for.
_SPACE_NAMES = ("ATTENTION", "RESIDUALS", "Architecture", "SearchSpace", "build", "dump_config", "load_arch",
                "save_config", "to_config")  # fmt: skip
_LAZY = {"Leaderboard": "archbench.leaderboard", **dict.fromkeys(_SPACE_NAMES, "archbench.search_space")}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'archbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "ATTENTION",
    "RESIDUALS",
    "ArchbenchError",
    "Architecture",
    "ArchitectureError",
    "ConfigError",
    "Leaderboard",
    "SearchSpace",
    "UnknownNameError",
    "__version__",
    "build",
    "dump_config",
    "load_arch",
    "save_config",
    "to_config",
]
