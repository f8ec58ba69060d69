"""Published shapes as Architectures: ``preset:NAME`` wherever an architecture file is accepted.

Each preset is the shape of a published model (its config.json on the Hugging Face hub) with the parameter
count its authors publish, which tests check against archbench's own count. A preset is the *shape*:
archbench's RoPE base (10000) and norm eps (1e-5) stay, as on import (published Llama 3 uses RoPE base
500000 with "llama3" scaling, SmolLM2 100000; numbers, not shape or cost). Mistral-7B-v0.1's window of 4096
is on every layer, as in its config. ``quant`` is fp32: the search's choice, not the shape's.

Register more with ``PRESETS.register("name", Preset(...))``.
"""

from __future__ import annotations

from dataclasses import dataclass

from archbench.errors import ConfigError, UnknownNameError
from archbench.registry import Registry
from archbench.search_space.architecture import Architecture

PREFIX = "preset:"


@dataclass(frozen=True)
class Preset:
    """A published shape, its published parameter count and where both come from."""

    arch: Architecture
    params: int
    source: str  # the model's hub id


PRESETS: Registry[Preset] = Registry("preset")


def _gpt2(depth: int, width: int, heads: int) -> Architecture:
    return Architecture(
        depth=depth, width=width, heads=heads, ffn_ratio=4.0, ffn_act="gelu", norm="layernorm",
        pos_encoding="learned", vocab_size=50257, max_seq_len=1024, tie_embeddings=True, bias=True,
    )  # fmt: skip


def _llama(
    depth: int, width: int, heads: int, kv: int, ffn: int, vocab: int, ctx: int, tied: bool, window: int = 0
) -> Architecture:
    return Architecture(
        depth=depth, width=width, heads=heads, kv_heads=kv, ffn_ratio=ffn / width, ffn_act="swiglu",
        norm="rmsnorm", pos_encoding="rope", attention="sliding_window" if window else "dense", window=window,
        vocab_size=vocab, max_seq_len=ctx, tie_embeddings=tied, bias=False,
    )  # fmt: skip


for _name, _preset in {
    "gpt2": Preset(_gpt2(12, 768, 12), 124_439_808, "openai-community/gpt2"),
    "gpt2-medium": Preset(_gpt2(24, 1024, 16), 354_823_168, "openai-community/gpt2-medium"),
    "gpt2-large": Preset(_gpt2(36, 1280, 20), 774_030_080, "openai-community/gpt2-large"),
    "gpt2-xl": Preset(_gpt2(48, 1600, 25), 1_557_611_200, "openai-community/gpt2-xl"),
    "smollm2-135m": Preset(_llama(30, 576, 9, 3, 1536, 49152, 8192, True), 134_515_008, "HuggingFaceTB/SmolLM2-135M"),
    "smollm2-360m": Preset(_llama(32, 960, 15, 5, 2560, 49152, 8192, True), 361_821_120, "HuggingFaceTB/SmolLM2-360M"),
    "tinyllama-1.1b": Preset(
        _llama(22, 2048, 32, 4, 5632, 32000, 2048, False),
        1_100_048_384,
        "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T",
    ),
    "llama-3.2-1b": Preset(
        _llama(16, 2048, 32, 8, 8192, 128256, 131072, True), 1_235_814_400, "meta-llama/Llama-3.2-1B"
    ),
    "llama-3.2-3b": Preset(
        _llama(28, 3072, 24, 8, 8192, 128256, 131072, True), 3_212_749_824, "meta-llama/Llama-3.2-3B"
    ),
    "llama-2-7b": Preset(
        _llama(32, 4096, 32, 32, 11008, 32000, 4096, False), 6_738_415_616, "meta-llama/Llama-2-7b-hf"
    ),
    "llama-3-8b": Preset(
        _llama(32, 4096, 32, 8, 14336, 128256, 8192, False), 8_030_261_248, "meta-llama/Meta-Llama-3-8B"
    ),
    "mistral-7b": Preset(
        _llama(32, 4096, 32, 8, 14336, 32000, 32768, False, window=4096), 7_241_732_096, "mistralai/Mistral-7B-v0.1"
    ),
}.items():
    PRESETS.register(_name, _preset)


def preset(name: str) -> Preset:
    """The preset called ``name`` (with or without ``preset:``); one line listing the known ones if unknown."""
    key = name.removeprefix(PREFIX).strip().lower()
    try:
        return PRESETS.get(key)
    except UnknownNameError as exc:
        raise ConfigError(str(exc)) from None


def is_preset(spec: object) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)
