"""FLOPs per inference: torch's own counter for everything but the attention core, which is counted
from the pattern.

Convention (torch's): a matrix product of (m x k) by (k x n) is ``2 * m * k * n`` FLOPs; elementwise ops,
softmax, norms and embeddings count 0. ``torch.utils.flop_counter.FlopCounterMode`` counts the Linear
layers (and any plain matmul/einsum, such as linear attention's) correctly, but sees 0 for
``scaled_dot_product_attention`` on CPU and raises on ``flex_attention``. So every attention pattern that
computes an S x S score matrix (``kept_fraction(S) > 0``) is swapped, for the count only, for a stand-in
that costs nothing, and its core is added by hand as

    attention = 4 * B * H * S * S * D * kept_fraction(S)      (2*S*S*D for q k^T, 2*S*S*D for p v)

i.e. only the score entries the pattern keeps (a causal dense mask keeps (S+1)/2S of them; a sliding
window about window/S), the same number on every device. Linear attention has no score matrix
(``kept_fraction`` 0) and is counted by torch's counter from its own einsums.

FLOPs do not depend on precision: with an Architecture they are counted on a float copy built on the
meta device (no memory, no compute), so quantized models get the FLOPs of their shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from archbench.search_space.architecture import Architecture
from archbench.search_space.attention import AttentionPattern

CONVENTION = "torch FlopCounterMode (2 FLOPs per multiply-add) + attention core 4*B*H*S^2*D*kept_fraction"


@dataclass(frozen=True)
class FlopCount:
    total: int
    counter: int  # what torch's counter saw (attention cores stubbed out)
    attention: int  # attention cores counted from the pattern
    convention: str = CONVENTION


class _Uncounted(AttentionPattern):
    """Stand-in for a pattern during counting: records the shapes, returns v per query head, costs nothing."""

    def __init__(self, inner: AttentionPattern) -> None:
        super().__init__(inner.window, inner.causal)
        self.inner = inner
        self.flops = 0

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, bias: object = None) -> Tensor:
        b, h, s, d = q.shape
        s_kv = k.shape[-2]
        self.flops += round(4 * b * h * s * s_kv * d * self.inner.kept_fraction(s))
        return v.repeat_interleave(h // v.shape[-3], dim=-3)  # q's heads (grouped queries share kv heads)


def attention_flops(pattern: AttentionPattern, batch: int, heads: int, seq_len: int, head_dim: int) -> int:
    """The attention-core FLOPs of one layer under this module's convention."""
    return round(4 * batch * heads * seq_len * seq_len * head_dim * pattern.kept_fraction(seq_len))


def _pattern_slots(model: nn.Module) -> list[tuple[Any, Any]]:
    """Where ``model`` holds attention patterns, as (container, key) pairs: the Trunk's per-layer list
    ``patterns`` (one per layer of the layout), or a user module's single ``pattern`` attribute."""
    slots: list[tuple[Any, Any]] = []
    for m in model.modules():
        listed = getattr(m, "patterns", None)
        if isinstance(listed, list) and all(isinstance(p, AttentionPattern) for p in listed):
            slots.extend((listed, i) for i in range(len(listed)))
        if isinstance(getattr(m, "pattern", None), AttentionPattern):
            slots.append((m, "pattern"))
    return slots


def _get(slot: tuple[Any, Any]) -> AttentionPattern:
    holder, key = slot
    return holder[key] if isinstance(holder, list) else getattr(holder, key)


def _set(slot: tuple[Any, Any], pattern: AttentionPattern) -> None:
    holder, key = slot
    if isinstance(holder, list):
        holder[key] = pattern
    else:
        setattr(holder, key, pattern)


def count_model_flops(model: nn.Module, inputs: Tensor) -> FlopCount:
    """FLOPs of ``model(inputs)`` (one forward), attention cores counted from their patterns: each layer
    by its own (a hybrid layout's global layers dense, the others their cheaper pattern)."""
    slots = _pattern_slots(model)
    originals = [_get(slot) for slot in slots]
    stubs: list[_Uncounted] = []
    try:
        for slot, pattern in zip(slots, originals, strict=True):
            if pattern.kept_fraction(inputs.shape[-1]) > 0:
                stub = _Uncounted(pattern)
                stubs.append(stub)
                _set(slot, stub)
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(inputs)
    finally:
        for slot, pattern in zip(slots, originals, strict=True):
            _set(slot, pattern)
    seen, attention = int(counter.get_total_flops()), sum(s.flops for s in stubs)
    return FlopCount(total=seen + attention, counter=seen, attention=attention)


def count_flops(arch: Architecture, batch: int, seq_len: int, num_classes: int | None = None) -> FlopCount:
    """FLOPs of one forward of ``arch`` at (batch, seq_len), counted on a meta-device float copy."""
    from archbench.search_space.model import build

    with torch.device("meta"):
        model = build(arch, num_classes=num_classes).eval()
        inputs = torch.zeros(batch, seq_len, dtype=torch.long)
    return count_model_flops(model, inputs)
