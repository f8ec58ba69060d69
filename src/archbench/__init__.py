"""archbench: hardware-aware architecture search and benchmarking for transformers.

import archbench
arch = archbench.load_arch("my_arch.yaml")
model = archbench.build(arch)

The top-level names are loaded on first use (a module ``__getattr__``, PEP 562): importing
``archbench.search_space`` or ``archbench.latency`` imports this package first, and must not pull in
polars and the leaderboard with it (the arrows of the design; ``tests/test_arrows.py`` checks them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archbench.errors import ArchbenchError, ArchitectureError, ConfigError, UnknownNameError
from archbench.lazy import lazy_exports
from archbench.version import archbench_version

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

__version__ = archbench_version()

_SPACE_NAMES = ("ATTENTION", "RESIDUALS", "Architecture", "SearchSpace", "build", "dump_config", "load_arch",
                "save_config", "to_config")  # fmt: skip
__getattr__, __dir__ = lazy_exports(__name__, {".leaderboard": ("Leaderboard",), ".search_space": _SPACE_NAMES})

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
