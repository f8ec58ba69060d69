"""archbench: hardware-aware architecture search and benchmarking for transformers.

import archbench
arch = archbench.load_arch("my_arch.yaml")
model = archbench.build(arch)
"""

from __future__ import annotations

from archbench.errors import ArchbenchError, ArchitectureError, ConfigError, UnknownNameError
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
