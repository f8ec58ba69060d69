"""Architecture -> LitGPT ``model_config.yaml`` (the file ``litgpt.Config.from_file`` reads), and trained
weights -> ``lit_model.pth`` (the checkpoint beside it).

The keys come from :data:`archbench.interop.table.LITGPT`. Writing either needs no litgpt install; an
architecture LitGPT cannot express exactly (learned positions, a tied head, ...) is refused in one line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from archbench.interop.table import LITGPT, choose
from archbench.search_space.architecture import Architecture

if TYPE_CHECKING:
    from torch import Tensor

    from archbench.interop.weights import Weights

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


CHECKPOINT_NAME = "lit_model.pth"  # the weights file litgpt loads from a checkpoint directory
_LAYER = {"attn.qkv": "attn.qkv", "attn.proj": "attn.proj", "attn_conn.norm": "norm_1", "ffn_conn.norm": "norm_2"}


def litgpt_state_dict(arch: Architecture, tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """archbench's tensors under LitGPT's names: its fused ``qkv`` has archbench's ``[q | k | v]`` rows, its
    LLaMAMLP's ``fc_1`` is the gate and ``fc_2`` the up projection; the head is never tied."""
    litgpt_config(arch)  # refuses an inexpressible arch
    ffn = {
        "ffn.gate": "mlp.fc_1",
        "ffn.fc": "mlp.fc_2" if arch.ffn_act == "swiglu" else "mlp.fc",
        "ffn.proj": "mlp.proj",
    }
    top = {"trunk.wte": "transformer.wte", "trunk.norm_f": "transformer.ln_f", "lm_head": "lm_head"}
    out = {}
    for name, tensor in tensors.items():
        module, _, kind = name.rpartition(".")
        layer, sep, rest = module.removeprefix("trunk.blocks.").partition(".")
        dest = f"transformer.h.{layer}.{(_LAYER | ffn)[rest]}" if sep and layer.isdigit() else top[module]
        out[f"{dest}.{kind}"] = tensor
    return out


def save_litgpt_checkpoint(weights: Weights, directory: str | Path) -> Path:
    """``lit_model.pth`` (the mapped weights) beside ``model_config.yaml`` in ``directory``, atomically."""
    import torch

    path = Path(directory) / CHECKPOINT_NAME
    mapped = {k: v.contiguous() for k, v in litgpt_state_dict(weights.arch, weights.tensors).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(mapped, tmp)
    tmp.replace(path)
    return path
