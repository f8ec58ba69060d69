"""Architecture -> LitGPT ``model_config.yaml`` (the file ``litgpt.Config.from_file`` reads).

The keys come from :data:`archbench.interop.table.LITGPT`. Writing the YAML needs no litgpt install; an
architecture LitGPT cannot express exactly (learned positions, a tied head, ...) is refused in one line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from archbench.interop.table import LITGPT, choose
from archbench.search_space.architecture import Architecture

CONFIG_NAME = "model_config.yaml"  # the name litgpt looks for in a checkpoint directory


def litgpt_config(arch: Architecture) -> dict[str, Any]:
    """The keyword arguments of ``litgpt.Config`` for ``arch``."""
    return choose(arch, [LITGPT], "LitGPT").write(arch)


def dump_litgpt(arch: Architecture) -> str:
    head = f"# archbench architecture {arch.arch_id}: {arch.describe()}\n"
    return head + yaml.safe_dump(litgpt_config(arch), sort_keys=False)


def save_litgpt(arch: Architecture, path: str | Path) -> Path:
    """Write the YAML to ``path`` (a directory gets ``model_config.yaml`` inside), atomically."""
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / CONFIG_NAME
    text = dump_litgpt(arch)  # refuses before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
