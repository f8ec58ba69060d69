"""The ecosystem's formats: Architecture <-> Hugging Face transformers and LitGPT configs, weight maps,
safetensors weights and presets of published shapes.

``table`` holds the one mapping table; ``hf`` and ``litgpt`` write and read configs from it, ``hf_model``
maps weights into a transformers model directory, ``weights`` stores archbench's own weights, ``kept``
resolves the leaderboard's paths to them and ``presets`` holds the published shapes. transformers and
litgpt are optional at run time: only the modules that need them import them, on first use, and a missing
one is one line (:func:`require`). Importing this package imports neither (nor torch).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from archbench.errors import ConfigError

# What to install for each optional package (the ranges the parity tests run against).
INSTALL = {"transformers": "transformers>=5.3,<6", "litgpt": "litgpt>=0.5.13,<0.6"}


def require(module: str, purpose: str) -> ModuleType:
    """``import module``, or a :class:`ConfigError` saying what to install for ``purpose``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{purpose} needs the {module} package: pip install '{INSTALL[module]}'") from None
