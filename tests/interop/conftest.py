"""Tiny exact shapes of every target, and archbench models with non-trivial weights."""

from __future__ import annotations

import pytest
import torch

from archbench.interop.weights import Weights, load_weights, save_weights
from archbench.search_space import Architecture, build

TINY = {"depth": 2, "width": 64, "heads": 4, "ffn_ratio": 2.75, "vocab_size": 256, "max_seq_len": 128}
LLAMA_TYPE = {"ffn_act": "swiglu", "norm": "rmsnorm", "pos_encoding": "rope", "bias": False}

# One architecture each target expresses exactly (a target missing here fails test_every_target_has_a_shape).
EXACT: dict[str, Architecture] = {
    "llama": Architecture(**TINY, **LLAMA_TYPE, kv_heads=2, tie_embeddings=False),
    "mistral": Architecture(**TINY, **LLAMA_TYPE, kv_heads=2, attention="sliding_window", window=24),
    # A hybrid layout: windowed layers with every 2nd (here the last) global (Ministral honours layer_types).
    "ministral": Architecture(**TINY, **LLAMA_TYPE, kv_heads=2, attention="sliding_window", window=24, global_every=2),
    "gpt2": Architecture(**TINY),
    "starcoder2": Architecture(**TINY, pos_encoding="rope", kv_heads=2, attention="sliding_window", window=24),
    "qwen2": Architecture(**TINY, **LLAMA_TYPE, kv_heads=2),  # import only: nothing exports to it
    "litgpt": Architecture(**TINY, **LLAMA_TYPE, kv_heads=2, tie_embeddings=False),
}
# Further exact shapes, so that a condition on two fields (LitGPT: layernorm needs bias) can fail alone.
MORE_EXACT: dict[str, list[Architecture]] = {
    "litgpt": [Architecture(**TINY, pos_encoding="rope", tie_embeddings=False)],
}
# More shapes per family for the weight and logit checks.
VARIANTS: dict[str, Architecture] = {
    "llama-gqa": EXACT["llama"],
    "llama-bias-tied-mqa": EXACT["llama"].replace(bias=True, tie_embeddings=True, kv_heads=1),
    "mistral-window": EXACT["mistral"],
    "ministral-every2": EXACT["ministral"],
    "ministral-last-of-3": EXACT["ministral"].replace(depth=3, global_every=0, global_last=True),
    "gpt2": EXACT["gpt2"],
    "gpt2-untied": EXACT["gpt2"].replace(tie_embeddings=False),
    "starcoder2-window": EXACT["starcoder2"],
    "starcoder2-dense-untied": EXACT["starcoder2"].replace(attention="dense", tie_embeddings=False),
}
SEQ = 96  # longer than the windows (24): the window masks something


def trained_like(arch: Architecture, seed: int = 0) -> torch.nn.Module:
    """archbench's model with every weight perturbed (norm weights and biases away from 1 and 0)."""
    torch.manual_seed(seed)
    model = build(arch).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def saved(arch: Architecture, where, seed: int = 0) -> tuple[torch.nn.Module, Weights]:
    """A perturbed model of ``arch`` and its weights as read back from a file written in ``where``."""
    model = trained_like(arch, seed)
    return model, load_weights(save_weights(model, arch, where / "w.safetensors"))


def tokens(arch: Architecture, seed: int = 1, length: int = SEQ) -> torch.Tensor:
    return torch.randint(0, arch.vocab_size, (2, length), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(autouse=True)
def _quiet_transformers():
    try:
        from transformers.utils import logging
    except ImportError:  # pragma: no cover
        return
    logging.disable_progress_bar()
