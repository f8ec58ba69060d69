"""archbench weights under transformers' names, and the model directory ``from_pretrained`` loads.

The map is per layout: Llama-type models (Llama, Mistral; Starcoder2 differs only in its MLP) split
archbench's fused ``qkv`` rows into ``q_proj``/``k_proj``/``v_proj`` (``[width | kv | kv]``, heads in the
same order, RoPE in the same rotate-half form); GPT-2 keeps the fused ``c_attn`` but its ``Conv1D`` stores
weights transposed. Mapped tensors are checked against the class's own parameter names and shapes (every
one, no other), so a wrong map fails at export, not at someone's load.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from archbench.errors import ConfigError
from archbench.interop.hf import hf_config, hf_target
from archbench.interop.weights import Weights
from archbench.search_space.architecture import Architecture

WEIGHTS_NAME = "model.safetensors"
_LAYER = re.compile(r"^trunk\.blocks\.(\d+)\.(.+)$")
_LLAMA_LAYER = {
    "attn.qkv": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    "attn.proj": "self_attn.o_proj",
    "ffn.gate": "mlp.gate_proj",
    "ffn.fc": "mlp.up_proj",
    "ffn.proj": "mlp.down_proj",
    "attn_conn.norm": "input_layernorm",
    "ffn_conn.norm": "post_attention_layernorm",
}
# module -> (transformers module, transposed); per layer ("layer") or top-level ("top")
LAYOUTS: dict[str, dict[str, Any]] = {
    "llama": {
        "top": {"trunk.wte": "model.embed_tokens", "trunk.norm_f": "model.norm", "lm_head": "lm_head"},
        "layer": ("model.layers.{}.", _LLAMA_LAYER),
        "transposed": (),
    },
    "starcoder2": {
        "top": {"trunk.wte": "model.embed_tokens", "trunk.norm_f": "model.norm", "lm_head": "lm_head"},
        "layer": ("model.layers.{}.", {**_LLAMA_LAYER, "ffn.fc": "mlp.c_fc", "ffn.proj": "mlp.c_proj"}),
        "transposed": (),
    },
    "gpt2": {
        "top": {"trunk.wte": "transformer.wte", "trunk.wpe": "transformer.wpe", "trunk.norm_f": "transformer.ln_f",
                "lm_head": "lm_head"},
        "layer": ("transformer.h.{}.", {
            "attn.qkv": "attn.c_attn", "attn.proj": "attn.c_proj", "ffn.fc": "mlp.c_fc", "ffn.proj": "mlp.c_proj",
            "attn_conn.norm": "ln_1", "ffn_conn.norm": "ln_2",
        }),
        "transposed": ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"),
    },
}  # fmt: skip
LAYOUTS["mistral"] = LAYOUTS["ministral"] = LAYOUTS["llama"]


def hf_state_dict(arch: Architecture, tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """archbench's tensors (``model.state_dict()`` names) renamed, split and transposed for transformers.

    A tied head is left out (transformers ties it to the embedding from the config).
    """
    layout = LAYOUTS[hf_target(arch).name]
    prefix, per_layer = layout["layer"]
    kv = arch.kv_heads * arch.head_dim
    out: dict[str, Tensor] = {}
    for name, tensor in tensors.items():
        module, _, kind = name.rpartition(".")
        if arch.tie_embeddings and module == "lm_head":
            continue
        m = _LAYER.match(module)
        if m:
            dest: Any = per_layer.get(m.group(2))
            where = prefix.format(m.group(1))
        else:
            dest, where = layout["top"].get(module), ""
        if dest is None:
            raise ConfigError(f"weight {name} has no place in {hf_target(arch).label} (a map for it is missing)")
        if isinstance(dest, tuple):  # fused qkv rows -> q, k, v
            for part, piece in zip(dest, tensor.split([arch.width, kv, kv]), strict=True):
                out[f"{where}{part}.{kind}"] = piece.contiguous()
            continue
        transpose = dest in layout["transposed"] and kind == "weight"
        out[f"{where}{dest}.{kind}"] = tensor.t().contiguous() if transpose else tensor
    return out


def _mapped(weights: Weights) -> tuple[Any, dict[str, Tensor]]:
    """The config of ``weights``' architecture and its tensors under transformers' names, checked against
    the class (built on the meta device: names and shapes only, no memory)."""
    import torch

    from archbench.interop.hf import _transformers

    arch = weights.arch
    if weights.num_classes is not None:
        raise ConfigError(
            f"the weights of arch {arch.arch_id} are an encoder classifier ({weights.num_classes} classes): "
            "only a decoder LM's weights map onto a causal LM"
        )
    config = hf_config(arch)
    mapped = hf_state_dict(arch, weights.tensors)
    with torch.device("meta"):
        model = _transformers().AutoModelForCausalLM.from_config(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if arch.tie_embeddings:
        expected.pop("lm_head.weight", None)
    got = {k: tuple(v.shape) for k, v in mapped.items()}
    if got != expected:
        bad = sorted(set(got.items()) ^ set(expected.items()))[0]
        raise ConfigError(f"weight map of {arch.arch_id} does not fit {type(model).__name__}: {bad} (a bug)")
    return config, mapped


def hf_model(weights: Weights) -> Any:
    """The transformers model of ``weights``' architecture holding its mapped weights (float32, eval)."""
    from archbench.interop.hf import _transformers

    config, mapped = _mapped(weights)
    model = _transformers().AutoModelForCausalLM.from_config(config)
    model.load_state_dict(mapped, strict=not weights.arch.tie_embeddings)
    model.tie_weights()
    return model.eval()


def write_hf_dir(
    arch: Architecture, directory: str | Path, weights: Weights | None = None, force: bool = False
) -> list[Path]:
    """Write ``config.json`` (and ``model.safetensors`` from ``weights``) into ``directory``; the files.

    A directory that exists and is not empty is refused unless ``force`` (then replaced whole). The
    directory is written aside and renamed into place: a failed export leaves nothing half-written.
    """
    from safetensors.torch import save_file

    target = Path(directory)
    if weights is not None and weights.arch.arch_id != arch.arch_id:
        raise ConfigError(f"the weights file holds arch {weights.arch.arch_id}, not {arch.arch_id}")
    check_target_dir(target, force)
    config = hf_config(arch)  # refuses an inexpressible arch before anything is written
    mapped = _mapped(weights)[1] if weights is not None else None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        config.save_pretrained(tmp)
        if mapped is not None:  # transformers' own file name and header
            save_file({k: v.contiguous() for k, v in mapped.items()}, str(tmp / WEIGHTS_NAME), {"format": "pt"})
        replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sorted(p for p in target.iterdir() if p.is_file())


def check_target_dir(target: Path, force: bool) -> None:
    """Refuse an existing file, or a non-empty directory without ``force``."""
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ConfigError(f"{target} exists and is not empty; use --force to replace it")


def replace_dir(new: Path, target: Path) -> None:
    """Put directory ``new`` at ``target``, moving an old one aside first and removing it after."""
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    if target.exists():
        target.rename(old)
    try:
        new.rename(target)
    except OSError:
        if old.exists():
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
