"""The unified search space: Architecture, SearchSpace, the model family and quantization.

Importing this package does not import torch; ``build`` and ``quantize`` import it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archbench.search_space.architecture import Architecture
from archbench.search_space.export import dump_config, load_arch, save_config, to_config
from archbench.search_space.registries import ATTENTION, RESIDUALS
from archbench.search_space.space import SearchSpace, SpaceSize

if TYPE_CHECKING:
    from torch import nn


def build(arch: Any, num_classes: int | None = None, provenance: Any = None) -> nn.Module:
    """``nn.Module`` for ``arch`` (see :func:`archbench.search_space.model.build`); ``provenance`` is ignored."""
    from archbench.search_space.model import build as _build

    return _build(arch, num_classes=num_classes)


__all__ = [
    "ATTENTION",
    "RESIDUALS",
    "Architecture",
    "SearchSpace",
    "SpaceSize",
    "build",
    "dump_config",
    "load_arch",
    "save_config",
    "to_config",
]
